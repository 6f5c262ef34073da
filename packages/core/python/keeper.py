"""PID 1 of every executor: reaps zombies and exits (ending the container) when the session's
life is over, whether or not any API process runs.

argv: statePath|- maxExpiresAtMs expiresAtMs idleSeconds createdAtMs

Started as `python3 -I -S -c <this>` (no user-writable path on sys.path, no environment
variables honoured) and, first thing, made non-dumpable: code running as the same uid can
then neither ptrace it (PTRACE_SEIZE/ATTACH fail with EPERM) nor read /proc/1/fd, and as
PID 1 of its namespace it ignores SIGSTOP/SIGKILL sent from inside the container.
"""
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_DUMPABLE = 4


def harden():
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            sys.stderr.write("keeper: prctl(PR_SET_DUMPABLE) failed\n")
    except (OSError, AttributeError) as e:
        sys.stderr.write("keeper: prctl unavailable: %s\n" % e)
    os.chdir("/")


def deadline(state, hard, exp, idle, created):
    """The session's end (unix ms): the hard cap, the (extended) expiry, the idle deadline."""
    e = max(exp, int(state.get("expiresAt", 0) or 0))
    la = max(created, int(state.get("lastActiveAt", 0) or 0))
    dl = min(hard, e)
    if idle > 0:
        dl = min(dl, la + idle * 1000)
    return dl


def read_state(path):
    """The state record, or None while it cannot be read.

    The backend replaces the file as a whole (Docker's archive API removes it, then writes
    the new one), so it can be missing or partial for a moment: the caller then keeps the
    last good record. The record only ever moves deadlines later, so an old one is safe.
    """
    if path == "-":
        return {}
    try:
        with open(path) as f:
            s = json.load(f)
        return s if isinstance(s, dict) else None
    except (OSError, ValueError):
        return None


def reap():
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
    except ChildProcessError:
        pass


def stop(*_):
    sys.exit(0)


def main(argv):
    harden()
    sp = argv[0]
    hard, exp, idle, created = (int(a) for a in argv[1:5])
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last = {}
    while True:
        reap()
        state = read_state(sp)
        try:
            dl = deadline(state if state is not None else last, hard, exp, idle, created)
            if state is not None:
                last = state
        except (TypeError, ValueError):
            dl = deadline(last, hard, exp, idle, created)
        now = time.time() * 1000
        if now >= dl:
            sys.exit(0)
        time.sleep(min(2.0, (dl - now) / 1000.0 + 0.05))


if __name__ == "__main__":
    main(sys.argv[1:])
