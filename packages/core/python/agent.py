"""The session's resident agent, its relay and its kernel, inside the executor as the code's uid.

One program, three roles (argv[1]), always started through bootstrap.py or BOOT below (so the
source arrives on stdin, and the bootstrap's global `b` holds it - the agent re-launches itself
from those bytes). The API prefixes it with `WORKSPACE_SRC = "<workspace.py>"` and
`RUNNER_SRC = "<runner.py>"` (see core's src/agent/program.ts): file operations reuse
workspace.py's functions, file collection the runner's snapshot and collect.

relay   the API's end of one channel: one long-lived exec per session per API process. Connects
        to the agent's unix socket (CTL/agent.sock, CTL 0700), starting a detached agent when
        none answers, passes on the agent's hello with "fresh" added (whether it had to start
        it), then copies bytes both ways until either end closes.
agent   serves any number of connections, requests multiplexed by id. Holds the Python state in
        a kernel child; runs bash under a per-call subreaper supervisor; does file operations.
kernel  runs cells in one persistent namespace (REPL printing of a bare last expression).

Frames, both directions: 4-byte big-endian payload length, kind byte, 4-byte big-endian
request id, payload (at most MAX_PAYLOAD bytes). Requests: P python, B bash (JSON), C cancel,
R reset, r read (A: bytes the reader took), W write (JSON header, then w chunks), S stage (JSON header, then w chunks),
L list, p ping (a P or B request too large for one frame is {"body_bytes": n}, then the JSON in
w chunks). Answers: H hello (id 0, first, {boot_id, pid, generation, fresh}), 1/2 output chunks, F collected files
(tar chunks), M file meta, D data chunks, and one final X (JSON result) or E (JSON error).
"""
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

