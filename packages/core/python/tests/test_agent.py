"""agent.py on the host (see agent_client.py): the protocol, Python cells, reset, limits."""
import json
import os
import signal
import time

from agent_client import HEADER, alive


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


def test_the_kernel_is_started_before_the_first_request(agent):
    c = agent()
    agent_pid = c.hello["pid"]
    children = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == agent_pid:
            children.append(argv)
    assert any(b"kernel" in argv for argv in children), children
    assert c.py("x = 1\nx").stdout == "1\n"


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


def test_an_agent_whose_socket_is_gone_ends(agent, box):
    c = agent()
    pid = c.hello["pid"]
    kernel = int(c.py("import os; print(os.getpid())").stdout)
    os.unlink(os.path.join(box["CTL"], "agent.sock"))
    deadline = time.monotonic() + 10
    while (alive(pid) or alive(kernel)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and not alive(kernel)
