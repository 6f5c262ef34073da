"""The agent's side of Python cells: the kernel child and one cell's run. Part of the agent's
bundle (see agent.py).

A cell that times out or is cancelled is interrupted (SIGINT: KeyboardInterrupt, the namespace
survives) and every process it started is SIGKILLed: the kernel's descendants, and the orphans
the agent adopted (the agent is a subreaper, so a double-forked or setsid child of the cell is
re-parented to it, not to PID 1), started since the cell began. A kernel that has not finished
the cell KILL_GRACE_S later is killed and replaced (state_reset).
"""
import json
import os
import select
import signal
import socket
import threading
import time

from agent_base import (KILL_GRACE_S, alive_in, boot_ticks, descendants, in_spawner, kill_all, proc_table,
                        spawn_self, write_all)

REPORT_LIMIT = 4096
SIGINT_AGAIN_S = 0.5


class Kernel:
    """The Python state: a kernel child, restarted when it dies or will not stop."""

    def __init__(self):
        self.proc = None
        self.generation = 0
        self.lock = threading.Lock()
        self.current = None

    def start(self):
        cin_r, cin_w = os.pipe()
        fd_agent, fd_kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        # The kernel finds its control descriptors by the numbers in CI_KERNEL_FDS (it drops
        # the variable). Started from a thread that never ends: PR_SET_PDEATHSIG fires when
        # the parent *thread* exits.
        kfd = fd_kernel.fileno()
        try:
            self.proc = in_spawner(lambda: spawn_self(
                "kernel", True, stdout=out_w, stderr=err_w, pass_fds=(cin_r, kfd),
                env=dict(os.environ, CI_KERNEL_FDS="%d,%d" % (cin_r, kfd))))
        except BaseException:  # e.g. no process left under the pids limit: nothing stays open
            fd_agent.close()
            for fd in (cin_w, out_r, err_r):
                os.close(fd)
            raise
        finally:
            fd_kernel.close()
            for fd in (cin_r, out_w, err_w):
                os.close(fd)
        self.cin, self.fdsock, self.out, self.err = cin_w, fd_agent, out_r, err_r
        for fd in (self.out, self.err):
            os.set_blocking(fd, False)
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
        for fd in (self.cin, self.out, self.err):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fdsock.close()
        self.proc = None

    def drain_stale(self):
        for fd in (self.out, self.err):
            try:
                while os.read(fd, 1 << 16):
                    pass
            except (BlockingIOError, OSError):
                pass

    def send_cell(self, request):
        """Hands the kernel this cell's report pipe, then the request; returns the read end."""
        rep_r, rep_w = os.pipe()
        try:
            socket.send_fds(self.fdsock, [b"r"], [rep_w])
            write_all(self.cin, json.dumps(request).encode() + b"\n")
        except OSError:
            pass  # the kernel is gone: seen below as a dead kernel
        finally:
            os.close(rep_w)
        os.set_blocking(rep_r, False)
        return rep_r


class Report:
    """A cell's report pipe as it is read: the first well-formed line, {"exit_code": 0..255} in at
    most REPORT_LIMIT bytes, is the report. Anything else (blind garbage, an over-long line,
    another shape) is dropped as it arrives and never held past the limit; the kernel starts
    its record with a newline, so garbage before it cannot swallow it."""

    def __init__(self):
        self.line = bytearray()
        self.skipping = False

    def feed(self, data):
        """The reported exit code once a report line is complete, else None."""
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            if not self.skipping:
                self.line += part
                if len(self.line) > REPORT_LIMIT:
                    self.skipping, self.line = True, bytearray()
            if i == len(parts) - 1:
                return None
            if not self.skipping:
                code = self.parse(bytes(self.line))
                if code is not None:
                    return code
            self.line, self.skipping = bytearray(), False
        return None

    @staticmethod
    def parse(line):
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        code = rec.get("exit_code") if isinstance(rec, dict) else None
        if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255:
            return code
        return None


