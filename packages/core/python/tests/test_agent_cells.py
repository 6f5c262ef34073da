"""agent.py on the host (see agent_client.py): what a Python cell starts and what it can forge."""
import os
import signal
import time

from agent_client import alive

# The cell's own report pipe: the one write-only pipe the kernel holds besides stdout/stderr.
WRITERS = """
import fcntl, os, stat
def writers():
    out = []
    for f in os.listdir('/proc/self/fd'):
        fd = int(f)
        try:
            if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode) and \\
                    fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                out.append(fd)
        except OSError:
            pass
    return out
"""


def wait_dead(pids, seconds=5):
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_a_cell_timeout_kills_every_process_the_cell_started(agent, box):
    c = agent()
    c.py("x = 1")
    # started by an earlier cell that ended normally: it is not this cell's, and survives
    keep = int(c.py("import subprocess\nkeep = subprocess.Popen(['sleep', '1000'])\nprint(keep.pid)").stdout)
    pidfile = os.path.join(box["ROOT"], "pids")
    code = (
        "import os, subprocess, time\n"
        "pf = %r\n"
        "p = subprocess.Popen(['sleep', '1001'])\n"
        "open(pf, 'a').write('%%d\\n' %% p.pid)\n"
        # double-forked into a new session: re-parented away from the kernel
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        open(pf, 'a').write('%%d\\n' %% os.getpid())\n"
        "        time.sleep(1002)\n"
        "    os._exit(0)\n"
        # an `env -i` background child of a shell that has already exited
        "os.system('env -i sh -c \"sleep 1003 & echo \\\\$! >> %%s\"' %% pf)\n"
        # os.system() ignores SIGINT while its child runs: the child is killed, then the loop
        # gets the interrupt
        "os.system('echo $$ >> %%s; exec sleep 1004' %% pf)\n"
        "while True:\n"
        "    pass\n" % pidfile)
    r = c.py(code, timeout_ms=1500)
    assert r.final["timed_out"] is True and r.final["exit_code"] is None
    assert "state_reset" not in r.final, r.final
    pids = [int(x) for x in open(pidfile).read().split()]
    assert len(pids) == 4
    assert wait_dead(pids) == []
    assert alive(keep), c.py("print(keep.poll())").stdout
    assert c.py("print(x, keep.poll())").stdout == "1 None\n"
    os.kill(keep, signal.SIGKILL)


def test_a_cancelled_cell_kills_what_it_started(agent, box):
    c = agent()
    rid = c.start("P", {"code": "import subprocess, time\np = subprocess.Popen(['sleep', '1005'])\n"
                                "print(p.pid, flush=True)\ntime.sleep(60)", "timeout_ms": 60000})
    pid = None
    while pid is None:
        kind, frid, payload = c.frame()
        if frid == rid and kind == "1":
            pid = int(payload)
    c.send("C", rid)
    assert c.wait(rid, timeout=10).final["timed_out"] is True
    assert wait_dead([pid]) == []


def test_processes_of_a_cell_that_ends_normally_keep_running(agent):
    c = agent()
    pid = int(c.py("import os\n_ = os.system('sleep 30 >/dev/null 2>&1 & echo $!')").stdout)
    try:
        assert c.py("pass").final["exit_code"] == 0 and alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_cell_forges_only_its_own_report(agent):
    c = agent()
    r = c.py(WRITERS + "for fd in writers():\n    os.write(fd, b'{\"exit_code\": 42}\\n{\"exit_code\": 43}\\n')")
    assert r.final["exit_code"] == 42  # its own cell: the code runs in the reporting process
    r = c.py("print('next')")  # the leftover line never answers for a later cell
    assert r.final["exit_code"] == 0 and r.stdout == "next\n"
    # a report pipe kept for later is dead by then
    c.py(WRITERS + "kept = [os.dup(fd) for fd in writers()]")
    r = c.py("for fd in kept:\n    try:\n        os.write(fd, b'{\"exit_code\": 44}\\n')\n"
             "    except OSError as e:\n        print(type(e).__name__)")
    assert r.final["exit_code"] == 0 and r.stdout == "BrokenPipeError\n"


def test_garbage_on_the_report_pipe_is_dropped_bounded_and_ends_nothing(agent):
    c = agent()
    # 200 KB without a newline, then a line of another shape: neither is a report, neither is
    # held, and the cell runs to its real end (its output included)
    r = c.py(WRITERS + "for fd in writers():\n    os.write(fd, b'x' * 200000)\n    os.write(fd, b'\\n[1, 2]\\n{\"exit_code\": 999}\\n')"
             "\nprint('after')\nraise SystemExit(6)", timeout_ms=10000)
    assert r.final["exit_code"] == 6 and r.final["timed_out"] is False and r.stdout == "after\n"
    r = c.py("print(1 + 1)")
    assert r.final["exit_code"] == 0 and r.stdout == "2\n"
