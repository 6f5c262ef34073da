/**
 * Small Python programs the backends run *inside* executor containers/pods through exec.
 * Passing them with `python3 -c` keeps the executor image generic (any image with python3,
 * tar and coreutils works) and gives Docker and Kubernetes exactly the same behaviour.
 *
 * Protocols (all paths are under /workspace, checked by assertSafeWorkspacePath first):
 * - RUNNER: argv mode(python|bash) execId cpuSeconds interactive(1|0) collect(1|0) timeoutMs
 *   forwardLimitBytes maxFiles maxFileBytes;
 *   stdin = "<codeBytes> <stdinBytes>\n" + the UTF-8 code + the program's stdin bytes. The
 *   runner hands the program exactly those stdin bytes followed by EOF, so no transport
 *   needs to half-close its stdin. It forks the program into its own process group, relays
 *   its output, enforces the timeout itself (SIGKILL to the group and to every process
 *   tagged with the exec id), then, when asked, streams a tar of the files created or
 *   changed in /workspace. Everything it writes is framed: kind byte, 4-byte big-endian
 *   length, payload — "1" stdout, "2" stderr, "F" tar bytes, "X" the final JSON
 *   {exit_code, timed_out, duration_ms}. One exec per run, whatever the platform.
 * - KILL: argv execId; SIGKILLs the runner's process group and every process whose
 *   environment carries CODE_INTERPRETER_EXEC_ID=<execId>.
 * - LIST: argv maxEntries; prints JSON [[path, "file"|"directory", size], ...].
 * - READ: argv path; prints "<size>\n" then the bytes; exit 2 = missing, 3 = not a regular file.
 * - STATE: argv statePath read|touch|extend [ms]; prints the state JSON after the change.
 * - KEEPER: argv statePath|- maxExpiresAtMs expiresAtMs idleSeconds createdAtMs; PID 1 of a
 *   session: reaps zombies and exits (ending the container/pod) when the session's life ends.
 */

export const EXEC_ID_ENV = "CODE_INTERPRETER_EXEC_ID";
export const CONTROL_DIR = "/tmp/.code-interpreter";
/** Root-owned tmpfs (Docker) holding the session's mutable state; read-only for the code. */
export const STATE_DIR = "/run/code-interpreter";
export const STATE_FILE = `${STATE_DIR}/state.json`;

export const RUNNER_PY = String.raw`
import os, sys, json, stat, signal, select, struct, time
CTL = "/tmp/.code-interpreter"
WS = "/workspace"

def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]

class FrameFile:
    def __init__(self, kind):
        self.kind = kind
    def write(self, data):
        view = memoryview(data)
        for i in range(0, len(view), 1 << 16):
            chunk = bytes(view[i:i + (1 << 16)])
            write_all(1, self.kind + struct.pack(">I", len(chunk)) + chunk)
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

def read_request(exec_id):
    hdr = b""
    while not hdr.endswith(b"\n"):
        c = os.read(0, 1)
        if not c:
            break
        hdr += c
    parts = (hdr.strip() or b"0 0").split()
    code = read_exact(int(parts[0])).decode("utf-8", "replace")
    data = read_exact(int(parts[1]) if len(parts) > 1 else 0)
    # The program's stdin is exactly the caller's bytes, then EOF, whatever the transport
    # does with its own stdin (WebSocket exec cannot half-close).
    path = os.path.join(CTL, exec_id + ".stdin")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        write_all(fd, data)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY)
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

def collect(snap, max_files, max_bytes):
    import io, tarfile
    out = tarfile.open(fileobj=FrameFile(b"F"), mode="w|", format=tarfile.PAX_FORMAT)
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
            if st.st_size > max_bytes or count >= max_files:
                continue
            try:
                fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
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
    tag = ("CODE_INTERPRETER_EXEC_ID=" + exec_id).encode()
    me = os.getpid()
    for _ in range(3):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) == me:
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
    import ast, builtins, linecache, traceback
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

def child(mode, code, interactive, cpu, out_w, err_w):
    os.setpgid(0, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
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

def main():
    (mode, exec_id, cpu, interactive, want_files, timeout_ms,
     forward_limit, max_files, max_bytes) = sys.argv[1:10]
    cpu, timeout_ms, forward_limit = int(cpu), int(timeout_ms), int(forward_limit)
    try:
        os.makedirs(CTL, mode=0o700, exist_ok=True)
    except OSError:
        pass
    code = read_request(exec_id)
    snap = snapshot() if want_files == "1" else None
    os.chdir(WS) if os.path.isdir(WS) else None
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
                data = os.read(fd, 1 << 16)
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
                write_all(1, open_fds[fd] + struct.pack(">I", len(chunk)) + chunk)
    for fd in list(open_fds):
        os.close(fd)
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
    write_all(1, b"X" + struct.pack(">I", len(msg)) + msg)

main()
`;