CTL = "/tmp/.code-interpreter"
WS = "/workspace"
MAX_PAYLOAD = 1 << 16
MAX_BODY = 16 << 20
RELAY_BUFFER = 1 << 20
HEADER = struct.Struct(">IBI")
KILL_GRACE_S = 2.0
DRAIN_S = 0.2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
# A child started from our own bytes: non-dumpable first, then the source on stdin.
BOOT = (
    "import ctypes,os,sys\n"
    "if ctypes.CDLL(None).prctl(4,0,0,0,0)!=0:os._exit(125)\n"
    "n=int(sys.argv.pop(1));b=bytearray()\n"
    "while len(b)<n:\n"
    " c=os.read(0,n-len(b))\n"
    " if not c:break\n"
    " b+=c\n"
    "exec(compile(bytes(b),'<agent>','exec'))\n"
)
SUPERVISOR = r"""
import ctypes, os, signal, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans stay ours
class Kill(Exception):
    pass
def on_term(*_):
    raise Kill()
signal.signal(signal.SIGTERM, on_term)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    cpu = int(sys.argv[2])
    if cpu > 0:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        lim = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (lim, lim + 1 if hard == resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.execvp("bash", ["bash", "-c", sys.argv[1]])
def tree():
    me, kids = os.getpid(), {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [me]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out
status = None
try:
    while True:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if got == pid:
            status = st
            break
except Kill:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for _ in range(200):
        left = tree()
        if not left:
            break
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
    os._exit(137)
if status is None:
    os._exit(127)
os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


def prctl(op, arg):
    import ctypes
    return ctypes.CDLL(None, use_errno=True).prctl(op, arg, 0, 0, 0) == 0


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def self_source():
    src = globals().get("b")
    if src is None:
        raise RuntimeError("agent.py must be started through bootstrap.py")
    return bytes(src)


def spawn_self(role, detach, **kw):
    """Starts this program again in another role, its source piped through BOOT."""
    import subprocess
    src = self_source()
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", BOOT, str(len(src)), role],
                         stdin=subprocess.PIPE, start_new_session=detach, close_fds=True, **kw)
    p.stdin.write(src)
    p.stdin.close()
    return p


# ==================================================================== relay

def frame_bytes(kind, rid, payload):
    return HEADER.pack(len(payload), kind, rid) + payload


def relay():
    import fcntl
    os.makedirs(CTL, mode=0o700, exist_ok=True)
    path = os.path.join(CTL, "agent.sock")
    fresh = False
    s = connect(path)
    if s is None:
        with open(os.path.join(CTL, "agent.lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            s = connect(path)
            if s is None:
                fresh = True
                import subprocess
                p = spawn_self("agent", True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                p.wait()  # the agent forks away; this is the parent returning
                deadline = time.monotonic() + 10
                while s is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                    s = connect(path)
    if s is None:
        sys.stderr.write("relay: the agent did not start\n")
        os._exit(3)
    # The API's first frame: the agent's hello, with whether this relay had to start it.
    s.settimeout(10)
    try:
        n, kind, rid = HEADER.unpack(recv_exact(s, HEADER.size))
        if kind != ord("H") or rid != 0 or n > 4096:
            raise ValueError("not a hello")
        hello = json.loads(recv_exact(s, n))
        if not isinstance(hello, dict):
            raise ValueError("not a hello")
    except (OSError, ValueError) as e:
        sys.stderr.write("relay: the agent did not say hello (%s)\n" % e)
        os._exit(3)
    hello["fresh"] = fresh
    write_all(1, frame_bytes(ord("H"), 0, json.dumps(hello).encode()))
    pump(s)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise ValueError("the agent closed the connection")
        buf += c
    return buf


def pump(s):
    """Copies stdin to the socket and the socket to stdout, never blocking on one direction
    while the other is full (each side buffers at most RELAY_BUFFER bytes)."""
    sfd = s.fileno()
    s.setblocking(False)
    os.set_blocking(1, False)
    to_sock, to_out = bytearray(), bytearray()
    while True:
        r, w = [], []
        if len(to_sock) < RELAY_BUFFER:
            r.append(0)
        if len(to_out) < RELAY_BUFFER:
            r.append(sfd)
        if to_sock:
            w.append(sfd)
        if to_out:
            w.append(1)
        ready_r, ready_w, _ = select.select(r, w, [])
        if 0 in ready_r:
            data = os.read(0, 1 << 16)
            if not data:  # the API closed the channel
                os._exit(0)
            to_sock += data
        if sfd in ready_r:
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":  # the agent went away
                os.set_blocking(1, True)
                write_all(1, to_out)
                os._exit(0)
            if data:
                to_out += data
        if sfd in ready_w and to_sock:
            try:
                del to_sock[:s.send(to_sock)]
            except BlockingIOError:
                pass
            except OSError:
                os._exit(0)
        if 1 in ready_w and to_out:
            try:
                del to_out[:os.write(1, to_out)]
            except BlockingIOError:
                pass
            except OSError:
                os._exit(0)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return s
    except OSError:
        s.close()
        return None


# ==================================================================== kernel

def kernel(cin, cout):
    """Reads {code, stdin, interactive} lines on cin, answers {exit_code} lines on cout."""
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
    while True:
        try:
            if not line.endswith(b"\n"):
                c = ctl_in.read(1 << 16)
                if not c:
                    os._exit(0)
                line += c
                continue
            one, _, line = line.partition(b"\n")
            req = json.loads(one)
            data = req.get("stdin", "").encode("utf-8", "replace")
            mfd = os.memfd_create("stdin")
            write_all(mfd, data)
            os.lseek(mfd, 0, 0)
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
            write_all(cout, json.dumps({"exit_code": code}).encode() + b"\n")
        except KeyboardInterrupt:
            continue  # an interrupt that came between cells


# ==================================================================== agent

class Kernel:
    """The Python state: a kernel child, restarted when it dies or will not stop."""

    def __init__(self):
        self.proc = None
        self.generation = 0
        self.lock = threading.Lock()
        self.current = None

    def start(self):
        cin_r, cin_w = os.pipe()
        cout_r, cout_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        # The kernel finds its control pipes by the numbers in CI_KERNEL_FDS (it drops the
        # variable). Started from a thread that never ends: PR_SET_PDEATHSIG fires when the
        # parent *thread* exits.
        self.proc = in_spawner(lambda: spawn_self(
            "kernel", True, stdout=out_w, stderr=err_w, pass_fds=(cin_r, cout_w),
            env=dict(os.environ, CI_KERNEL_FDS="%d,%d" % (cin_r, cout_w))))
        for fd in (cin_r, cout_w, out_w, err_w):
            os.close(fd)
        self.cin, self.cout, self.out, self.err = cin_w, cout_r, out_r, err_r
        for fd in (self.cout, self.out, self.err):
            os.set_blocking(fd, False)
        self.buf = b""
        self.generation += 1

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for fd in (self.cin, self.cout, self.out, self.err):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None

    def drain_stale(self):
        for fd in (self.out, self.err):
            try:
                while os.read(fd, 1 << 16):
                    pass
            except (BlockingIOError, OSError):
                pass


SPAWN_QUEUE = []
SPAWN_COND = threading.Condition()


def in_spawner(fn):
    """Runs fn on the agent's long-lived spawner thread and returns its result."""
    box = {}
    with SPAWN_COND:
        SPAWN_QUEUE.append((fn, box))
        SPAWN_COND.notify_all()
        while "done" not in box:
            SPAWN_COND.wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def spawner():
    while True:
        with SPAWN_COND:
            while not SPAWN_QUEUE:
                SPAWN_COND.wait()
            fn, box = SPAWN_QUEUE.pop(0)
        try:
            box["value"] = fn()
        except Exception as e:
            box["error"] = e
        with SPAWN_COND:
            box["done"] = True
            SPAWN_COND.notify_all()


