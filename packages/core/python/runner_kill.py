"""Finding and killing a run's processes: the program's process group, recorded for the killer
(a separate exec), and every process carrying the run's CODE_INTERPRETER_EXEC_ID tag. Shipped as
one program with runner.py (see there)."""
import os
import signal

if False:  # defined in runner.py, which this file is shipped ahead of as one program
    from runner import CTL, write_all

TAG = "CODE_INTERPRETER_EXEC_ID="


def kill_all(exec_id, pgid):
    tag = (TAG + exec_id).encode()
    me = os.getpid()
    for _ in range(3):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        for p in os.listdir("/proc"):
            if not p.isdigit() or int(p) in (me, 1):
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


def record_pgid(exec_id, pgid):
    """For the killer (a separate exec): which process group this run's program leads."""
    path = os.path.join(CTL, exec_id + ".pid")
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        write_all(fd, b"%d\n" % pgid)
        os.close(fd)
        os.replace(tmp, path)
    except OSError:
        pass


def forget_pgid(exec_id):
    try:
        os.unlink(os.path.join(CTL, exec_id + ".pid"))
    except OSError:
        pass
