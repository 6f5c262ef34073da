"""The relay: the API's end of one channel (one long-lived exec per session per API process).

Connects to the agent's unix socket (CTL/agent.sock, CTL 0700), starting a detached agent when
none answers, passes on the agent's hello with "fresh" added (whether it had to start it), then
copies bytes both ways until either end closes. Part of the agent's bundle (see agent.py).
"""
import json
import os
import select
import sys
import time

from agent_base import CTL, HEADER, RELAY_BUFFER, connect, frame_bytes, spawn_self, write_all


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