class Request:
    def __init__(self, conn, rid):
        self.conn, self.rid = conn, rid
        self.cancelled = threading.Event()
        self.cond = threading.Condition()
        self.acked = 0

    def cancel(self):
        self.cancelled.set()
        with self.cond:
            self.cond.notify_all()

    def ack(self, n):
        with self.cond:
            self.acked += n
            self.cond.notify_all()

    def wait_credit(self, sent, window):
        """Blocks while `window` bytes or more are unacknowledged (the reader is behind)."""
        with self.cond:
            while sent - self.acked >= window and not self.cancelled.is_set():
                self.cond.wait(1.0)


class Agent:
    def __init__(self):
        self.boot_id = os.urandom(8).hex()
        self.kernel = Kernel()
        w = {"__name__": "workspace"}
        exec(compile(globals()["WORKSPACE_SRC"], "<workspace>", "exec"), w)
        w["WS"] = WS
        self.ws = w
        r = {"__name__": "runner"}
        exec(compile(globals()["RUNNER_SRC"], "<runner>", "exec"), r)
        r["WS"] = WS
        self.runner = r

    def serve(self):
        threading.Thread(target=spawner, daemon=True).start()
        os.makedirs(CTL, mode=0o700, exist_ok=True)
        path = os.path.join(CTL, "agent.sock")
        try:
            os.unlink(path)
        except OSError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(64)
        mine = os.lstat(path).st_ino
        srv.settimeout(1.0)
        while True:
            try:
                c, _ = srv.accept()
            except socket.timeout:
                # Our socket was removed or replaced (by the code, or a test's cleanup): nobody
                # can reach us any more, so we end (the kernel follows, PR_SET_PDEATHSIG).
                try:
                    if os.lstat(path).st_ino != mine:
                        os._exit(0)
                except OSError:
                    os._exit(0)
                continue
            c.setblocking(True)
            threading.Thread(target=Conn(self, c).run, daemon=True).start()


