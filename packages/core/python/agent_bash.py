"""Bash calls: a fresh `bash -c` per call under its own supervisor, forked from the zygote.
Part of the agent's bundle (see agent.py).

zygote      a small child of the agent (this program again, started through BOOT: non-dumpable,
            dies with the agent). Single-threaded, so it can fork safely: for each call it gets
            the call's descriptors (stdin, stdout, stderr, status, code) over a SOCK_SEQPACKET
            pair (SCM_RIGHTS) and forks a supervisor, answering its pid and a pidfd. No Python
            interpreter starts per call. It is a subreaper and reaps everything below it, so
            what a finished call left in the background is never a zombie.
supervisor  the call's own subreaper (orphans of the call stay below it), in a new session,
            in WS: forks `bash -c code` (own process group, oom_score_adj 1000, the call's
            RLIMIT_CPU, default signals), waits for it and writes its status (one line) on the
            status pipe, which nothing else holds (close-on-exec; the supervisor is
            non-dumpable, so the code cannot open it through /proc). On SIGTERM it SIGKILLs
            every process below it, `env -i`, setsid and double-forked ones included, until
            none is left.
"""
import json
import os
import resource
import select
import signal
import socket
import threading
import time

from agent_base import (DRAIN_S, PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, WS, alive_in, descendants, in_spawner,
                        kill_all, memfd_with, prctl, proc_table, spawn_self, write_all)

STATUS_LIMIT = 64
TERM_GRACE_S = 5.0


