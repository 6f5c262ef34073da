import json
import os
import signal
import subprocess
import sys
import time

from conftest import NOBODY, drop_to, source


def keeper_args(state, hard, exp, idle, created):
    return [state, int(hard), int(exp), int(idle), int(created)]


def start_keeper(argv, uid=None):
    cmd = [sys.executable, "-I", "-S", "-c", source("keeper.py")] + [str(a) for a in argv]
    return subprocess.Popen(cmd, preexec_fn=drop_to(uid), stderr=subprocess.PIPE)


def now_ms():
    return time.time() * 1000


def test_keeper_exits_at_its_deadline():
    t = now_ms()
    p = start_keeper(keeper_args("-", t + 60000, t + 700, 0, t))
    assert p.wait(timeout=10) == 0
    assert now_ms() - t >= 600


def test_keeper_keeps_the_last_good_state_while_the_file_is_replaced(tmp_path):
    # Docker's archive API removes the file before writing the new one: a moment without
    # it (or with half of it) must not fall back to the labels' earlier deadline.
    t = now_ms()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"expiresAt": t + 60000}))
    p = start_keeper(keeper_args(str(state), t + 60000, t + 300, 0, t))
    try:
        time.sleep(0.5)
        state.unlink()
        time.sleep(2.5)
        assert p.poll() is None
        state.write_text('{"expiresAt": ')
        time.sleep(2.5)
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_keeper_follows_an_extended_state_file(tmp_path):
    t = now_ms()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"expiresAt": t + 60000}))
    p = start_keeper(keeper_args(str(state), t + 60000, t + 300, 0, t))
    time.sleep(1.0)
    assert p.poll() is None
    state.write_text(json.dumps({"expiresAt": t}))
    assert p.wait(timeout=10) == 0


def claim_state(t, hard, exp, idle=0, extra=None):
    rec = {"as": "session", "claimedAt": int(t), "tags": {},
           "keeper": {"maxExpiresAt": int(hard), "expiresAt": int(exp),
                      "idleTimeoutSeconds": idle, "createdAt": int(t)}}
    s = {"expiresAt": int(exp), "lastActiveAt": int(t), "claim": rec}
    s.update(extra or {})
    return json.dumps(s)


def test_keeper_of_a_claimed_pool_member_follows_the_claims_lifetime(tmp_path):
    # A member made with a 1.5 s life, claimed for 60 s: it outlives its own age.
    t = now_ms()
    state = tmp_path / "state.json"
    p = start_keeper(keeper_args(str(state), t + 1500, t + 1500, 0, t))
    try:
        state.write_text(claim_state(t, t + 60000, t + 60000))
        time.sleep(2.5)
        assert p.poll() is None
        # Then it ends at the claim's deadline, not later.
        state.write_text(claim_state(t, t + 60000, now_ms() + 300))
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()


def test_keeper_of_a_claimed_member_enforces_the_claims_hard_cap_and_idle(tmp_path):
    t = now_ms()
    state = tmp_path / "state.json"
    state.write_text(claim_state(t, t + 800, t + 60000))
    p = start_keeper(keeper_args(str(state), t + 60000, t + 60000, 0, t))
    assert p.wait(timeout=10) == 0
    assert now_ms() - t < 5000
    t = now_ms()
    state.write_text(claim_state(t, t + 60000, t + 60000, idle=1))
    p = start_keeper(keeper_args(str(state), t + 60000, t + 60000, 0, t))
    assert p.wait(timeout=10) == 0
    assert now_ms() - t < 5000


def test_keeper_ignores_a_malformed_claim(tmp_path):
    t = now_ms()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"claim": {"keeper": {"maxExpiresAt": "x", "expiresAt": 1.5}}}))
    p = start_keeper(keeper_args(str(state), t + 60000, t + 700, 0, t))
    assert p.wait(timeout=10) == 0
    assert now_ms() - t >= 600


def test_keeper_idle_deadline_and_garbage_state(tmp_path):
    t = now_ms()
    state = tmp_path / "state.json"
    state.write_text('{"expiresAt": "soon", "lastActiveAt": [1]}')
    p = start_keeper(keeper_args(str(state), t + 60000, t + 60000, 1, t))
    assert p.wait(timeout=10) == 0