class Conn:
    def __init__(self, agent, sock):
        self.agent, self.sock = agent, sock
        self.wlock = threading.Lock()
        self.requests = {}
        self.uploads = {}
        self.bodies = {}
        self.dead = False

    # ------------------------------------------------------------ output
    def send(self, kind, rid, payload=b""):
        if isinstance(kind, str):
            kind = ord(kind)
        view = memoryview(payload)
        with self.wlock:
            if self.dead:
                return
            try:
                if not view:
                    self.sock.sendall(HEADER.pack(0, kind, rid))
                for i in range(0, len(view), MAX_PAYLOAD):
                    chunk = view[i:i + MAX_PAYLOAD]
                    self.sock.sendall(HEADER.pack(len(chunk), kind, rid) + bytes(chunk))
            except OSError:
                self.dead = True

    def result(self, rid, obj):
        self.requests.pop(rid, None)
        self.send("X", rid, json.dumps(obj).encode())

    def error(self, rid, code, detail):
        self.requests.pop(rid, None)
        self.uploads.pop(rid, None)
        self.send("E", rid, json.dumps({"error": code, "detail": str(detail)[:1000]}).encode())

    # ------------------------------------------------------------ input
    def run(self):
        self.sock.settimeout(None)
        self.send("H", 0, json.dumps({"boot_id": self.agent.boot_id, "pid": os.getpid(),
                                      "generation": self.agent.kernel.generation}).encode())
        buf = bytearray()
        try:
            while True:
                data = self.sock.recv(1 << 18)
                if not data:
                    break
                buf += data
                off = 0
                while len(buf) - off >= HEADER.size:
                    n, kind, rid = HEADER.unpack_from(buf, off)
                    if n > MAX_PAYLOAD:
                        return
                    if len(buf) - off - HEADER.size < n:
                        break
                    payload = bytes(buf[off + HEADER.size:off + HEADER.size + n])
                    off += HEADER.size + n
                    try:
                        self.dispatch(chr(kind), rid, payload)
                    except Exception as e:  # e.g. no thread left under the pids limit
                        self.error(rid, "failed", "%s: %s" % (type(e).__name__, e))
                del buf[:off]
        except OSError:
            pass
        finally:
            self.dead = True
            for r in list(self.requests.values()):
                r.cancel()
            for u in list(self.uploads.values()):
                u.abort()
            try:
                self.sock.close()
            except OSError:
                pass

    def dispatch(self, kind, rid, payload):
        body = self.bodies.get(rid)
        if body is not None and kind in ("w", "C"):
            # A request too large for one frame: {"body_bytes": n}, then n bytes of JSON in w chunks.
            if kind == "C":
                del self.bodies[rid]
                self.error(rid, "cancelled", "cancelled")
                return
            body[1].extend(payload)
            if len(body[1]) > body[2]:
                del self.bodies[rid]
                self.error(rid, "bad_request", "more body bytes than announced")
            elif len(body[1]) == body[2]:
                del self.bodies[rid]
                self.dispatch(body[0], rid, bytes(body[1]))
            return
        if kind == "C":
            r = self.requests.get(rid)
            if r is not None:
                r.cancel()
            u = self.uploads.pop(rid, None)
            if u is not None:
                u.abort()
                self.error(rid, "cancelled", "cancelled")
            return
        if kind == "A":  # the API took this many more bytes of a read or of collected files
            r = self.requests.get(rid)
            if r is not None and len(payload) == 4:
                r.ack(struct.unpack(">I", payload)[0])
            return
        if kind == "w":
            u = self.uploads.get(rid)
            if u is not None:
                self.upload_chunk(rid, u, payload)
            return
        if rid in self.requests or rid in self.uploads or rid in self.bodies:
            self.error(rid, "bad_request", "request id already in use")
            return
        try:
            args = json.loads(payload) if payload else {}
            if not isinstance(args, dict):
                raise ValueError("not an object")
        except ValueError as e:
            self.error(rid, "bad_request", "bad request: %s" % e)
            return
        if "body_bytes" in args and kind in ("P", "B"):
            n = args["body_bytes"]
            if not isinstance(n, int) or not 0 < n <= MAX_BODY:
                self.error(rid, "bad_request", "body_bytes must be 1..%d" % MAX_BODY)
            else:
                self.bodies[rid] = (kind, bytearray(), n)
            return
        if kind == "p":
            self.result(rid, {"ok": True})
        elif kind in ("P", "B", "r", "R"):
            req = Request(self, rid)
            self.requests[rid] = req
            target = {"P": self.python, "B": self.bash, "r": self.read, "R": self.reset}[kind]
            threading.Thread(target=self.guard, args=(target, req, args), daemon=True).start()
        elif kind == "L":
            self.guard(self.list, Request(self, rid), args)
        elif kind in ("W", "S"):
            self.guard(self.upload_start, Request(self, rid), args)
        else:
            self.error(rid, "bad_request", "unknown request kind %r" % kind)

    def guard(self, fn, req, args):
        ws = self.agent.ws
        try:
            fn(req, args)
        except ws["Refused"] as e:
            names = {ws["EXIT_MISSING"]: "missing", ws["EXIT_TOO_LARGE"]: "too_large",
                     ws["EXIT_NO_SPACE"]: "no_space"}
            self.error(req.rid, names.get(e.code, "refused"), e)
        except OSError as e:
            import errno
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                self.error(req.rid, "no_space", "no space left in the workspace")
            else:
                self.error(req.rid, "failed", e)
        except Exception as e:
            self.error(req.rid, "failed", "%s: %s" % (type(e).__name__, e))

    # ------------------------------------------------------------ files
    def read(self, req, args):
        fd, size = self.agent.ws["open_for_read"](args.get("path"), int(args.get("max_bytes", 0)))
        try:
            self.send("M", req.rid, json.dumps({"size": size}).encode())
            # Flow control per read: at most `window` bytes ahead of the reader's acks (A), so
            # a slow reader never holds up the rest of the connection.
            window = int(args.get("window", 0))
            left = size
            while left > 0 and not req.cancelled.is_set() and not self.dead:
                if window > 0:
                    req.wait_credit(size - left, window)
                    if req.cancelled.is_set():
                        break
                chunk = os.read(fd, min(MAX_PAYLOAD, left))
                if not chunk:  # the file shrank: keep the promised length
                    chunk = b"\0" * min(MAX_PAYLOAD, left)
                self.send("D", req.rid, chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        self.result(req.rid, {"size": size})

    def list(self, req, args):
        entries = self.agent.ws["list_entries"](max(0, int(args.get("limit", 10000))))
        self.send("D", req.rid, json.dumps(entries).encode())
        self.result(req.rid, {"count": len(entries)})

    def upload_start(self, req, args):
        """W {path, size, max_bytes} or S {files: [{path, size}], max_bytes}; then w chunks."""
        max_bytes = int(args.get("max_bytes", 0))
        files = [args] if "path" in args else args.get("files")
        if not isinstance(files, list) or len(files) > 10000:
            raise ValueError("bad file list")
        plan = []
        for f in files:
            parts = self.agent.ws["path_parts"](f.get("path"))
            size = int(f.get("size", -1))
            if size < 0:
                raise ValueError("bad size")
            if size > max_bytes:
                raise self.agent.ws["Refused"](self.agent.ws["EXIT_TOO_LARGE"],
                                               "%r is larger than the limit of %d bytes" % (f.get("path"), max_bytes))
            plan.append((parts, size))
        u = Upload(self.agent.ws, plan)
        self.uploads[req.rid] = u
        self.upload_chunk(req.rid, u, b"")

    def upload_chunk(self, rid, u, data):
        req = Request(self, rid)
        done = [False]

        def step(r, _):
            done[0] = u.feed(data)
        self.guard(step, req, None)
        if rid not in self.uploads:  # failed: guard answered
            u.abort()
            return
        if done[0]:
            self.uploads.pop(rid, None)
            self.result(rid, {"files": len(u.plan)})

    # ------------------------------------------------------------ control
    def reset(self, req, args):
        k = self.agent.kernel
        running = k.current
        if running is not None:
            running.cancel()
        with k.lock:
            k.stop()
        self.result(req.rid, {"state_reset": True, "reason": "reset requested"})

    # ------------------------------------------------------------ code
    def python(self, req, args):
        k = self.agent.kernel
        # One cell at a time: a second one (another API process) is refused, not queued, so
        # that its caller's deadline only ever covers its own run.
        if not k.lock.acquire(blocking=False):
            self.error(req.rid, "busy", "another Python cell is running in this session")
            return
        try:
            k.current = req
            out = self._python(req, args, k)
        finally:
            k.current = None
            k.lock.release()
        # Answered once the kernel is free: the caller's next cell is never refused as busy.
        self.result(req.rid, out)

    def _python(self, req, args, k):
        if req.cancelled.is_set():  # cancelled before it started
            return {"exit_code": None, "timed_out": True, "duration_ms": 0}
        reset_reason = None
        if k.proc is not None and not k.alive():
            reset_reason = "the Python process had exited; its state was lost"
            k.stop()
        if k.proc is None:
            k.start()
        snap = self.agent.runner["snapshot"]() if args.get("collect") else None
        k.drain_stale()
        timeout = max(1, int(args.get("timeout_ms", 30000))) / 1000.0
        limit = int(args.get("forward_limit", 1 << 20))
        started = time.monotonic()
        try:
            write_all(k.cin, json.dumps({"code": args.get("code", ""), "stdin": args.get("stdin") or "",
                                         "interactive": args.get("interactive", True),
                                         "cpu_seconds": int(args.get("cpu_seconds", 0))}).encode() + b"\n")
        except OSError:
            pass
        fwd = Forwarder(self, req.rid, limit)
        deadline = started + timeout
        interrupted_at = None
        exit_code = None
        timed_out = False
        while True:
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or req.cancelled.is_set()):
                timed_out = True
                interrupted_at = now
                try:
                    os.kill(k.proc.pid, signal.SIGINT)
                except OSError:
                    pass
            if interrupted_at is not None and now >= interrupted_at + KILL_GRACE_S:
                fwd.pump(k.out, "1")
                fwd.pump(k.err, "2")
                k.stop()
                reset_reason = "the code did not stop after an interrupt; the Python process was restarted"
                break
            wait = min(deadline if interrupted_at is None else interrupted_at + KILL_GRACE_S, now + 0.05) - now
            ready, _, _ = select.select([k.out, k.err, k.cout], [], [], max(0.0, wait))
            for fd in (k.out, k.err):
                if fd in ready:
                    fwd.pump(fd, "1" if fd == k.out else "2")
            if k.cout in ready:
                try:
                    c = os.read(k.cout, 4096)
                except BlockingIOError:
                    c = None
                except OSError:
                    c = b""
                if c == b"":
                    break
                if c:
                    k.buf += c
                    if b"\n" in k.buf:
                        one, _, k.buf = k.buf.partition(b"\n")
                        try:
                            exit_code = int(json.loads(one)["exit_code"])
                        except (ValueError, KeyError, TypeError):
                            exit_code = 1
                        break
            if exit_code is None and not k.alive() and k.proc is not None:
                break
        if k.proc is not None and exit_code is None and reset_reason is None:
            status = k.proc.wait()
            fwd.pump(k.out, "1")
            fwd.pump(k.err, "2")
            k.stop()
            exit_code = 128 - status if status < 0 else status
            reset_reason = "the Python process exited; its state was lost"
        elif k.proc is not None:
            fwd.pump(k.out, "1")
            fwd.pump(k.err, "2")
        if timed_out:
            exit_code = None
        out = {"exit_code": exit_code, "timed_out": timed_out,
               "duration_ms": int((time.monotonic() - started) * 1000)}
        if reset_reason is not None:
            out["state_reset"] = True
            out["reason"] = reset_reason
        if snap is not None:
            self.collect(req, snap, args)
        return out

    def bash(self, req, args):
        import subprocess
        limit = int(args.get("forward_limit", 1 << 20))
        timeout = max(1, int(args.get("timeout_ms", 30000))) / 1000.0
        snap = self.agent.runner["snapshot"]() if args.get("collect") else None
        mfd = os.memfd_create("stdin")
        write_all(mfd, (args.get("stdin") or "").encode("utf-8", "replace"))
        os.lseek(mfd, 0, 0)
        started = time.monotonic()
        sup = subprocess.Popen([sys.executable, "-I", "-S", "-c", SUPERVISOR, str(args.get("code", "")),
                                str(int(args.get("cpu_seconds", 0)))],
                               stdin=mfd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=WS if os.path.isdir(WS) else None, start_new_session=True, close_fds=True)
        os.close(mfd)
        out, err = sup.stdout.fileno(), sup.stderr.fileno()
        os.set_blocking(out, False)
        os.set_blocking(err, False)
        fwd = Forwarder(self, req.rid, limit)
        timed_out = False
        killed_at = None
        drain_until = None
        fds = [out, err]
        while True:
            now = time.monotonic()
            if drain_until is None and sup.poll() is not None:
                drain_until = now + DRAIN_S
            if drain_until is None and killed_at is None and (now >= started + timeout or req.cancelled.is_set()):
                timed_out = True
                killed_at = now
                sup.send_signal(signal.SIGTERM)
            if killed_at is not None and drain_until is None and now >= killed_at + 5:
                try:
                    os.killpg(sup.pid, signal.SIGKILL)
                except OSError:
                    pass
            if drain_until is not None and (now >= drain_until or not fds):
                break
            ready, _, _ = select.select(fds, [], [], 0.02)
            for fd in ready:
                if not fwd.pump(fd, "1" if fd == out else "2"):
                    fds.remove(fd)
        sup.stdout.close()
        sup.stderr.close()
        status = sup.wait()
        result = {"exit_code": None if timed_out else (128 - status if status < 0 else status),
                  "timed_out": timed_out, "duration_ms": int((time.monotonic() - started) * 1000)}
        if snap is not None:
            self.collect(req, snap, args)
        self.result(req.rid, result)

    def collect(self, req, snap, args):
        """The files' tar as F frames, at most `files_window` bytes ahead of the API's acks."""
        window = int(args.get("files_window", 0))
        sent = [0]

        def emit(data):
            if window > 0:
                req.wait_credit(sent[0], window)
            if req.cancelled.is_set() or self.dead:
                raise RuntimeError("cancelled")
            self.send("F", req.rid, data)
            sent[0] += len(data)
        try:
            self.agent.runner["collect"](snap, int(args.get("max_files", 100)), int(args.get("max_bytes", 1 << 20)),
                                         ChunkFile(emit))
        except Exception as e:
            self.send("2", req.rid, ("collecting files failed: %s\n" % e).encode())