def supervise(code, cpu, status_fd):
    """Runs in the forked supervisor; never returns."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)

    class Kill(Exception):
        pass

    def on_term(*_):
        raise Kill()
    signal.signal(signal.SIGTERM, on_term)
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            try:
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            except OSError:
                pass
            if cpu > 0:
                soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
                lim = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
                try:
                    resource.setrlimit(resource.RLIMIT_CPU,
                                       (lim, lim + 1 if hard == resource.RLIM_INFINITY else hard))
                except (ValueError, OSError):
                    pass
            for sig in (signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            os.execvp("bash", ["bash", "-c", code])
        finally:
            os._exit(127)
    status = 127
    try:
        while True:
            try:
                got, st = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if got == pid:
                status = os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
                break
    except Kill:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        me = os.getpid()

        def below():
            t = proc_table()
            return [p for p in descendants(t, [me]) if alive_in(t, p)]
        kill_all(below)
        status = 137
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        write_all(status_fd, b"%d\n" % status)
    except OSError:
        pass
    os._exit(status)


def zygote(fd):
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        os._exit(0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)

    def reap(*_):
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
    signal.signal(signal.SIGCHLD, reap)
    s = socket.socket(fileno=fd)
    while True:
        msg, fds, _, _ = socket.recv_fds(s, 4096, 5, socket.MSG_CMSG_CLOEXEC)
        if not msg:
            os._exit(0)
        try:
            req = json.loads(msg)
            if len(fds) != 5:
                raise ValueError("five descriptors expected")
            pid = os.fork()
        except (ValueError, OSError) as e:
            for x in fds:
                os.close(x)
            s.send(json.dumps({"error": str(e)}).encode())
            continue
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                s.close()
                os.setsid()
                stdin, out, err, status, codefd = fds
                code = b""
                while True:
                    c = os.read(codefd, 1 << 20)
                    if not c:
                        break
                    code += c
                for i, x in enumerate((stdin, out, err)):
                    os.dup2(x, i)
                for x in (stdin, out, err, codefd):
                    os.close(x)
                os.set_inheritable(status, False)  # bash and what it starts never hold it
                if os.path.isdir(WS):
                    os.chdir(WS)
                supervise(code.decode("utf-8", "surrogateescape"), int(req.get("cpu", 0)), status)
            finally:
                os._exit(127)
        for x in fds:
            os.close(x)
        pidfd = []
        try:
            pidfd = [os.pidfd_open(pid)]
        except (AttributeError, OSError):
            pass
        try:
            socket.send_fds(s, [json.dumps({"pid": pid}).encode()], pidfd)
        finally:
            for x in pidfd:
                os.close(x)


class Zygote:
    """The agent's handle on its zygote, started on first use and again when it is gone."""

    def __init__(self):
        self.proc = None
        self.sock = None
        self.lock = threading.Lock()

    def start(self):
        import subprocess
        a, z = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        zfd = z.fileno()
        try:
            self.proc = in_spawner(lambda: spawn_self(
                "zygote", True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(zfd,),
                env=dict(os.environ, CI_ZYGOTE_FD=str(zfd))))
        except BaseException:
            a.close()
            raise
        finally:
            z.close()
        a.settimeout(10)
        self.sock = a

    def stop(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait()
            self.proc = None

    def fork(self, cpu, fds):
        """(pid, pidfd or None) of a new supervisor holding fds; retried once on a new zygote."""
        with self.lock:
            for attempt in (0, 1):
                try:
                    if self.proc is None or self.proc.poll() is not None:
                        self.stop()
                        self.start()
                    socket.send_fds(self.sock, [json.dumps({"cpu": cpu}).encode()], fds)
                    msg, got, _, _ = socket.recv_fds(self.sock, 4096, 1, socket.MSG_CMSG_CLOEXEC)
                    ans = json.loads(msg) if msg else {"error": "the zygote went away"}
                    if "pid" in ans and isinstance(ans["pid"], int):
                        return ans["pid"], (got[0] if got else None)
                    for x in got:
                        os.close(x)
                    raise OSError(str(ans.get("error")))
                except (OSError, ValueError):
                    self.stop()
                    if attempt:
                        raise


def run_bash(conn, req, args, forwarder):
    """One bash call: its answer as a dict."""
    agent = conn.agent
    timeout = max(1, int(args.get("timeout_ms", 30000))) / 1000.0
    snap = agent.runner["snapshot"]() if args.get("collect") else None
    code = str(args.get("code", "")).encode("utf-8", "surrogateescape")  # may refuse: nothing open yet
    stdin = (args.get("stdin") or "").encode("utf-8", "replace")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    given = [out_w, err_w, st_w]
    started = time.monotonic()
    try:
        given[0:0] = [memfd_with(stdin)]
        given.append(memfd_with(code))
        pid, pidfd = agent.zygote.fork(int(args.get("cpu_seconds", 0)), given)
    except BaseException:
        for fd in (out_r, err_r, st_r):
            os.close(fd)
        raise
    finally:
        for fd in given:
            os.close(fd)
    agent.supervisors.add(pid)
    for fd in (out_r, err_r, st_r):
        os.set_blocking(fd, False)
    fwd = forwarder(conn, req.rid, int(args.get("forward_limit", 1 << 20)))

    def signal_sup(sig):
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, sig)
            else:
                os.kill(pid, sig)
        except OSError:
            pass

    timed_out = False
    killed_at = None
    drain_until = None
    status = b""
    fds = [out_r, err_r]
    try:
        while True:
            now = time.monotonic()
            if drain_until is None and killed_at is None and (now >= started + timeout or req.cancelled.is_set()):
                timed_out = True
                killed_at = now
                signal_sup(signal.SIGTERM)
            if killed_at is not None and drain_until is None and now >= killed_at + TERM_GRACE_S:
                signal_sup(signal.SIGKILL)
            if drain_until is not None and (now >= drain_until or not fds):
                break
            if drain_until is not None:
                until = drain_until
            elif killed_at is not None:
                until = killed_at + TERM_GRACE_S
            else:
                until = started + timeout
            watch = fds + ([st_r] if drain_until is None else [])
            ready, _, _ = select.select(watch, [], [], max(0.0, min(until, now + 0.05) - now))
            for fd in ready:
                if fd == st_r:
                    c = os.read(st_r, STATUS_LIMIT)
                    if c and len(status) < STATUS_LIMIT:
                        status += c
                    elif not c:  # the supervisor is gone: drain what its leftovers still hold
                        drain_until = time.monotonic() + DRAIN_S
                elif not fwd.pump(fd, "1" if fd == out_r else "2"):
                    fds.remove(fd)
    finally:
        agent.supervisors.discard(pid)
        for fd in (out_r, err_r, st_r) + ((pidfd,) if pidfd is not None else ()):
            os.close(fd)
    try:
        code = int(status.strip() or b"137")
    except ValueError:
        code = 137
    result = {"exit_code": None if timed_out else code, "timed_out": timed_out,
              "duration_ms": int((time.monotonic() - started) * 1000)}
    if snap is not None:
        conn.collect(req, snap, args)
    return result