def write_annotations(d, annotations, gen=[0]):
    """What the kubelet does for a downwardAPI volume: `key="value"` lines (sorted, Go-quoted)
    in a new timestamped dir, `..data` swapped to it with a rename, `annotations` a symlink."""
    gen[0] += 1
    data = "..%d" % gen[0]
    os.mkdir(os.path.join(d, data))
    body = "\n".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(annotations.items()))
    with open(os.path.join(d, data, "annotations"), "w") as f:
        f.write(body)
    os.symlink(data, os.path.join(d, "..data_tmp"))
    os.rename(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
    if not os.path.islink(os.path.join(d, "annotations")):
        os.symlink("..data/annotations", os.path.join(d, "annotations"))


EXP = "code-interpreter.dev/expires-at-ms"
ACT = "code-interpreter.dev/last-active-at-ms"


def test_keeper_follows_the_pods_annotations_and_ignores_forged_lines(tmp_path):
    t = now_ms()
    d = str(tmp_path)
    # A caller's metadata value holding a newline cannot forge a line: Go quoting escapes it.
    forged = 'x\n%s="%d"' % (EXP, int(t + 600000))
    write_annotations(d, {EXP: str(int(t + 2500)), "code-interpreter.dev/meta-a": forged})
    p = start_keeper(keeper_args("annotations:" + os.path.join(d, "annotations"), t + 60000, t + 300, 0, t))
    try:
        time.sleep(1.2)
        assert p.poll() is None  # the annotation moved the expiry past the argument's
        assert p.wait(timeout=10) == 0
        assert now_ms() - t >= 2400
    finally:
        p.kill()
        p.wait()


def test_keeper_idle_from_annotations_with_slack_and_last_good_state(tmp_path):
    t = now_ms()
    d = str(tmp_path)
    write_annotations(d, {EXP: str(int(t + 60000)), ACT: str(int(t))})
    path = "annotations:" + os.path.join(d, "annotations")
    p = start_keeper(keeper_args(path, t + 60000, t + 60000, 2, t) + [1])
    try:
        for _ in range(5):  # activity keeps it alive past idle (2 s) + slack (1 s)
            time.sleep(1.0)
            write_annotations(d, {EXP: str(int(t + 60000)), ACT: str(int(now_ms()))})
        assert p.poll() is None
        # An unreadable file keeps the last good record (no fallback to the created time).
        os.unlink(os.path.join(d, "..data"))
        time.sleep(0.5)
        assert p.poll() is None
        stopped = now_ms()
        assert p.wait(timeout=10) == 0
        # It reads at least every 2 s: it saw an activity at most 2 s older than the last.
        assert now_ms() - stopped >= 400
    finally:
        p.kill()
        p.wait()


CLAIM = "code-interpreter.dev/claim-"


def claim_annotations(hard, exp, idle, created):
    return {CLAIM + "max-expires-at-ms": str(int(hard)), CLAIM + "expires-at-ms": str(int(exp)),
            CLAIM + "idle-timeout-seconds": str(int(idle)), CLAIM + "created-at-ms": str(int(created))}


def test_keeper_of_a_claimed_pool_pod_follows_the_claim_annotations(tmp_path):
    # A Kubernetes pool member made with a 1.5 s life, claimed for 60 s through annotations.
    t = now_ms()
    d = str(tmp_path)
    write_annotations(d, {EXP: str(int(t + 1500))})
    p = start_keeper(keeper_args("annotations:" + os.path.join(d, "annotations"), t + 1500, t + 1500, 0, t))
    try:
        ann = {EXP: str(int(t + 60000)), ACT: str(int(t))}
        ann.update(claim_annotations(t + 60000, t + 60000, 0, t))
        write_annotations(d, ann)
        time.sleep(2.5)
        assert p.poll() is None  # outlived the member's own age
        # The claim's idle timeout (1 s) is enforced from then on.
        ann.update(claim_annotations(t + 60000, t + 60000, 1, t))
        write_annotations(d, ann)
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
        p.wait()


def test_keeper_ignores_an_incomplete_or_forged_claim_in_annotations(tmp_path):
    t = now_ms()
    d = str(tmp_path)
    ann = claim_annotations(t + 60000, t + 60000, 0, t)
    del ann[CLAIM + "created-at-ms"]  # three of four: not a claim
    ann[CLAIM + "x"] = "1"
    ann["code-interpreter.dev/meta"] = 'x\n%s="%d"' % (CLAIM + "created-at-ms", int(t))
    write_annotations(d, ann)
    p = start_keeper(keeper_args("annotations:" + os.path.join(d, "annotations"), t + 700, t + 700, 0, t))
    assert p.wait(timeout=10) == 0
    assert now_ms() - t < 5000


def test_keeper_slack_never_passes_the_hard_cap():
    t = now_ms()
    p = start_keeper(keeper_args("-", t + 700, t + 300, 0, t) + [60])
    assert p.wait(timeout=10) == 0
    assert now_ms() - t < 5000


def test_keeper_is_not_dumpable_and_runs_from_root_dir():
    t = now_ms()
    p = start_keeper(keeper_args("-", t + 60000, t + 60000, 0, t), uid=NOBODY)
    try:
        time.sleep(0.5)
        assert os.readlink("/proc/%d/cwd" % p.pid) == "/"
        if os.getuid() == 0:
            # The files of a non-dumpable process's /proc/<pid> belong to root, whatever its uid.
            assert os.stat("/proc/%d/fd" % p.pid).st_uid == 0
            status = open("/proc/%d/status" % p.pid).read()
            assert "Uid:\t%d" % NOBODY in status
            probe = subprocess.run(
                [sys.executable, "-c", "import os; os.listdir('/proc/%d/fd')" % p.pid],
                preexec_fn=drop_to(NOBODY), capture_output=True)
            assert b"PermissionError" in probe.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


def test_killer_kills_tagged_processes_and_the_recorded_group(tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    env = dict(os.environ, CODE_INTERPRETER_EXEC_ID="run-1")
    tagged = subprocess.Popen(["sleep", "60"], env=env)
    grouped = subprocess.Popen(["sleep", "60"], start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], env=dict(os.environ, CODE_INTERPRETER_EXEC_ID="run-2"))
    (ctl / "run-1.pid").write_text("%d\n" % grouped.pid)
    try:
        cmd = [sys.executable, "-I", "-S", "-c", source("killer.py", CTL=str(ctl)), "run-1"]
        assert subprocess.run(cmd, timeout=30).returncode == 0
        assert tagged.wait(timeout=5) == -9
        assert grouped.wait(timeout=5) == -9
        assert other.poll() is None
    finally:
        for p in (tagged, grouped, other):
            p.kill()
            p.wait()


def test_killer_finds_non_dumpable_helpers_by_their_arguments(tmp_path):
    # The runner and the workspace helper make themselves non-dumpable: their environment is
    # unreadable to the killer (same uid), their command line is not.
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    helper = subprocess.Popen(
        [sys.executable, "-c", "import ctypes, time, sys; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); time.sleep(60)",
         "run-7", "list"], preexec_fn=drop_to(NOBODY))
    try:
        time.sleep(0.3)
        cmd = [sys.executable, "-I", "-S", "-c", source("killer.py", CTL=str(ctl)), "run-7"]
        assert subprocess.run(cmd, timeout=30, preexec_fn=drop_to(NOBODY)).returncode == 0
        assert helper.wait(timeout=5) == -9
    finally:
        helper.kill()
        helper.wait()


def test_killer_ignores_a_forged_pid_file(tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    (ctl / "run-1.pid").write_text("1\n")
    cmd = [sys.executable, "-I", "-S", "-c", source("killer.py", CTL=str(ctl)), "run-1"]
    assert subprocess.run(cmd, timeout=30).returncode == 0
    (ctl / "run-1.pid").write_text("%d\n" % os.getpgid(0))
    assert subprocess.run(cmd, timeout=30).returncode == 0  # would have killed this test


def test_killer_rejects_bad_ids():
    cmd = [sys.executable, "-I", "-S", "-c", source("killer.py"), "../x"]
    assert subprocess.run(cmd, timeout=30, capture_output=True).returncode == 2