class Forwarder:
    """Forwards a request's output as 1/2 chunks, at most `limit` bytes per stream."""

    def __init__(self, conn, rid, limit):
        self.conn, self.rid, self.limit = conn, rid, limit
        self.sent = {"1": 0, "2": 0}

    def pump(self, fd, kind):
        """Reads what is there; False at EOF."""
        while True:
            try:
                data = os.read(fd, MAX_PAYLOAD)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            room = self.limit - self.sent[kind]
            if room > 0:
                chunk = data[:room]
                self.sent[kind] += len(chunk)
                self.conn.send(kind, self.rid, chunk)


class Upload:
    """An upload of one or more files, each written to a temporary file and renamed in place."""

    def __init__(self, ws, plan):
        self.ws, self.plan = ws, plan
        self.index = -1
        self.fd = self.dir = self.tmp = None
        self.left = 0

    def open_next(self):
        self.index += 1
        if self.index >= len(self.plan):
            return False
        parts, size = self.plan[self.index]
        self.dir = self.ws["open_dir"](parts, True)
        self.tmp = ".ci-upload-%s.part" % os.urandom(8).hex()
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=self.dir)
        self.left = size
        return True

    def finish_one(self):
        parts = self.plan[self.index][0]
        os.close(self.fd)
        self.fd = None
        try:
            st = os.stat(parts[-1], dir_fd=self.dir, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise self.ws["Refused"](self.ws["EXIT_REFUSED"], "%s is a directory" % "/".join(parts))
        except FileNotFoundError:
            pass
        os.rename(self.tmp, parts[-1], src_dir_fd=self.dir, dst_dir_fd=self.dir)
        self.tmp = None
        os.close(self.dir)
        self.dir = None

    def feed(self, data):
        """Writes the chunk; True once every file is complete. Raises on a breach."""
        view = memoryview(data)
        while True:
            if self.fd is None:
                if not self.open_next():
                    if view:
                        raise ValueError("more bytes than announced")
                    return True
            n = min(self.left, len(view))
            if n:
                write_all(self.fd, view[:n])
                view = view[n:]
                self.left -= n
            if self.left == 0:
                self.finish_one()
                continue
            return False

    def abort(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None and self.dir is not None:
            try:
                os.unlink(self.tmp, dir_fd=self.dir)
            except OSError:
                pass
            self.tmp = None
        if self.dir is not None:
            os.close(self.dir)
            self.dir = None


class ChunkFile:
    """A write-only file object handing what it gets to fn (the collected files' tar)."""

    def __init__(self, fn):
        self.fn = fn

    def write(self, data):
        self.fn(bytes(data))
        return len(data)

    def flush(self):
        pass


def agent():
    # Detach: the relay waits for this parent; the agent itself is reparented to PID 1.
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    Agent().serve()


def main(argv):
    role = argv[0] if argv else ""
    if role == "relay":
        relay()
    elif role == "agent":
        agent()
    elif role == "kernel":
        cin, cout = [int(x) for x in os.environ.pop("CI_KERNEL_FDS").split(",")]
        kernel(cin, cout)
    else:
        sys.stderr.write("usage: agent.py relay|agent|kernel\n")
        os._exit(64)


if __name__ == "__main__":
    main(sys.argv[1:])
