import io
import os
import tarfile

from conftest import NOBODY, runner


def test_prints_output_and_exit_record(box):
    r = runner(box, "print('hi')\nimport sys\n_ = sys.stderr.write('err')\n")
    assert r.stdout == "hi\n"
    assert r.stderr == "err"
    assert r.exit["exit_code"] == 0 and r.exit["timed_out"] is False


def test_repl_prints_a_bare_last_expression_only(box):
    assert runner(box, "x = 2\nx * 21").stdout == "42\n"
    assert runner(box, "x = 2\nx * 21", interactive=False).stdout == ""
    assert runner(box, "None").stdout == ""
    assert runner(box, "def f():\n    return 1\nf()").stdout == "1\n"


def test_traceback_and_exit_codes(box):
    r = runner(box, "1/0")
    assert r.exit["exit_code"] == 1 and "ZeroDivisionError" in r.stderr
    assert runner(box, "import sys; sys.exit(7)").exit["exit_code"] == 7
    r = runner(box, "def f(:\n")
    assert r.exit["exit_code"] == 1 and "SyntaxError" in r.stderr


def test_stdin_is_the_callers_bytes_then_eof(box):
    r = runner(box, "import sys; print(repr(sys.stdin.read()))", stdin=b"a\nb")
    assert r.stdout == "'a\\nb'\n"


def test_bash_mode(box):
    r = runner(box, "echo $((6*7)); exit 3", mode="bash")
    assert r.stdout == "42\n" and r.exit["exit_code"] == 3


def test_timeout_kills_the_program_and_its_children(box):
    r = runner(box, "sleep 30 & sleep 30; echo never", mode="bash", timeout_ms=500)
    assert r.exit["timed_out"] is True and r.exit["exit_code"] is None
    assert r.exit["duration_ms"] < 5000
    assert "never" not in r.stdout


def test_output_is_cut_at_the_forward_limit_and_frames_stay_small(box):
    r = runner(box, "print('x' * 300000)", forward=1000)
    assert len(r.stdout) == 1000
    r = runner(box, "print('y' * 300000)")
    assert len(r.stdout) == 300001
    assert all(len(p) <= 1 << 16 for _, p in r.frames)


def test_collects_new_and_changed_regular_files_only(box):
    with open(os.path.join(box["WS"], "same.txt"), "w") as f:
        f.write("unchanged")
    code = ("import os\nopen('new.txt','w').write('n')\nos.makedirs('d', exist_ok=True)\n"
            "open('d/deep.bin','wb').write(b'\\0\\1')\nos.symlink('/etc/passwd', 'link')\n"
            "os.mkfifo('fifo')\nopen('big','wb').write(b'z' * 5000)\n")
    r = runner(box, code, collect=True, max_bytes=4096)
    tf = tarfile.open(fileobj=io.BytesIO(r.tar), mode="r:")
    names = sorted(m.name for m in tf.getmembers())
    assert names == ["d/deep.bin", "new.txt"]


def test_collects_at_most_max_files(box):
    r = runner(box, "for i in range(20): open('f%d' % i, 'w').write('x')", collect=True, max_files=5)
    assert len(tarfile.open(fileobj=io.BytesIO(r.tar), mode="r:").getmembers()) == 5


def test_program_sees_cwd_and_its_own_modules(box):
    with open(os.path.join(box["WS"], "mymod.py"), "w") as f:
        f.write("VALUE = 5\n")
    r = runner(box, "import os, mymod\nprint(os.getcwd() == %r, mymod.VALUE)" % box["WS"])
    assert r.stdout == "True 5\n", r.stderr


def test_program_is_dumpable_and_first_for_the_oom_killer(box):
    code = ("import ctypes\nprint(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
            "print(open('/proc/self/oom_score_adj').read().strip())\n"
            "print(len(open('/proc/self/environ', 'rb').read()) > 0)")
    assert runner(box, code, uid=NOBODY).stdout == "1\n1000\nTrue\n"


def test_the_runners_channel_is_out_of_the_programs_reach(box):
    # Same uid as the runner, as in an executor: its fds cannot be opened, it cannot be traced.
    code = ("import os, ctypes\n"
            "try:\n    open('/proc/%d/fd/1' % os.getppid(), 'wb').write(b'X\\0\\0\\0\\2{}')\n"
            "    print('opened')\nexcept PermissionError:\n    print('denied')\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.ptrace(0x4206, os.getppid(), 0, 0), ctypes.get_errno())\n")
    r = runner(box, code, uid=NOBODY)
    assert r.stdout == "denied\n-1 1\n", r.stdout + r.stderr


def test_the_runner_refuses_a_forged_pid_file_target(box):
    # The run's pid file names the program's own group, and is removed afterwards.
    r = runner(box, "import os; print(open(%r).read().strip() == str(os.getpgid(0)))"
               % os.path.join(box["CTL"], "e1.pid"))
    assert r.stdout == "True\n"
    assert not os.path.exists(os.path.join(box["CTL"], "e1.pid"))


def test_program_gets_what_python3_c_would_give_it(box):
    with open(os.path.join(box["WS"], "mod2.py"), "w") as f:
        f.write("V = 1\n")
    code = ("import sys, os, mod2\nprint(sys.path[0] == '', '/extra' in sys.path)\n"
            "print(os.path.exists('__pycache__'))\nexit(3)")
    env_box = dict(box)
    r = runner(env_box, code, env={"PYTHONPATH": "/extra", "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.stdout == "True True\nFalse\n", r.stderr
    assert r.exit["exit_code"] == 3


def test_the_runner_refuses_to_run_while_traced(box):
    # A tracer attached before the runner became non-dumpable keeps its grip: the runner must
    # notice (TracerPid) and refuse, before it reads the request or starts the program.
    import ctypes
    import signal
    from conftest import boot_cmd, source
    libc = ctypes.CDLL(None, use_errno=True)
    prog = source("runner.py", WS=box["WS"], CTL=box["CTL"]).encode()
    body = b"open('ran', 'w').close()"
    stdin = prog + b"%d 0\n" % len(body) + body
    argv = boot_cmd(prog, ["python", "e9", 0, "1", "0", 5000, 1000, 1, 1])
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(in_r, 0)
        os.dup2(out_w, 1)
        libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME
        os.execv(argv[0], argv)
    os.close(in_r)
    os.close(out_w)
    os.write(in_w, stdin)
    os.close(in_w)
    while True:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
        sig = os.WSTOPSIG(status)
        libc.ptrace(7, pid, 0, 0 if sig == signal.SIGTRAP else sig)  # PTRACE_CONT
    out = os.read(out_r, 1 << 16)
    os.close(out_r)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 125
    assert out == b""
    assert not os.path.exists(os.path.join(box["WS"], "ran"))


def test_collects_only_names_the_api_accepts(box):
    code = ("import os\nfor n in ('ok.txt', 'new\\nline', 'back\\\\slash', 'x' * 256, 'caf\\udcff'):\n"
            "    try:\n        open(n, 'w').write('x')\n    except (OSError, UnicodeError):\n        pass\n")
    r = runner(box, code, collect=True)
    assert r.exit["exit_code"] == 0, r.stderr
    assert [m.name for m in tarfile.open(fileobj=io.BytesIO(r.tar), mode="r:")] == ["ok.txt"]
