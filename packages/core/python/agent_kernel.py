"""The kernel role: runs Python cells in one persistent namespace (REPL printing of a bare last
expression), as a child of the agent. Part of the agent's bundle (see agent.py).

Requests arrive as JSON lines on `cin`. Each cell's report ({"exit_code"} as one JSON line) goes
to a pipe the agent makes for that cell alone and hands over on `fdsock` (SCM_RIGHTS) just
before the request: the kernel writes the report and closes it. The cell's code runs in this
process and can reach that pipe while it runs, so it can forge (only) its own cell's report: a
well-formed line written there ends its own cell early with the exit code it chose. Garbage
does not (the agent drops what is not a well-formed line of at most 4 KiB, holding nothing
past that), and when the agent has its report it closes its end: nothing written there reaches
another cell, and a later cell's report never comes from an earlier cell's bytes.
"""
import json
import os
import signal
import socket
import sys

from agent_base import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, WS, memfd_with, prctl, write_all


def kernel(cin, fdsock):
    import ast
    import builtins
    import io
    import linecache
    import traceback
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 1)
    if os.getppid() == 1:
        os._exit(0)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    if os.path.isdir(WS):
        os.chdir(WS)

    def text_out(fd):
        return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                errors="backslashreplace", line_buffering=True, write_through=True)
    sys.stdout, sys.stderr = text_out(1), text_out(2)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        sys.dont_write_bytecode = True
    import site
    site.ENABLE_USER_SITE = True
    try:
        site.main()
    except Exception:
        pass
    sys.path[0:0] = [""] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.argv = ["-c"]
    g = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None}
    ctl_in = os.fdopen(cin, "rb", buffering=0)
    fds = socket.socket(fileno=fdsock)
    fds.shutdown(socket.SHUT_WR)  # only ever received from: the code cannot send the agent anything on it
    fn = "<string>"

    import resource

    class CPUTimeLimitExceeded(BaseException):
        """The cell used its CPU-time budget (SIGXCPU); the namespace survives."""

    def on_xcpu(*_):
        raise CPUTimeLimitExceeded("the cell used more than its CPU time")
    signal.signal(signal.SIGXCPU, on_xcpu)

    def cpu_budget(seconds):
        """RLIMIT_CPU counts the whole process: the soft limit becomes now + seconds."""
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if seconds <= 0:
            lim = hard
        else:
            used = sum(os.times()[:2])
            lim = int(used) + 1 + seconds
            if hard != resource.RLIM_INFINITY:
                lim = min(lim, hard)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (lim, hard))
        except (ValueError, OSError):
            pass

    def cell(code, interactive):
        linecache.cache[fn] = (len(code), None, code.splitlines(True), fn)
        try:
            tree = ast.parse(code, fn, "exec")
        except (SyntaxError, ValueError) as e:
            sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
            return 1
        last = None
        if interactive and tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body.pop()
        try:
            exec(compile(tree, fn, "exec"), g)
            if last is not None:
                sys.displayhook(eval(compile(ast.Expression(last.value), fn, "eval"), g))
            return 0
        except SystemExit as e:
            if e.code is None:
                return 0
            if isinstance(e.code, int):
                return e.code & 0xFF
            sys.stderr.write(str(e.code) + "\n")
            return 1
        except BaseException as e:
            tb = e.__traceback__
            while tb is not None and tb.tb_frame.f_globals is not g:
                tb = tb.tb_next
            traceback.print_exception(type(e), e, tb)
            return 1

    line = b""
    report = None
    while True:
        try:
            if not line.endswith(b"\n"):
                c = ctl_in.read(1 << 16)
                if not c:
                    os._exit(0)
                line += c
                continue
            one, _, line = line.partition(b"\n")
            # This cell's report pipe, sent just before its request.
            _, got, _, _ = socket.recv_fds(fds, 16, 1, socket.MSG_CMSG_CLOEXEC)
            report = got[0] if got else None
            if report is not None:
                os.set_inheritable(report, False)  # a child of the cell never holds it
            req = json.loads(one)
            mfd = memfd_with(req.get("stdin", "").encode("utf-8", "replace"))
            os.dup2(mfd, 0)
            os.close(mfd)
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
            cpu_budget(int(req.get("cpu_seconds", 0)))
            try:
                code = cell(req.get("code", ""), bool(req.get("interactive", True)))
            finally:
                cpu_budget(0)
            for s in (sys.stdout, sys.stderr):
                try:
                    s.flush()
                except Exception:
                    pass
            if report is not None:
                try:
                    # A newline first: whatever the code left unterminated there ends before it.
                    write_all(report, b"\n" + json.dumps({"exit_code": code}).encode() + b"\n")
                except OSError:
                    pass  # the agent stopped listening (or the code closed the pipe)
        except KeyboardInterrupt:
            pass  # an interrupt that came between cells
        finally:
            if report is not None:
                try:
                    os.close(report)
                except OSError:
                    pass
                report = None
