"""agent.py on the host: the relay, the agent and its kernel as real processes, spoken to in
frames through the relay's stdin/stdout exactly as the API does (paths pointed at a temp box)."""
import io
import json
import os
import select
import signal
import struct
import subprocess
import tarfile
import time

import pytest

from conftest import HERE, boot_cmd, source

HEADER = struct.Struct(">IBI")


def program(box):
    srcs = []
    for name in ("workspace.py", "runner.py"):
        with open(os.path.join(HERE, name)) as f:
            srcs.append(f.read())
    agent = source("agent.py", WS=box["WS"], CTL=box["CTL"])
    return ("WORKSPACE_SRC = %s\nRUNNER_SRC = %s\n" % tuple(json.dumps(x) for x in srcs) + agent).encode()


class Client:
    def __init__(self, box):
        prog = program(box)
        self.proc = subprocess.Popen(boot_cmd(prog, ["relay"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(os.environ, HOME=box["WS"]))
        self.proc.stdin.write(prog)
        self.proc.stdin.flush()
        self.buf = b""
        self.stash = {}
        self.next_id = 1
        kind, rid, payload = self.frame()
        assert kind == "H" and rid == 0
        self.hello = json.loads(payload)

    def send(self, kind, rid, payload=b""):
        self.proc.stdin.write(HEADER.pack(len(payload), ord(kind), rid) + payload)
        self.proc.stdin.flush()

    def frame(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HEADER.size:
                n, kind, rid = HEADER.unpack_from(self.buf)
                assert n <= 1 << 16
                if len(self.buf) >= HEADER.size + n:
                    payload = self.buf[HEADER.size:HEADER.size + n]
                    self.buf = self.buf[HEADER.size + n:]
                    return chr(kind), rid, payload
            left = deadline - time.monotonic()
            assert left > 0, "no frame in time"
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not data:
                    return None
                self.buf += data

    def start(self, kind, args, rid=None):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        self.send(kind, rid, json.dumps(args).encode())
        return rid

    def wait(self, rid, timeout=20):
        """The frames of one request, up to its final answer; other requests' frames are kept."""
        got = self.stash.pop(rid, [])
        while not got or got[-1][0] not in "XE":
            f = self.frame(timeout)
            assert f is not None, "the channel closed"
            kind, frid, payload = f
            if frid == rid:
                got.append((kind, payload))
            else:
                self.stash.setdefault(frid, []).append((kind, payload))
        return Reply(got)

    def call(self, kind, args, timeout=20):
        return self.wait(self.start(kind, args), timeout)

    def py(self, code, **kw):
        return self.call("P", dict({"code": code, "timeout_ms": 5000}, **kw))

    def sh(self, code, **kw):
        return self.call("B", dict({"code": code, "timeout_ms": 5000}, **kw))

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(5)


class Reply:
    def __init__(self, frames):
        self.frames = frames
        self.stdout = b"".join(p for k, p in frames if k == "1").decode()
        self.stderr = b"".join(p for k, p in frames if k == "2").decode()
        self.data = b"".join(p for k, p in frames if k == "D")
        self.tar = b"".join(p for k, p in frames if k == "F")
        self.kind = frames[-1][0]
        self.final = json.loads(frames[-1][1])


@pytest.fixture
def agent(box):
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


def test_hello_ping_and_bad_requests(agent):
    c = agent()
    assert c.hello["fresh"] is True
    assert len(c.hello["boot_id"]) == 16
    assert c.call("p", {}).final == {"ok": True}
    assert c.call("Z", {}).final["error"] == "bad_request"
    c.send("P", 99, b"not json")
    assert c.wait(99).final["error"] == "bad_request"
    # a second channel finds the same agent
    d = agent()
    assert d.hello["fresh"] is False and d.hello["boot_id"] == c.hello["boot_id"]


def test_a_frame_over_the_limit_ends_the_connection_not_the_agent(agent):
    c = agent()
    c.proc.stdin.write(HEADER.pack((1 << 16) + 1, ord("p"), 1))
    c.proc.stdin.flush()
    assert c.frame() is None
    d = agent()
    assert d.hello["fresh"] is False and d.call("p", {}).final == {"ok": True}


def test_python_state_persists_and_repl_prints(agent):
    c = agent()
    r = c.py("x = 5")
    assert r.kind == "X" and r.final["exit_code"] == 0 and r.stdout == ""
    assert c.py("print(x)").stdout == "5\n"
    assert c.py("x * 2").stdout == "10\n"
    assert c.py("x * 2", interactive=False).stdout == ""
    # another connection (another API process) sees the same namespace
    assert agent().py("x + 1").stdout == "6\n"


def test_traceback_is_the_users_and_output_before_it_survives(agent):
    c = agent()
    r = c.py("print('before')\ndef f():\n    return 1/0\nf()")
    assert r.stdout == "before\n" and r.final["exit_code"] == 1
    assert "ZeroDivisionError" in r.stderr and "agent" not in r.stderr and 'line 3, in f' in r.stderr
    assert c.py("def f(:").final["exit_code"] == 1
    r = c.py("import sys; sys.exit(7)")
    assert r.final["exit_code"] == 7 and "state_reset" not in r.final
    assert c.py("print(sys.stdin.read())", stdin="abc").stdout == "abc\n"


def test_timeout_interrupts_and_the_namespace_survives(agent):
    c = agent()
    c.py("x = 1")
    r = c.py("while True:\n    pass", timeout_ms=500)
    assert r.final["timed_out"] is True and r.final["exit_code"] is None
    assert "state_reset" not in r.final and "KeyboardInterrupt" in r.stderr
    assert c.py("print(x)").stdout == "1\n"


def test_an_ignored_interrupt_gets_a_fresh_kernel_with_state_reset(agent):
    c = agent()
    r = c.py("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ny = 1\nwhile True:\n    pass",
             timeout_ms=300)
    assert r.final["timed_out"] is True and r.final["state_reset"] is True and r.final["reason"]
    r = c.py("print('y' in globals())")
    assert r.stdout == "False\n" and "state_reset" not in r.final


def test_a_crashed_kernel_is_reported_and_replaced(agent):
    c = agent()
    c.py("z = 3")
    r = c.py("import os\nprint('bye', flush=True)\nos._exit(4)")
    assert r.final["exit_code"] == 4 and r.final["state_reset"] is True and r.stdout == "bye\n"
    assert c.py("print('z' in globals())").stdout == "False\n"


def test_cancel_interrupts_a_running_cell(agent):
    c = agent()
    rid = c.start("P", {"code": "import time\nwhile True: time.sleep(0.01)", "timeout_ms": 60000})
    time.sleep(0.5)
    c.send("C", rid)
    r = c.wait(rid, timeout=10)
    assert r.final["timed_out"] is True


def test_output_is_capped_per_stream_in_small_frames(agent):
    c = agent()
    r = c.py("print('x' * 300000)", forward_limit=1000)
    assert len(r.stdout) == 1000
    r = c.sh("head -c 200000 /dev/zero | tr '\\0' y")
    assert len(r.stdout) == 200000
    assert all(len(p) <= 1 << 16 for _, p in r.frames)


def test_bash_is_a_fresh_process_in_the_workspace(agent, box):
    c = agent()
    r = c.sh("pwd; echo err >&2; cat; exit 3", stdin="in")
    assert r.stdout == box["WS"] + "\nin" and r.stderr == "err\n" and r.final["exit_code"] == 3


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_bash_timeout_kills_the_whole_tree_even_escaped_descendants(agent, box):
    c = agent()
    pidfile = os.path.join(box["ROOT"], "pids")
    code = ("( env -i setsid sh -c 'sleep 1000 & echo $! >> %s' & ); "
            "( nohup sleep 1001 >/dev/null 2>&1 & echo $! >> %s ); sleep 1000" % (pidfile, pidfile))
    r = c.sh(code, timeout_ms=800)
    assert r.final["timed_out"] is True and r.final["exit_code"] is None
    pids = [int(x) for x in open(pidfile).read().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


def test_bash_background_processes_outlive_a_normal_completion(agent, box):
    c = agent()
    r = c.sh("sleep 30 >/dev/null 2>&1 & echo $!")
    pid = int(r.stdout)
    try:
        assert r.final["exit_code"] == 0 and r.final["duration_ms"] < 3000 and alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_files_write_read_list_stage(agent, box):
    c = agent()
    rid = c.start("W", {"path": "d/a.txt", "size": 5, "max_bytes": 100})
    c.send("w", rid, b"hel")
    c.send("w", rid, b"lo")
    assert c.wait(rid).final == {"files": 1}
    assert open(os.path.join(box["WS"], "d/a.txt")).read() == "hello"
    r = c.call("r", {"path": "d/a.txt", "max_bytes": 100})
    assert r.frames[0] == ("M", b'{"size": 5}') and r.data == b"hello"
    rid = c.start("S", {"files": [{"path": "x", "size": 2}, {"path": "e/y", "size": 0}, {"path": "z", "size": 3}],
                        "max_bytes": 10})
    c.send("w", rid, b"12345")
    assert c.wait(rid).final == {"files": 3}
    assert open(os.path.join(box["WS"], "z")).read() == "345"
    entries = json.loads(c.call("L", {"limit": 100}).data)
    assert entries == [["d", "directory", 0], ["d/a.txt", "file", 5], ["e", "directory", 0],
                       ["e/y", "file", 0], ["x", "file", 2], ["z", "file", 3]]
    assert not [n for n in os.listdir(box["WS"]) if n.startswith(".ci-upload")]


def test_file_ops_refuse_symlinks_fifos_big_files_and_bad_paths(agent, box):
    c = agent()
    os.symlink("/etc", os.path.join(box["WS"], "etc"))
    os.symlink("/etc/passwd", os.path.join(box["WS"], "pw"))
    os.mkfifo(os.path.join(box["WS"], "fifo"))
    with open(os.path.join(box["WS"], "big"), "wb") as f:
        f.write(b"z" * 50)
    assert c.call("r", {"path": "pw", "max_bytes": 100}).final["error"] == "refused"
    # a symlinked directory on the way is never followed (workspace.py calls it missing)
    assert c.call("r", {"path": "etc/passwd", "max_bytes": 100}).final["error"] in ("missing", "refused")
    assert c.call("r", {"path": "fifo", "max_bytes": 100}).final["error"] == "refused"
    assert c.call("r", {"path": "nope", "max_bytes": 100}).final["error"] == "missing"
    assert c.call("r", {"path": "big", "max_bytes": 10}).final["error"] == "too_large"
    assert c.call("r", {"path": "../x", "max_bytes": 10}).final["error"] == "refused"
    assert c.call("W", {"path": "etc/evil", "size": 1, "max_bytes": 10}).final["error"] == "refused"
    assert c.call("W", {"path": "a", "size": 11, "max_bytes": 10}).final["error"] == "too_large"
    rid = c.start("W", {"path": "pw", "size": 2, "max_bytes": 10})
    c.send("w", rid, b"ok")
    assert c.wait(rid).final == {"files": 1}
    assert os.path.isfile(os.path.join(box["WS"], "pw")) and not os.path.islink(os.path.join(box["WS"], "pw"))
    assert c.call("p", {}).final == {"ok": True}


def test_a_cancelled_upload_leaves_nothing(agent, box):
    c = agent()
    rid = c.start("W", {"path": "half", "size": 10, "max_bytes": 100})
    c.send("w", rid, b"12345")
    c.send("C", rid)
    assert c.wait(rid).final["error"] == "cancelled"
    assert os.listdir(box["WS"]) == []


def test_collects_files_changed_by_a_cell(agent, box):
    c = agent()
    with open(os.path.join(box["WS"], "same"), "w") as f:
        f.write("s")
    r = c.py("open('new.txt', 'w').write('n')\nimport os\nos.mkfifo('f')", collect=True, max_files=10,
             max_bytes=100)
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(r.tar), mode="r:").getmembers()]
    assert names == ["new.txt"]
    r = c.sh("echo b > b.txt", collect=True, max_files=10, max_bytes=100)
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(r.tar), mode="r:").getmembers()]
    assert names == ["b.txt"]


