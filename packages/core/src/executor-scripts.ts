/**
 * Small Python programs the backends run *inside* executor containers/pods through exec.
 * Passing them with `python3 -c` keeps the executor image generic (any image with python3,
 * tar and coreutils works) and gives Docker and Kubernetes exactly the same behaviour.
 *
 * Protocols (all paths are under /workspace, checked by assertSafeWorkspacePath first):
 * - RUNNER: argv mode(python|bash) execId cpuSeconds interactive(1|0) snapshot(1|0);
 *   stdin = "<codeBytes> <stdinBytes>\n" + the UTF-8 code + the program's stdin bytes. The
 *   runner hands the program exactly those stdin bytes followed by EOF, so no transport
 *   needs to half-close its stdin.
 *   Becomes a session leader, writes its pid to /tmp/.code-interpreter/<execId>.pid,
 *   optionally snapshots /workspace, then runs the code in /workspace.
 * - KILL: argv execId; SIGKILLs the runner's process group and every process whose
 *   environment carries CODE_INTERPRETER_EXEC_ID=<execId>.
 * - COLLECT: argv execId maxFiles maxBytes; writes to stdout a tar (PAX) of regular files
 *   created or changed since the runner's snapshot.
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
import os, sys, json, stat
CTL = "/tmp/.code-interpreter"
WS = "/workspace"

def snapshot(path):
    snap = {}
    for root, dirs, files in os.walk(WS):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                snap[os.path.relpath(full, WS)] = [st.st_size, st.st_mtime_ns, st.st_ino]
    with open(path, "w") as f:
        json.dump(snap, f)

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
        os.write(fd, data)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY)
        os.unlink(path)
        os.dup2(fd, 0)
        os.close(fd)
    except OSError:
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    return code

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

def main():
    mode, exec_id, cpu, interactive, snap = sys.argv[1:6]
    try:
        os.setsid()
    except OSError:
        pass
    try:
        os.makedirs(CTL, mode=0o700, exist_ok=True)
        with open(os.path.join(CTL, exec_id + ".pid"), "w") as f:
            f.write(str(os.getpid()))
    except OSError:
        pass
    code = read_request(exec_id)
    if snap == "1":
        try:
            snapshot(os.path.join(CTL, exec_id + ".snap"))
        except OSError:
            pass
    cpu = int(cpu)
    if cpu > 0:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        lim = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (lim, lim if hard != resource.RLIM_INFINITY else lim + 1))
        except (ValueError, OSError):
            pass
    try:
        os.chdir(WS)
    except OSError:
        pass
    if mode == "bash":
        sys.stdout.flush()
        os.execvp("bash", ["bash", "-c", code])
    run_python(code, interactive == "1")

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

export const COLLECT_PY = String.raw`
import os, sys, json, stat, tarfile
eid, max_files, max_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
WS = "/workspace"
try:
    with open("/tmp/.code-interpreter/" + eid + ".snap") as f:
        snap = json.load(f)
except (OSError, ValueError):
    snap = {}
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT)
count = 0
skipped = []
for root, dirs, files in os.walk(WS):
    dirs.sort()
    for name in sorted(files):
        full = os.path.join(root, name)
        rel = os.path.relpath(full, WS)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if snap.get(rel) == [st.st_size, st.st_mtime_ns, st.st_ino]:
            continue
        if st.st_size > max_bytes or count >= max_files:
            skipped.append(rel)
            continue
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            skipped.append(rel)
            continue
        import io
        ti = tarfile.TarInfo(rel)
        ti.size = len(data)
        ti.mtime = int(st.st_mtime)
        ti.mode = 0o644
        out.addfile(ti, io.BytesIO(data))
        count += 1
out.close()
sys.stdout.flush()
if skipped:
    sys.stderr.write(json.dumps({"skipped": skipped}))
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
    snapshot: boolean;
  }): string[] {
    return [
      "env",
      `${EXEC_ID_ENV}=${args.execId}`,
      "python3",
      "-c",
      RUNNER_PY,
      args.language,
      args.execId,
      String(args.cpuSeconds),
      args.lastLineInteractive ? "1" : "0",
      args.snapshot ? "1" : "0",
    ];
  },
  kill(execId: string): string[] {
    return ["python3", "-c", KILL_PY, execId];
  },
  collect(execId: string, maxFiles: number, maxBytes: number): string[] {
    return ["python3", "-c", COLLECT_PY, execId, String(maxFiles), String(maxBytes)];
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

/** Frames the runner's stdin: "<codeBytes> <stdinBytes>\n", the code, then the program's stdin. */
export function runnerStdin(code: string, stdin: string | null | undefined): Buffer {
  const body = Buffer.from(code, "utf8");
  const input = Buffer.from(stdin ?? "", "utf8");
  return Buffer.concat([Buffer.from(`${body.length} ${input.length}\n`), body, input]);
}

/** Grace after a timeout for the killed program's output to drain before the stream is cut. */
export const KILL_DRAIN_MS = 1000;
/** One-shot executors older than their timeout plus this margin are orphans (API crashed). */
export const EXECUTOR_REAP_MARGIN_MS = 60_000;
/** Cap on files collected from one execution. */
export const MAX_COLLECTED_FILES = 100;
/** Cap on entries in a session file listing. */
export const MAX_LISTED_ENTRIES = 10_000;
