"""Helpers for the in-executor programs' tests: each program runs as a real process, the
way the API starts it (`python3 -I -S -c`, through bootstrap.py where the API does), with
its /workspace and /tmp paths pointed at a temporary directory."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOBODY = 65534


def program(name):
    """A program's source as the API ships it: runner.py goes joined after the runner_*.py files
    (name order) it is split into, as core's executor-scripts.ts joins them (RUNNER_PY)."""
    names = [name]
    if name == "runner.py":
        names = sorted(n for n in os.listdir(HERE) if re.fullmatch(r"runner_\w+\.py", n)) + names
    parts = []
    for n in names:
        with open(os.path.join(HERE, n)) as f:
            parts.append(f.read())
    return "\n".join(parts)


def source(name, **consts):
    src = program(name)
    for key, value in consts.items():
        src, n = re.subn(r"^%s = .*$" % key, "%s = %s" % (key, json.dumps(value)), src, count=1, flags=re.M)
        assert n == 1, key
    return src


AGENT_IMPORT = re.compile(r"^from agent_\w+ import (?:\([^)]*\)|.*)$", re.M)


def agent_source(**consts):
    """The agent's bundle, built as core's src/agent/program.ts builds it: the parts named by
    agent.py's BUNDLE in that order, then agent.py, without their `from agent_* import` lines."""
    with open(os.path.join(HERE, "agent.py")) as f:
        main = f.read()
    names = re.findall(r'"([\w.]+)"', re.search(r"^BUNDLE = \(([^)]*)\)", main, re.M).group(1))
    parts = []
    for name in names:
        with open(os.path.join(HERE, name)) as f:
            parts.append(f.read())
    src = "\n".join(AGENT_IMPORT.sub("", p) for p in parts + [main])
    for key, value in consts.items():
        src, n = re.subn(r"^%s = .*$" % key, "%s = %s" % (key, json.dumps(value)), src, count=1, flags=re.M)
        assert n == 1, key
    return src


def drop_to(uid):
    def fn():
        if os.getuid() == 0 and uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return fn


def run_c(name, argv, consts, stdin=b"", timeout=30, uid=None, env=None):
    """python3 -I -S -c <source> argv... (the keeper and the killer)."""
    cmd = [sys.executable, "-I", "-S", "-c", source(name, **consts)] + [str(a) for a in argv]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout,
                          preexec_fn=drop_to(uid), env=env)


def boot_cmd(prog, argv):
    with open(os.path.join(HERE, "bootstrap.py")) as f:
        boot = f.read()
    return [sys.executable, "-I", "-S", "-c", boot, str(len(prog))] + [str(a) for a in argv]


def run_boot(name, argv, consts, stdin=b"", timeout=30, uid=None, env=None):
    """bootstrap.py with the program's source first on stdin (the runner, workspace.py)."""
    prog = source(name, **consts).encode()
    return subprocess.run(boot_cmd(prog, argv), input=prog + stdin, capture_output=True,
                          timeout=timeout, preexec_fn=drop_to(uid), env=env)


def frames(data):
    """Decodes the runner's framing strictly: (kind, payload) pairs."""
    out = []
    off = 0
    while off < len(data):
        assert len(data) - off >= 5, "truncated frame header"
        kind = data[off:off + 1]
        (n,) = struct.unpack(">I", data[off + 1:off + 5])
        assert n <= 1 << 16, "frame longer than MAX_FRAME"
        assert len(data) - off - 5 >= n, "truncated frame"
        out.append((kind, data[off + 5:off + 5 + n]))
        off += 5 + n
    return out


class Run:
    def __init__(self, proc):
        self.proc = proc
        self.frames = frames(proc.stdout)
        self.stdout = b"".join(p for k, p in self.frames if k == b"1").decode()
        self.stderr = b"".join(p for k, p in self.frames if k == b"2").decode()
        self.tar = b"".join(p for k, p in self.frames if k == b"F")
        exits = [p for k, p in self.frames if k == b"X"]
        assert len(exits) == 1, self.frames
        assert self.frames[-1][0] == b"X"
        self.exit = json.loads(exits[0])


@pytest.fixture
def box():
    """A fake executor: a workspace and a control dir, reachable and writable by nobody too
    (for the tests that drop privileges as an executor runs them)."""
    root = tempfile.mkdtemp(prefix="ci-box-")
    ws = os.path.join(root, "workspace")
    ctl = os.path.join(root, "ctl")
    os.mkdir(ws)
    os.mkdir(ctl)
    for d in (root, ws, ctl):
        os.chmod(d, 0o777)
    yield {"WS": ws, "CTL": ctl, "ROOT": root}
    shutil.rmtree(root, ignore_errors=True)


def runner(box, code, mode="python", stdin=b"", timeout_ms=5000, collect=False, forward=10 ** 6,
           max_files=100, max_bytes=10 ** 6, cpu=0, interactive=True, uid=None, exec_id="e1", env=None):
    body = code.encode()
    req = b"%d %d\n" % (len(body), len(stdin)) + body + stdin
    argv = [mode, exec_id, cpu, "1" if interactive else "0", "1" if collect else "0", timeout_ms,
            forward, max_files, max_bytes]
    env = dict(os.environ, CODE_INTERPRETER_EXEC_ID=exec_id, HOME=box["WS"], **(env or {}))
    consts = {"WS": box["WS"], "CTL": box["CTL"]}
    proc = run_boot("runner.py", argv, consts, stdin=req, uid=uid, env=env, timeout=timeout_ms / 1000 + 20)
    return Run(proc)


@pytest.fixture
def agent(box):
    """connect() -> a new agent_client.Client on the box's agent; every agent is killed after."""
    from agent_client import Client
    clients = []

    def connect():
        c = Client(box)
        clients.append(c)
        return c
    yield connect
    for c in clients:
        c.close()
    pids = {c.hello["pid"] for c in clients}
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
