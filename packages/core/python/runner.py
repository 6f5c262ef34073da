"""Runs one program (Python or bash) for the API, inside the executor, as the code's uid.

Started by bootstrap.py (which has already made this process non-dumpable) with
argv: mode(python|bash) execId cpuSeconds interactive(1|0) collect(1|0) timeoutMs
      forwardLimitBytes maxFiles maxFileBytes
stdin: "<codeBytes> <stdinBytes>\\n", the UTF-8 code, then the program's stdin bytes.

Everything written to stdout is framed: kind byte, 4-byte big-endian length, payload
(at most MAX_FRAME bytes) - "1" stdout, "2" stderr, "F" tar bytes of the collected files,
"X" the final JSON {exit_code, timed_out, duration_ms}, always last and exactly once.

The control channel (this process's stdout) is out of the program's reach: this process is
non-dumpable (its /proc/<pid>/fd cannot be opened and it cannot be traced by the code's uid)
and refuses to run when something already traces it. The program's own process gets
dumpable back, runs with oom_score_adj 1000 (the memory killer's first choice, so the keeper
survives), in its own process group, with RLIMIT_CPU. The API re-checks every limit anyway.
"""
import json
import os
import select
import signal
import stat
import struct
import sys
import time

CTL = "/tmp/.code-interpreter"
WS = "/workspace"
TAG = "CODE_INTERPRETER_EXEC_ID="
MAX_FRAME = 1 << 16
PR_SET_DUMPABLE = 4


def set_dumpable(on):
    import ctypes
    return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0) == 0


def traced():
    """True when a tracer is attached (it could read our descriptors and memory)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1]) != 0
    except (OSError, ValueError, IndexError):
        return True
    return True


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def frame(kind, data):
    """Writes data as frames of at most MAX_FRAME bytes."""
    view = memoryview(data)
    if not view:
        return
    for i in range(0, len(view), MAX_FRAME):
        chunk = view[i:i + MAX_FRAME]
        write_all(1, kind + struct.pack(">I", len(chunk)) + bytes(chunk))


class FrameFile:
    """A write-only file object that frames what it gets (tarfile writes the collected files)."""

    def __init__(self, kind):
        self.kind = kind

    def write(self, data):
        frame(self.kind, data)
        return len(data)

    def flush(self):
        pass


def read_exact(n):
    buf = bytearray()
    while len(buf) < n:
        c = os.read(0, min(1 << 20, n - len(buf)))
        if not c:
            break
        buf += c
    return bytes(buf)


def parse_header(hdr):
    parts = (hdr.strip() or b"0 0").split()
    code_len = int(parts[0])
    data_len = int(parts[1]) if len(parts) > 1 else 0
    if code_len < 0 or data_len < 0:
        raise ValueError("negative length")
    return code_len, data_len


def read_request(exec_id):
    hdr = b""
    while not hdr.endswith(b"\n") and len(hdr) < 64:
        c = os.read(0, 1)
        if not c:
            break
        hdr += c
    code_len, data_len = parse_header(hdr)
    code = read_exact(code_len).decode("utf-8", "replace")
    data = read_exact(data_len)
    # The program's stdin is exactly the caller's bytes, then EOF, whatever the transport
    # does with its own stdin (WebSocket exec cannot half-close).
    path = os.path.join(CTL, exec_id + ".stdin")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        write_all(fd, data)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        os.unlink(path)
    except OSError:
        fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    return code


def snapshot():
    snap = {}
    for root, dirs, files in os.walk(WS):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                snap[os.path.relpath(full, WS)] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return snap


def collectable_name(rel):
    """Only names the API accepts (its workspacePathProblem rules) are sent: anything else
    would be taken for a forged entry and void the whole run's files."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if len(rel) > 1024 or "\\" in rel or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in rel):
        return False
    parts = rel.split("/")
    return len(parts) <= 32 and all(p not in ("", ".", "..") and len(p) <= 255 for p in parts)


