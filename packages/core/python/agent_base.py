"""The agent's shared constants and helpers: framing, starting its own roles, the process table.

Part of the agent's bundle (see agent.py): the parts are concatenated into one program, their
`from agent_* import` lines dropped, so every name here is a global of that one program.
"""
import os
import signal
import socket
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
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
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


LIBC = []


def prctl(op, arg):
    if not LIBC:
        import ctypes
        LIBC.append(ctypes.CDLL(None, use_errno=True))
    return LIBC[0].prctl(op, arg, 0, 0, 0) == 0


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


def frame_bytes(kind, rid, payload):
    return HEADER.pack(len(payload), kind, rid) + payload


def memfd_with(data):
    """A sealed-off in-memory file holding data, positioned at its start (a child's stdin)."""
    fd = os.memfd_create("ci")
    write_all(fd, data)
    os.lseek(fd, 0, 0)
    return fd


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return s
    except OSError:
        s.close()
        return None


# ------------------------------------------------------------ the process table

def proc_table():
    """{pid: (ppid, start time in clock ticks since boot, state)} of every live process."""
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p, "rb") as f:
                    rest = f.read().rsplit(b")", 1)[1].split()
                out[int(p)] = (int(rest[1]), int(rest[19]), rest[0])
            except (OSError, IndexError, ValueError):
                pass
    return out


def descendants(table, roots):
    """Every process below the roots (not the roots themselves)."""
    kids = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def boot_ticks():
    """Now, in the unit of /proc/<pid>/stat's start time (clock ticks since boot)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def kill_all(find, rounds=200):
    """SIGKILLs what find() returns until it returns nothing (a fork loop is outrun)."""
    for _ in range(rounds):
        left = find()
        if not left:
            return
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def alive_in(table, pid):
    entry = table.get(pid)
    return entry is not None and entry[2] not in (b"Z", b"X")


# ------------------------------------------------------------ the spawner thread

SPAWN_QUEUE = []
SPAWN_COND = threading.Condition()


def in_spawner(fn):
    """Runs fn on the agent's long-lived spawner thread and returns its result (a child with
    PR_SET_PDEATHSIG dies when the *thread* that started it ends)."""
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
