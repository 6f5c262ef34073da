"""File operations of the agent (read, list, write/stage) and the output forwarder. Part of the
agent's bundle (see agent.py). Paths and refusals are workspace.py's (the agent's `ws`).
"""
import json
import os
import stat

from agent_base import MAX_PAYLOAD, write_all
from agent_conn import Request


def read_file(conn, req, args):
    fd, size = conn.agent.ws["open_for_read"](args.get("path"), int(args.get("max_bytes", 0)))
    try:
        conn.send("M", req.rid, json.dumps({"size": size}).encode())
        # Flow control per read: at most `window` bytes ahead of the reader's acks (A), so
        # a slow reader never holds up the rest of the connection.
        window = int(args.get("window", 0))
        left = size
        while left > 0 and not req.cancelled.is_set() and not conn.dead:
            if window > 0:
                req.wait_credit(size - left, window)
                if req.cancelled.is_set():
                    break
            chunk = os.read(fd, min(MAX_PAYLOAD, left))
            if not chunk:  # the file shrank: keep the promised length
                chunk = b"\0" * min(MAX_PAYLOAD, left)
            conn.send("D", req.rid, chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    conn.result(req.rid, {"size": size})

def list_files(conn, req, args):
    entries = conn.agent.ws["list_entries"](max(0, int(args.get("limit", 10000))))
    conn.send("D", req.rid, json.dumps(entries).encode())
    conn.result(req.rid, {"count": len(entries)})

def upload_start(conn, req, args):
    """W {path, size, max_bytes} or S {files: [{path, size}], max_bytes}; then w chunks."""
    max_bytes = int(args.get("max_bytes", 0))
    files = [args] if "path" in args else args.get("files")
    if not isinstance(files, list) or len(files) > 10000:
        raise ValueError("bad file list")
    plan = []
    for f in files:
        parts = conn.agent.ws["path_parts"](f.get("path"))
        size = int(f.get("size", -1))
        if size < 0:
            raise ValueError("bad size")
        if size > max_bytes:
            raise conn.agent.ws["Refused"](conn.agent.ws["EXIT_TOO_LARGE"],
                                           "%r is larger than the limit of %d bytes" % (f.get("path"), max_bytes))
        plan.append((parts, size))
    u = Upload(conn.agent.ws, plan)
    conn.uploads[req.rid] = u
    upload_chunk(conn, req.rid, u, b"")

def upload_chunk(conn, rid, u, data):
    req = Request(conn, rid)
    done = [False]

    def step(r, _):
        done[0] = u.feed(data)
    conn.guard(step, req, None)
    if rid not in conn.uploads:  # failed: guard answered
        u.abort()
        return
    if done[0]:
        conn.uploads.pop(rid, None)
        conn.result(rid, {"files": len(u.plan)})


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