export const KILL_PY = String.raw`
import os, sys, signal
eid = sys.argv[1]
me = os.getpid()
tag = ("CODE_INTERPRETER_EXEC_ID=" + eid).encode()
pgid = None
try:
    with open("/tmp/.code-interpreter/" + eid + ".pid") as f:
        pgid = int(f.read().strip())
except (OSError, ValueError):
    pass
for _ in range(3):
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
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
`;

export const LIST_PY = String.raw`
import os, sys, json, stat
WS = "/workspace"
limit = int(sys.argv[1])
out = []
for root, dirs, files in os.walk(WS):
    dirs.sort()
    for name in dirs + sorted(files):
        full = os.path.join(root, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        rel = os.path.relpath(full, WS)
        if stat.S_ISDIR(st.st_mode):
            out.append([rel, "directory", 0])
        elif stat.S_ISREG(st.st_mode):
            out.append([rel, "file", st.st_size])
        if len(out) >= limit:
            break
    if len(out) >= limit:
        break
out.sort(key=lambda e: e[0])
sys.stdout.write(json.dumps(out))
`;

export const READ_PY = String.raw`
import os, sys, stat, shutil
path = os.path.join("/workspace", sys.argv[1])
try:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
except FileNotFoundError:
    sys.exit(2)
except OSError:
    sys.exit(3)
st = os.fstat(fd)
if not stat.S_ISREG(st.st_mode):
    sys.exit(3)
out = sys.stdout.buffer
out.write(b"%d\n" % st.st_size)
with os.fdopen(fd, "rb") as f:
    left = st.st_size
    while left > 0:
        chunk = f.read(min(65536, left))
        if not chunk:
            break
        out.write(chunk)
        left -= len(chunk)
    if left > 0:
        out.write(b"\0" * left)
out.flush()
`;

export const STATE_PY = String.raw`
import os, sys, json, time, fcntl
path, op = sys.argv[1], sys.argv[2]
def load():
    try:
        with open(path) as f:
            v = json.load(f)
            return v if isinstance(v, dict) else {}
    except (OSError, ValueError):
        return {}
if op == "read":
    sys.stdout.write(json.dumps(load()))
    sys.exit(0)
with open(path + ".lock", "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    s = load()
    now = int(time.time() * 1000)
    if op == "touch":
        s["lastActiveAt"] = max(int(s.get("lastActiveAt", 0)), now)
    elif op == "extend":
        s["expiresAt"] = max(int(s.get("expiresAt", 0)), int(sys.argv[3]))
        s["lastActiveAt"] = max(int(s.get("lastActiveAt", 0)), now)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(s, f)
    os.replace(tmp, path)
sys.stdout.write(json.dumps(s))
`;

export const KEEPER_PY = String.raw`
import os, sys, time, json, signal
sp = sys.argv[1]
hard, exp, idle, created = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def stop(*_):
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
    except ChildProcessError:
        pass
    s = {}
    if sp != "-":
        try:
            with open(sp) as f:
                s = json.load(f)
        except (OSError, ValueError):
            s = {}
    e = max(exp, int(s.get("expiresAt", 0) or 0))
    la = max(created, int(s.get("lastActiveAt", 0) or 0))
    dl = min(hard, e)
    if idle > 0:
        dl = min(dl, la + idle * 1000)
    now = time.time() * 1000
    if now >= dl:
        sys.exit(0)
    time.sleep(min(2.0, (dl - now) / 1000.0 + 0.05))
`;

