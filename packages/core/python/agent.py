"""The session's resident agent, its relay, kernel and zygote, inside the executor as the code's uid.

One program in several files, bundled into one (BUNDLE below: the parts in that order, then this
file, each part's `from agent_* import` lines dropped; core's src/agent/program.ts and the
tests' conftest.py build it the same way). Four roles (argv[1]), always started through bootstrap.py or BOOT below (so the
source arrives on stdin, and the bootstrap's global `b` holds it - the agent re-launches itself
from those bytes). The API prefixes it with `WORKSPACE_SRC = "<workspace.py>"` and
`RUNNER_SRC = "<runner.py>"` (see core's src/agent/program.ts): file operations reuse
workspace.py's functions, file collection the runner's snapshot and collect.

relay   (agent_relay.py) the API's end of one channel: one long-lived exec per session per API process. Connects
        to the agent's unix socket (CTL/agent.sock, CTL 0700), starting a detached agent when
        none answers, passes on the agent's hello with "fresh" added (whether it had to start
        it), then copies bytes both ways until either end closes.
agent   (agent_conn.py, agent_files.py) serves any number of connections, requests multiplexed by id. Holds the Python state in
        a kernel child; runs bash under a per-call subreaper supervisor
        forked by the zygote; does file operations.
kernel  runs cells in one persistent namespace (REPL printing of a bare last expression);
        agent_kernel.py, its agent side agent_cells.py.
zygote  forks each bash call's supervisor without starting an interpreter; agent_bash.py.

Frames, both directions: 4-byte big-endian payload length, kind byte, 4-byte big-endian
request id, payload (at most MAX_PAYLOAD bytes). Requests: P python, B bash (JSON), C cancel,
R reset, r read (A: bytes the reader took), W write (JSON header, then w chunks), S stage (JSON header, then w chunks),
L list, p ping (a P or B request too large for one frame is {"body_bytes": n}, then the JSON in
w chunks). Answers: H hello (id 0, first, {boot_id, pid, generation, fresh}), 1/2 output chunks, F collected files
(tar chunks), M file meta, D data chunks, and one final X (JSON result) or E (JSON error).
"""
import os
import sys

from agent_base import PR_SET_CHILD_SUBREAPER, prctl
from agent_bash import zygote
from agent_conn import Agent
from agent_kernel import kernel
from agent_relay import relay

BUNDLE = ("agent_base.py", "agent_relay.py", "agent_kernel.py", "agent_cells.py", "agent_bash.py", "agent_files.py", "agent_conn.py")


def agent():
    # Detach: the relay waits for this parent; the agent itself is reparented to PID 1.
    if os.fork() != 0:
        os._exit(0)
    # Orphans of the code's Python cells are re-parented here, not to PID 1: a cell's
    # timeout finds and kills them (agent_cells.py); the agent reaps them.
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    Agent().serve()


def main(argv):
    role = argv[0] if argv else ""
    if role == "relay":
        relay()
    elif role == "agent":
        agent()
    elif role == "kernel":
        cin, fdsock = [int(x) for x in os.environ.pop("CI_KERNEL_FDS").split(",")]
        kernel(cin, fdsock)
    elif role == "zygote":
        zygote(int(os.environ.pop("CI_ZYGOTE_FD")))
    else:
        sys.stderr.write("usage: agent.py relay|agent|kernel|zygote\n")
        os._exit(64)


if __name__ == "__main__":
    main(sys.argv[1:])
