"""agent.py on the host (see agent_client.py): bash calls and file operations."""
import io
import json
import os
import signal
import struct
import tarfile
import time

from agent_client import alive


def test_bash_is_a_fresh_process_in_the_workspace(agent, box):
    c = agent()
    r = c.sh("pwd; echo err >&2; cat; exit 3", stdin="in")
    assert r.stdout == box["WS"] + "\nin" and r.stderr == "err\n" and r.final["exit_code"] == 3


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


def test_bash_starts_no_interpreter_and_a_killed_zygote_is_replaced(agent):
    c = agent()
    # the supervisor ($PPID) is forked from the zygote, not a newly started interpreter: its
    # command line is the zygote's, and its parent is the zygote
    assert c.sh("tr '\\0' '\\n' < /proc/$PPID/cmdline | tail -n 1").stdout == "zygote\n"
    zygote = c.sh("cut -d' ' -f4 /proc/$PPID/stat").stdout.strip()
    with open("/proc/%s/cmdline" % zygote, "rb") as f:
        assert f.read().split(b"\0")[-2] == b"zygote"
    again = c.sh("cut -d' ' -f4 /proc/$PPID/stat").stdout.strip()
    assert again == zygote  # the same zygote serves every call
    os.kill(int(zygote), signal.SIGKILL)
    r = c.sh("echo ok; cut -d' ' -f4 /proc/$PPID/stat")
    assert r.final["exit_code"] == 0 and r.stdout.splitlines()[0] == "ok"
    assert r.stdout.splitlines()[1] != zygote


def test_a_bash_call_that_cannot_start_leaks_no_descriptor(agent):
    c = agent()
    assert c.sh("true").final["exit_code"] == 0
    fds = "/proc/%d/fd" % c.hello["pid"]
    before = len(os.listdir(fds))
    for _ in range(5):  # a lone surrogate cannot become bash's argv
        r = c.call("B", {"code": "echo \ud800", "timeout_ms": 1000})
        assert r.kind == "E" and r.final["error"] == "failed"
    assert len(os.listdir(fds)) == before
    assert c.sh("echo ok").stdout == "ok\n"