def test_reset_and_a_killed_agent_starts_fresh(agent):
    c = agent()
    c.py("x = 1")
    assert c.call("R", {}).final["state_reset"] is True
    assert c.py("print('x' in globals())").stdout == "False\n"
    c.py("x = 2")
    rid = c.start("P", {"code": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "timeout_ms": 5000})
    while True:
        f = c.frame()
        if f is None or (f[1] == rid and f[0] in "XE"):
            break
    d = agent()
    assert d.hello["fresh"] is True and d.hello["boot_id"] != c.hello["boot_id"]
    assert d.py("print('x' in globals())").stdout == "False\n"


def test_one_cell_at_a_time_and_reset_interrupts_a_running_cell(agent):
    c = agent()
    c.py("x = 1")
    rid = c.start("P", {"code": "import time\ntime.sleep(30)", "timeout_ms": 60000})
    time.sleep(0.3)
    assert c.py("print(x)").final["error"] == "busy"
    assert c.call("R", {}, timeout=10).final["state_reset"] is True
    assert c.wait(rid, timeout=10).final["timed_out"] is True
    assert c.py("print('x' in globals())").stdout == "False\n"


def test_user_code_is_the_oom_killers_first_choice(agent):
    c = agent()
    assert c.py("print(open('/proc/self/oom_score_adj').read().strip())").stdout == "1000\n"
    assert c.sh("cat /proc/self/oom_score_adj").stdout == "1000\n"