def collect(snap, max_files, max_bytes, sink=None):
    """Streams a tar of the regular files created or changed since the snapshot (as F frames,
    or to `sink`, a file-like object: the resident agent reuses this)."""
    import io
    import tarfile
    out = tarfile.open(fileobj=sink or FrameFile(b"F"), mode="w|", format=tarfile.PAX_FORMAT)
    count = 0
    for root, dirs, files in os.walk(WS):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, WS)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or snap.get(rel) == (st.st_size, st.st_mtime_ns, st.st_ino):
                continue
            if st.st_size > max_bytes or count >= max_files or not collectable_name(rel):
                continue
            try:
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = f.read(max_bytes + 1)
            if len(data) > max_bytes:
                continue
            ti = tarfile.TarInfo(rel)
            ti.size = len(data)
            ti.mtime = int(st.st_mtime)
            ti.mode = 0o644
            out.addfile(ti, io.BytesIO(data))
            count += 1
    out.close()


def kill_all(exec_id, pgid):
    tag = (TAG + exec_id).encode()
    me = os.getpid()
    for _ in range(3):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) in (me, 1):
                continue
            try:
                with open("/proc/" + p + "/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if tag in env:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass


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


def record_pgid(exec_id, pgid):
    """For the killer (a separate exec): which process group this run's program leads."""
    path = os.path.join(CTL, exec_id + ".pid")
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        write_all(fd, b"%d\n" % pgid)
        os.close(fd)
        os.replace(tmp, path)
    except OSError:
        pass


def forget_pgid(exec_id):
    try:
        os.unlink(os.path.join(CTL, exec_id + ".pid"))
    except OSError:
        pass


def main(argv):
    (mode, exec_id, cpu, interactive, want_files, timeout_ms,
     forward_limit, max_files, max_bytes) = argv[:9]
    cpu, timeout_ms, forward_limit = int(cpu), int(timeout_ms), int(forward_limit)
    if traced():
        sys.stderr.write("runner: refusing to run while being traced\n")
        os._exit(125)
    try:
        os.makedirs(CTL, mode=0o700, exist_ok=True)
    except OSError:
        pass
    code = read_request(exec_id)
    snap = snapshot() if want_files == "1" else None
    if os.path.isdir(WS):
        os.chdir(WS)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        try:
            child(mode, code, interactive == "1", cpu, out_w, err_w)
        finally:
            os._exit(127)
    os.close(out_w)
    os.close(err_w)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    record_pgid(exec_id, pid)
    try:
        exit_fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        exit_fd = None
    deadline = started + timeout_ms / 1000.0
    open_fds = {out_r: b"1", err_r: b"2"}
    sent = {out_r: 0, err_r: 0}
    status = None
    timed_out = False
    drain_until = None
    while True:
        now = time.monotonic()
        if status is None:
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
                drain_until = now + 0.2
        if status is None and now >= deadline:
            timed_out = True
            kill_all(exec_id, pid)
            _, status = os.waitpid(pid, 0)
            drain_until = time.monotonic() + 0.2
        if status is not None and (not open_fds or time.monotonic() >= drain_until):
            break
        limit = (drain_until if drain_until is not None else deadline) - time.monotonic()
        waits = list(open_fds) + ([exit_fd] if exit_fd is not None and status is None else [])
        if exit_fd is None or not waits:
            limit = min(limit, 0.02)
        ready, _, _ = select.select(waits, [], [], max(0.0, limit))
        for fd in ready:
            if fd == exit_fd:
                continue
            try:
                data = os.read(fd, MAX_FRAME)
            except OSError:
                data = b""
            if not data:
                del open_fds[fd]
                os.close(fd)
                continue
            room = forward_limit - sent[fd]
            if room > 0:
                chunk = data[:room]
                sent[fd] += len(chunk)
                frame(open_fds[fd], chunk)
    for fd in list(open_fds):
        os.close(fd)
    forget_pgid(exec_id)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if timed_out:
        exit_code = None
    elif os.WIFEXITED(status):
        exit_code = os.WEXITSTATUS(status)
    else:
        exit_code = 128 + os.WTERMSIG(status)
    if snap is not None:
        try:
            collect(snap, int(max_files), int(max_bytes))
        except Exception as e:
            sys.stderr.write("collecting files failed: %s\n" % e)
    msg = json.dumps({"exit_code": exit_code, "timed_out": timed_out, "duration_ms": elapsed_ms}).encode()
    frame(b"X", msg)


if __name__ == "__main__":
    main(sys.argv[1:])