/**
 * The runner is sent on stdin, ahead of the request, and started by this bootstrap: command
 * lines stay short (Kubernetes exec carries argv in the URL) and every platform gets the same
 * bytes.
 */
export const RUNNER_BOOTSTRAP_PY = [
  "import os, sys",
  "n = int(sys.argv.pop(1))",
  "b = bytearray()",
  "while len(b) < n:",
  "    c = os.read(0, n - len(b))",
  "    if not c:",
  "        break",
  "    b += c",
  "exec(compile(bytes(b), '<runner>', 'exec'))",
].join("\n");
const RUNNER_BYTES = Buffer.from(RUNNER_PY, "utf8");

/** Command lines for the scripts, identical on every backend. */
export const executorCommands = {
  keeper(args: {
    statePath: string | null;
    maxExpiresAt: number;
    expiresAt: number;
    idleTimeoutSeconds: number | null;
    createdAt: number;
  }): string[] {
    return [
      "python3",
      "-c",
      KEEPER_PY,
      args.statePath ?? "-",
      String(Math.floor(args.maxExpiresAt)),
      String(Math.floor(args.expiresAt)),
      String(args.idleTimeoutSeconds ?? 0),
      String(Math.floor(args.createdAt)),
    ];
  },
  run(args: {
    execId: string;
    language: "python" | "bash";
    cpuSeconds: number;
    lastLineInteractive: boolean;
    collect: boolean;
    timeoutMs: number;
    forwardLimitBytes: number;
    maxFiles: number;
    maxFileBytes: number;
  }): string[] {
    return [
      "env",
      `${EXEC_ID_ENV}=${args.execId}`,
      "python3",
      "-c",
      RUNNER_BOOTSTRAP_PY,
      String(RUNNER_BYTES.length),
      args.language,
      args.execId,
      String(args.cpuSeconds),
      args.lastLineInteractive ? "1" : "0",
      args.collect ? "1" : "0",
      String(Math.max(1, Math.floor(args.timeoutMs))),
      String(args.forwardLimitBytes),
      String(args.maxFiles),
      String(args.maxFileBytes),
    ];
  },
  kill(execId: string): string[] {
    return ["python3", "-c", KILL_PY, execId];
  },
  list(maxEntries: number): string[] {
    return ["python3", "-c", LIST_PY, String(maxEntries)];
  },
  read(path: string): string[] {
    return ["python3", "-c", READ_PY, path];
  },
  /** Extracts a tar from stdin into /workspace (staging and PUT). */
  extract(): string[] {
    return ["tar", "-x", "-m", "--no-same-owner", "--no-same-permissions", "-C", "/workspace", "-f", "-"];
  },
  state(op: "read" | "touch" | "extend", value?: number): string[] {
    const cmd = ["python3", "-c", STATE_PY, STATE_FILE, op];
    if (op === "extend") cmd.push(String(Math.floor(value ?? 0)));
    return cmd;
  },
};

/** The whole stdin of a run: the runner's source (for the bootstrap), then the framed request. */
export function runnerInput(code: string, stdin: string | null | undefined): Buffer {
  return Buffer.concat([RUNNER_BYTES, runnerStdin(code, stdin)]);
}

/** Frames the runner's request: "<codeBytes> <stdinBytes>\n", the code, then the program's stdin. */
export function runnerStdin(code: string, stdin: string | null | undefined): Buffer {
  const body = Buffer.from(code, "utf8");
  const input = Buffer.from(stdin ?? "", "utf8");
  return Buffer.concat([Buffer.from(`${body.length} ${input.length}\n`), body, input]);
}

/** Grace after a timeout for the killed program's output to drain before the stream is cut. */
export const KILL_DRAIN_MS = 1000;
/**
 * The runner enforces the timeout itself; the backend steps in (kill from outside) only if
 * the runner has not reported this long after the deadline (e.g. the code killed it).
 */
export const RUNNER_BACKSTOP_MS = 3000;
/** One-shot executors older than their timeout plus this margin are orphans (API crashed). */
export const EXECUTOR_REAP_MARGIN_MS = 60_000;
/** Cap on files collected from one execution. */
export const MAX_COLLECTED_FILES = 100;
/** Cap on entries in a session file listing. */
export const MAX_LISTED_ENTRIES = 10_000;