def test_cpu_time_limit_ends_the_cell_not_the_namespace(agent):
    c = agent()
    c.py("x = 1\nwhile True:\n    pass", cpu_seconds=1)
    r = c.py("y = 0\nwhile True:\n    y += 1", cpu_seconds=1, timeout_ms=20000)
    assert r.final["exit_code"] == 1 and r.final["timed_out"] is False and "state_reset" not in r.final
    assert "CPUTimeLimitExceeded" in r.stderr and r.final["duration_ms"] < 10000
    assert c.py("print(x, y > 0)").stdout == "1 True\n"
    # the budget is per cell: the next one gets its own
    assert c.py("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\nprint('ok')",
                cpu_seconds=1).stdout == "ok\n"
    r = c.sh("while :; do :; done", cpu_seconds=1, timeout_ms=20000)
    assert r.final["exit_code"] == 128 + signal.SIGXCPU and r.final["timed_out"] is False


def test_a_request_body_in_chunks(agent):
    c = agent()
    body = json.dumps({"code": "print(len(%r))" % ("x" * 100000), "timeout_ms": 5000}).encode()
    rid = c.start("P", {"body_bytes": len(body)})
    for i in range(0, len(body), 1 << 16):
        c.send("w", rid, body[i:i + (1 << 16)])
    assert c.wait(rid).stdout == "100000\n"
    assert c.call("B", {"body_bytes": (16 << 20) + 1}).final["error"] == "bad_request"


