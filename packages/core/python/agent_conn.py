"""The agent: serves any number of connections (one per relay), requests multiplexed by id.
Holds the Python state in a kernel child, runs bash through the zygote, does file operations.
Part of the agent's bundle (see agent.py).
"""
import json
import os
import socket
import struct
import threading

from agent_base import CTL, HEADER, MAX_BODY, MAX_PAYLOAD, WS, proc_table, spawner
from agent_bash import Zygote, run_bash
from agent_cells import Kernel, run_cell
from agent_files import ChunkFile, Forwarder, list_files, read_file, upload_chunk, upload_start


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
        self.zygote = Zygote()
        self.supervisors = set()
        w = {"__name__": "workspace"}
        exec(compile(globals()["WORKSPACE_SRC"], "<workspace>", "exec"), w)
        w["WS"] = WS
        self.ws = w
        r = {"__name__": "runner"}
        exec(compile(globals()["RUNNER_SRC"], "<runner>", "exec"), r)
        r["WS"] = WS
        self.runner = r

    def own_children(self):
        """The agent's own children (and the bash supervisors): never the code's orphans."""
        own = set(self.supervisors)
        for p in (self.kernel.proc, self.zygote.proc):
            if p is not None:
                own.add(p.pid)
        return own

    def reap_adopted(self):
        """Reaps the ended orphans the agent adopted as a subreaper (never its own children:
        their Popen objects wait for them)."""
        me = os.getpid()
        own = self.own_children()
        for pid, (ppid, _, state) in proc_table().items():
            if ppid == me and state == b"Z" and pid not in own:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except OSError:
                    pass

    def prestart_kernel(self):
        """Starts the Python kernel before the first request is accepted (the relay's connection
        waits in the backlog meanwhile), so a session's or warm pool member's first cell pays no
        interpreter start. Nothing can hold the kernel's lock yet. A failure (e.g. no process
        left under the pids limit) leaves it to the first cell, as before."""
        k = self.kernel
        with k.lock:
            if k.proc is None:
                try:
                    k.start()
                except Exception:
                    pass

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
        self.prestart_kernel()
        srv.settimeout(1.0)
        while True:
            try:
                c, _ = srv.accept()
            except socket.timeout:
                # Our socket was removed or replaced (by the code, or a test's cleanup): nobody
                # can reach us any more, so we end (the kernel and the zygote follow,
                # PR_SET_PDEATHSIG).
                try:
                    if os.lstat(path).st_ino != mine:
                        os._exit(0)
                except OSError:
                    os._exit(0)
                self.reap_adopted()
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
                upload_chunk(self, rid, u, payload)
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
            target = {"P": self.python, "B": self.bash, "r": lambda r, a: read_file(self, r, a), "R": self.reset}[kind]
            threading.Thread(target=self.guard, args=(target, req, args), daemon=True).start()
        elif kind == "L":
            self.guard(lambda r, a: list_files(self, r, a), Request(self, rid), args)
        elif kind in ("W", "S"):
            self.guard(lambda r, a: upload_start(self, r, a), Request(self, rid), args)
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
        out = run_cell(self, req, args, k, Forwarder)
        if reset_reason is not None and "state_reset" not in out:
            out["state_reset"] = True
            out["reason"] = reset_reason
        return out

    def bash(self, req, args):
        self.result(req.rid, run_bash(self, req, args, Forwarder))

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
