"""The program's side of the fork: its process group, dumpability, oom score, RLIMIT_CPU and
descriptors, then bash or Python with REPL semantics (a bare last expression is printed). Shipped
as one program with runner.py (see there)."""
import os
import signal
import sys

PR_SET_DUMPABLE = 4


def set_dumpable(on):
    import ctypes
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0) == 0


def run_python(code, interactive):
    import ast
    import builtins
    import linecache
    import traceback
    fn = "<string>"
    linecache.cache[fn] = (len(code), None, code.splitlines(True), fn)
    g = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None}
    sys.argv = ["-c"]
    try:
        tree = ast.parse(code, fn, "exec")
    except (SyntaxError, ValueError) as e:
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        sys.stderr.flush()
        os._exit(1)
    last = None
    if interactive and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop()
    try:
        exec(compile(tree, fn, "exec"), g)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), fn, "eval"), g)
            sys.displayhook(value)
    except SystemExit:
        raise
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_globals is not g:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
        sys.stderr.flush()
        sys.stdout.flush()
        sys.exit(1)


def user_python_path():
    """What `python3 -c` would give the program, which this isolated (-I -S) runner left out:
    the working directory first, PYTHONPATH, the site directories (system and user site,
    `exit()` and friends), and PYTHONDONTWRITEBYTECODE."""
    import site
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        sys.dont_write_bytecode = True
    site.ENABLE_USER_SITE = True
    try:
        site.main()
    except Exception:
        pass
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:0] = [""] + extra


def child(mode, code, interactive, cpu, out_w, err_w):
    os.setpgid(0, 0)
    # The program is the user's own: it may read its own /proc/self (environ, fds, ...).
    set_dumpable(True)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)
    if cpu > 0:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        lim = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (lim, lim if hard != resource.RLIM_INFINITY else lim + 1))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if mode == "bash":
        os.execvp("bash", ["bash", "-c", code])
    # Fresh, unbuffered (write-through) text streams on the new descriptors, as python3 -u:
    # output reaches the caller while the program runs.
    import io

    def text_out(fd):
        return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                errors="backslashreplace", line_buffering=True, write_through=True)
    sys.stdout = text_out(1)
    sys.stderr = text_out(2)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    user_python_path()
    try:
        run_python(code, interactive)
    except SystemExit as e:
        c = e.code
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        if c is None:
            os._exit(0)
        if isinstance(c, int):
            os._exit(c & 0xFF)
        sys.stderr.write(str(c) + "\n")
        sys.stderr.flush()
        os._exit(1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(0)