def test_a_read_waits_for_its_readers_acks(agent, box):
    c = agent()
    with open(os.path.join(box["WS"], "big"), "wb") as f:
        f.write(b"q" * (3 << 20))
    rid = c.start("r", {"path": "big", "max_bytes": 4 << 20, "window": 1 << 20})
    got = 0
    settle_until = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # no ack: the agent stops within the window
        if got >= 1 << 20 and settle_until is None:
            settle_until = time.monotonic() + 0.5  # and sends nothing more meanwhile
        end = settle_until if settle_until is not None else deadline
        if time.monotonic() >= end:
            break
        try:
            f = c.frame(timeout=max(0.01, end - time.monotonic()))
        except AssertionError:
            continue
        if f and f[0] == "D" and f[1] == rid:
            got += len(f[2])
    assert (1 << 20) <= got < (1 << 20) + (1 << 16)
    assert c.call("p", {}).final == {"ok": True}  # the connection itself is not held up
    c.send("A", rid, struct.pack(">I", 3 << 20))
    r = c.wait(rid)
    assert got + len(r.data) == 3 << 20 and r.final == {"size": 3 << 20}


def test_an_agent_whose_socket_is_gone_ends(agent, box):
    c = agent()
    pid = c.hello["pid"]
    kernel = int(c.py("import os; print(os.getpid())").stdout)
    os.unlink(os.path.join(box["CTL"], "agent.sock"))
    deadline = time.monotonic() + 10
    while (alive(pid) or alive(kernel)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and not alive(kernel)
