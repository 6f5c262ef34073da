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

Shipped as ONE program: the runner_*.py files (in name order), then this file, joined into one
source (core's executor-scripts.ts `RUNNER_PY`; the pytest helpers join them the same way), so
they share one namespace. Each file does one job:
  runner_kill.py     the program's process group recorded for the killer; kill_all
  runner_program.py  the forked program: limits, descriptors, bash or Python (REPL semantics)
  runner_request.py  the request on stdin; the program's stdin handed over, then EOF
  runner.py          the framing, file collection (the resident agent reuses snapshot and
                     collect from this file alone) and main: fork, relay, timeout, exit record
"""
import json
import os
import select
import stat
import struct
import sys
import time

CTL = "/tmp/.code-interpreter"
WS = "/workspace"
MAX_FRAME = 1 << 16

if False:  # defined in the runner_*.py files, shipped ahead of this one as one program
    from runner_kill import forget_pgid, kill_all, record_pgid
    from runner_program import child
    from runner_request import read_request


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
