"""Ends one run: SIGKILLs the process group the runner recorded for it, every process whose
environment carries CODE_INTERPRETER_EXEC_ID=<execId> (the program and anything it started
that kept its environment) and every process with <execId> as an argument (the runner and the
workspace helper: non-dumpable, so their environment cannot be read, but their command line
can).

argv: execId

The pid file is written by the runner as the code's uid, so the code could rewrite it: the
killer never signals group 0/1 or its own group, and it has no capability, so it can only
ever signal processes the code could signal itself.
"""
import os
import signal
import sys

CTL = "/tmp/.code-interpreter"
TAG = "CODE_INTERPRETER_EXEC_ID="


def recorded_pgid(exec_id):
    try:
        with open(os.path.join(CTL, exec_id + ".pid")) as f:
            pgid = int(f.read(32).strip())
    except (OSError, ValueError):
        return None
    if pgid <= 1 or pgid == os.getpgid(0):
        return None
    return pgid


def read_list(path):
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def tagged(exec_id, me):
    tag = (TAG + exec_id).encode()
    arg = exec_id.encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) in (me, 1):
            continue
        if tag in read_list("/proc/" + p + "/environ") or arg in read_list("/proc/" + p + "/cmdline"):
            found.append(int(p))
    return found


def kill_all(exec_id, pgid=None):
    me = os.getpid()
    if pgid is None:
        pgid = recorded_pgid(exec_id)
    for _ in range(3):
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        for pid in tagged(exec_id, me):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def main(argv):
    if len(argv) != 1 or not argv[0] or "/" in argv[0]:
        sys.stderr.write("usage: killer <execId>\n")
        sys.exit(2)
    kill_all(argv[0])


if __name__ == "__main__":
    main(sys.argv[1:])
