"""PID 1 of every executor: reaps zombies and exits (ending the container) when the session's
life is over, whether or not any API process runs.

argv: state maxExpiresAtMs expiresAtMs idleSeconds createdAtMs [slackSeconds]

state is where later keepalives and activity are read from:
- `-`: nowhere (the keeper works from its arguments only);
- a path: a JSON object {"expiresAt": ms, "lastActiveAt": ms} (Docker: written by the API
  with the archive API);
- `annotations:PATH`: a Kubernetes downwardAPI file of the pod's annotations (`key="value"`
  lines, values Go-quoted, so no value can forge a line), from which the keeper takes
  ANNOTATION_EXPIRES_AT and ANNOTATION_LAST_ACTIVE_AT (unix ms, digits only). The kubelet
  writes it and mounts it read-only: the code in the pod cannot extend its own life.
  A claimed warm-pool pod also carries the claim's lifetime there, as four digit-only
  annotations (CLAIM_ANNOTATIONS), read into the same "claim" object as below.
A warm-pool member (issue 10) is started with the member's own lifetime (its max age); when
it is claimed, the API adds a "claim" object to the JSON state record whose "keeper" object
({"maxExpiresAt", "expiresAt", "idleTimeoutSeconds", "createdAt"}, integers) replaces the
arguments from then on. Only the API writes the state file (root-owned, read-only for the
code), so the code cannot give itself a longer life.
slackSeconds (default 0) is added to the expiry and the idle deadline (never past the hard
cap): on Kubernetes the kubelet refreshes the annotations file only on its sync period.

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
ANNOTATIONS_PREFIX = "annotations:"
# The annotation keys of backend-k8s (pod-spec.ts ANNOTATION_EXPIRES_AT / _LAST_ACTIVE_AT).
ANNOTATION_EXPIRES_AT = "code-interpreter.dev/expires-at-ms"
ANNOTATION_LAST_ACTIVE_AT = "code-interpreter.dev/last-active-at-ms"
MAX_STATE_BYTES = 1 << 20
# backend-k8s pool-spec.ts: the claim's keeper lifetime, set by the claim's label patch.
CLAIM_ANNOTATIONS = {
    "code-interpreter.dev/claim-max-expires-at-ms": "maxExpiresAt",
    "code-interpreter.dev/claim-expires-at-ms": "expiresAt",
    "code-interpreter.dev/claim-idle-timeout-seconds": "idleTimeoutSeconds",
    "code-interpreter.dev/claim-created-at-ms": "createdAt",
}


def harden():
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            sys.stderr.write("keeper: prctl(PR_SET_DUMPABLE) failed\n")
    except (OSError, AttributeError) as e:
        sys.stderr.write("keeper: prctl unavailable: %s\n" % e)
    os.chdir("/")


def deadline(state, hard, exp, idle, created, slack=0):
    """The session's end (unix ms): the hard cap, the (extended) expiry, the idle deadline,
    the last two plus `slack` seconds."""
    e = max(exp, int(state.get("expiresAt", 0) or 0))
    la = max(created, int(state.get("lastActiveAt", 0) or 0))
    dl = min(hard, e + slack * 1000)
    if idle > 0:
        dl = min(dl, la + idle * 1000 + slack * 1000)
    return dl


CLAIM_FIELDS = ("maxExpiresAt", "expiresAt", "idleTimeoutSeconds", "createdAt")


def lifetime_of(state, hard, exp, idle, created):
    """(hard, exp, idle, created): the claim's when the state record carries a well-formed
    one (a claimed warm-pool member), else the keeper's arguments."""
    claim = state.get("claim") if isinstance(state, dict) else None
    k = claim.get("keeper") if isinstance(claim, dict) else None
    if isinstance(k, dict):
        vals = [k.get(f) for f in CLAIM_FIELDS]
        if all(type(v) is int and v >= 0 for v in vals):
            return tuple(vals)
    return hard, exp, idle, created


def parse_annotations(text):
    """The state record of a downwardAPI annotations file, or None when it has neither key.

    Each line is `key="value"`; only our keys with a plain decimal value count (their values
    are digits, which Go's quoting leaves as they are). Every other line is ignored.
    """
    keys = {ANNOTATION_EXPIRES_AT: "expiresAt", ANNOTATION_LAST_ACTIVE_AT: "lastActiveAt"}
    out = {}
    claim = {}
    for line in text.split("\n"):
        key, sep, value = line.partition("=")
        field = keys.get(key)
        claim_field = CLAIM_ANNOTATIONS.get(key)
        if not sep or (field is None and claim_field is None):
            continue
        if len(value) < 3 or value[0] != '"' or value[-1] != '"':
            continue
        digits = value[1:-1]
        if not digits.isdigit() or not digits.isascii() or len(digits) > 16:
            continue
        if field is not None:
            out[field] = int(digits)
        else:
            claim[claim_field] = int(digits)
    # A claimed pool member: only all four together replace the keeper's arguments.
    if len(claim) == len(CLAIM_ANNOTATIONS):
        out["claim"] = {"keeper": claim}
    return out or None


def read_state(path):
    """The state record, or None while it cannot be read.

    The backend replaces the file as a whole (Docker's archive API removes it, then writes
    the new one), so it can be missing or partial for a moment: the caller then keeps the
    last good record. The record only ever moves deadlines later, so an old one is safe.
    """
    if path == "-":
        return {}
    if path.startswith(ANNOTATIONS_PREFIX):
        try:
            with open(path[len(ANNOTATIONS_PREFIX):], encoding="utf-8", errors="replace") as f:
                return parse_annotations(f.read(MAX_STATE_BYTES))
        except OSError:
            return None
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
    slack = int(argv[5]) if len(argv) > 5 else 0
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last = {}
    while True:
        reap()
        state = read_state(sp)
        try:
            cur = state if state is not None else last
            dl = deadline(cur, *lifetime_of(cur, hard, exp, idle, created), slack=slack)
            if state is not None:
                last = state
        except (TypeError, ValueError, AttributeError):
            dl = deadline(last, *lifetime_of(last, hard, exp, idle, created), slack=slack)
        now = time.time() * 1000
        if now >= dl:
            sys.exit(0)
        time.sleep(min(2.0, (dl - now) / 1000.0 + 0.05))


if __name__ == "__main__":
    main(sys.argv[1:])