def cell_processes(agent, since):
    """The processes the running cell started: below the kernel, or adopted by the agent from
    the kernel's tree, and started after `since` = (boot tick, the pids that existed then) -
    a start time is in 10 ms ticks, so in the cell's first tick only pids that were not there
    count. Bash calls' supervisors never do."""
    tick, existing = since
    table = proc_table()
    me = os.getpid()
    k = agent.kernel
    own = agent.own_children()
    roots = [k.proc.pid] if k.proc is not None else []
    roots += [p for p, (pp, _, _) in table.items() if pp == me and p not in own]
    found = set(descendants(table, roots)) | set(roots[1:])
    return [p for p in found if alive_in(table, p) and p not in own
            and (table[p][1] > tick or (table[p][1] == tick and str(p) not in existing))]


def run_cell(conn, req, args, k, forwarder):
    """One cell on the (started) kernel: its answer as a dict."""
    agent = conn.agent
    reset_reason = None
    snap = agent.runner["snapshot"]() if args.get("collect") else None
    k.drain_stale()
    timeout = max(1, int(args.get("timeout_ms", 30000))) / 1000.0
    fwd = forwarder(conn, req.rid, int(args.get("forward_limit", 1 << 20)))
    started = time.monotonic()
    existing = frozenset(os.listdir("/proc"))  # first: what starts after it and in this tick counts
    since = (boot_ticks(), existing)
    report = k.send_cell({"code": args.get("code", ""), "stdin": args.get("stdin") or "",
                          "interactive": args.get("interactive", True),
                          "cpu_seconds": int(args.get("cpu_seconds", 0))})
    rep = Report()
    deadline = started + timeout
    interrupted_at = None
    last_sigint = None
    exit_code = None
    timed_out = False

    def interrupt(now):
        nonlocal last_sigint
        last_sigint = now
        try:
            os.kill(k.proc.pid, signal.SIGINT)
        except OSError:
            pass

    try:
        watch = [k.out, k.err, report]
        while True:
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or req.cancelled.is_set()):
                timed_out = True
                interrupted_at = now
                interrupt(now)
            if interrupted_at is not None:
                # The cell's processes go first: a cell blocked in os.system() ignores SIGINT
                # until its child ends, and the interrupt is then sent again.
                kill_all(lambda: cell_processes(agent, since), rounds=5)
                if now - last_sigint >= SIGINT_AGAIN_S:
                    interrupt(now)
                if now >= interrupted_at + KILL_GRACE_S:
                    fwd.pump(k.out, "1")
                    fwd.pump(k.err, "2")
                    k.stop()
                    reset_reason = "the code did not stop after an interrupt; the Python process was restarted"
                    break
            limit = deadline if interrupted_at is None else interrupted_at + KILL_GRACE_S
            wait = min(limit, now + 0.05) - now
            ready, _, _ = select.select(watch, [], [], max(0.0, wait))
            for fd in (k.out, k.err):
                if fd in ready:
                    fwd.pump(fd, "1" if fd == k.out else "2")
            if report in ready:
                try:
                    c = os.read(report, 1 << 16)
                except BlockingIOError:
                    c = None
                except OSError:
                    c = b""
                if c == b"":
                    watch.remove(report)  # closed without a report: the kernel's fate decides
                elif c:
                    exit_code = rep.feed(c)
                    if exit_code is not None:
                        break
            if exit_code is None and not k.alive() and k.proc is not None:
                break
    finally:
        os.close(report)
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
        kill_all(lambda: cell_processes(agent, since))
        exit_code = None
        agent.reap_adopted()
    out = {"exit_code": exit_code, "timed_out": timed_out,
           "duration_ms": int((time.monotonic() - started) * 1000)}
    if reset_reason is not None:
        out["state_reset"] = True
        out["reason"] = reset_reason
    if snap is not None:
        conn.collect(req, snap, args)
    return out
