"""A client of agent.py on the host: the relay, the agent and its kernel as real processes, spoken
to in frames through the relay's stdin/stdout exactly as the API does (paths in a temp box)."""
import json
import os
import select
import struct
import subprocess
import time

from conftest import agent_source, boot_cmd
from conftest import program as shipped_source

HEADER = struct.Struct(">IBI")


def program(box):
    # As the API ships them (core's program.ts): runner.py joined with its runner_*.py parts.
    srcs = [shipped_source("workspace.py"), shipped_source("runner.py")]
    agent = agent_source(WS=box["WS"], CTL=box["CTL"])
    return ("WORKSPACE_SRC = %s\nRUNNER_SRC = %s\n" % tuple(json.dumps(x) for x in srcs) + agent).encode()


class Client:
    def __init__(self, box):
        prog = program(box)
        self.proc = subprocess.Popen(boot_cmd(prog, ["relay"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(os.environ, HOME=box["WS"]))
        self.proc.stdin.write(prog)
        self.proc.stdin.flush()
        self.buf = b""
        self.stash = {}
        self.next_id = 1
        kind, rid, payload = self.frame()
        assert kind == "H" and rid == 0
        self.hello = json.loads(payload)

    def send(self, kind, rid, payload=b""):
        self.proc.stdin.write(HEADER.pack(len(payload), ord(kind), rid) + payload)
        self.proc.stdin.flush()

    def frame(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= HEADER.size:
                n, kind, rid = HEADER.unpack_from(self.buf)
                assert n <= 1 << 16
                if len(self.buf) >= HEADER.size + n:
                    payload = self.buf[HEADER.size:HEADER.size + n]
                    self.buf = self.buf[HEADER.size + n:]
                    return chr(kind), rid, payload
            left = deadline - time.monotonic()
            assert left > 0, "no frame in time"
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not data:
                    return None
                self.buf += data

    def start(self, kind, args, rid=None):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        self.send(kind, rid, json.dumps(args).encode())
        return rid

    def wait(self, rid, timeout=20):
        """The frames of one request, up to its final answer; other requests' frames are kept."""
        got = self.stash.pop(rid, [])
        while not got or got[-1][0] not in "XE":
            f = self.frame(timeout)
            assert f is not None, "the channel closed"
            kind, frid, payload = f
            if frid == rid:
                got.append((kind, payload))
            else:
                self.stash.setdefault(frid, []).append((kind, payload))
        return Reply(got)

    def call(self, kind, args, timeout=20):
        return self.wait(self.start(kind, args), timeout)

    def py(self, code, **kw):
        return self.call("P", dict({"code": code, "timeout_ms": 5000}, **kw))

    def sh(self, code, **kw):
        return self.call("B", dict({"code": code, "timeout_ms": 5000}, **kw))

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(5)


class Reply:
    def __init__(self, frames):
        self.frames = frames
        self.stdout = b"".join(p for k, p in frames if k == "1").decode()
        self.stderr = b"".join(p for k, p in frames if k == "2").decode()
        self.data = b"".join(p for k, p in frames if k == "D")
        self.tar = b"".join(p for k, p in frames if k == "F")
        self.kind = frames[-1][0]
        self.final = json.loads(frames[-1][1])


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
