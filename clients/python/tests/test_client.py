"""The Python client against the real server on the real engine."""

from __future__ import annotations

import uuid
from typing import List

import pytest

from code_interpreter_client import (
    AuthError,
    CodeInterpreter,
    CodeInterpreterError,
    NotFoundError,
    Session,
    StagedFile,
    ValidationError,
)


def test_health(client: CodeInterpreter) -> None:
    h = client.health()
    assert h["status"] == "ok"
    assert h["backend"] == "docker"


def test_execute_returns_output_and_exit_code(client: CodeInterpreter) -> None:
    r = client.execute("print('hi')\n6 * 7")
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out, r.files) == ("hi\n42\n", "", 0, False, [])
    assert r.duration_ms > 0


def test_streaming_callbacks_in_order(client: CodeInterpreter) -> None:
    events: List[str] = []

    def push(tag: str, data: str) -> None:
        # Pieces of one stream may be split anywhere: join adjacent ones, keep the order.
        if events and events[-1].startswith(tag):
            events[-1] += data
        else:
            events.append(tag + data)

    code = "\n".join(
        [
            "import sys, time",
            "print('one', flush=True); time.sleep(0.3)",
            "print('two', file=sys.stderr, flush=True); time.sleep(0.3)",
            "print('three', flush=True)",
        ]
    )
    r = client.execute(code, on_stdout=lambda d: push("out:", d), on_stderr=lambda d: push("err:", d))
    assert events == ["out:one\n", "err:two\n", "out:three\n"]
    assert (r.stdout, r.stderr, r.exit_code) == ("one\nthree\n", "two\n", 0)


def test_files_staged_and_produced(client: CodeInterpreter) -> None:
    up = client.files.upload(b"a,b\n1,2\n", "in.csv")
    assert (up.filename, up.size_bytes) == ("in.csv", 8)
    r = client.execute(
        "open('out.txt', 'w').write(open('data/in.csv').read().upper())",
        files=[StagedFile("data/in.csv", up.id)],
        last_line_interactive=False,
    )
    assert r.exit_code == 0
    out = next(f for f in r.files if f.path == "out.txt")
    assert client.files.download(out.file_id) == b"A,B\n1,2\n"
    ids = [f.id for f in client.files.list(page_size=1)]
    assert up.id in ids and out.file_id in ids
    client.files.delete(up.id)
    with pytest.raises(NotFoundError):
        client.files.download(up.id)


def test_timeout(client: CodeInterpreter) -> None:
    r = client.execute("import time\nprint('start', flush=True)\ntime.sleep(30)", timeout_ms=1500)
    assert r.timed_out is True and r.exit_code is None
    assert "start" in r.stdout


def test_session_handle(client: CodeInterpreter, cleanup: List[Session]) -> None:
    up = client.files.upload(bytes([0, 1, 2, 255]), "blob.bin")
    s = client.sessions.create(
        files=[StagedFile("in/blob.bin", up.id)], ttl_seconds=300, metadata={"chat_id": "abc"}
    )
    cleanup.append(s)
    assert s.id.startswith("code-session-")
    assert s.info.status == "running" and s.info.metadata == {"chat_id": "abc"}
    assert isinstance(s.info.expires_at, float)
    assert abs((s.info.expires_at - s.info.created_at) - 300) < 2

    assert s.bash("od -An -tu1 in/blob.bin | tr -s ' '").stdout == " 0 1 2 255\n"
    assert s.bash("exit 3").exit_code == 3
    assert s.run("import os\nsorted(os.listdir('in'))").stdout == "['blob.bin']\n"
    # A session remembers: variables and imports persist between runs (issue 9).
    s.run("x = 5")
    assert s.run("print(x + len(os.listdir('in')))").stdout == "6\n"

    assert s.files.write("notes/a b.txt", "hello ✓").size_bytes == len("hello ✓".encode())
    assert s.files.read_text("notes/a b.txt") == "hello ✓"
    assert s.files.copy(up.id, "copy.bin").size_bytes == 4
    assert s.files.read("copy.bin") == bytes([0, 1, 2, 255])
    entries = {(e.path, e.kind) for e in s.files.list(page_size=2)}
    assert {("in/blob.bin", "file"), ("notes", "directory"), ("notes/a b.txt", "file"), ("copy.bin", "file")} <= entries

    before = s.info.expires_at
    assert s.keepalive(500).expires_at > before
    assert s.refresh().expires_at == s.info.expires_at
    assert client.sessions.get(s.id).info.metadata == {"chat_id": "abc"}
    assert s.id in [x.id for x in client.sessions.list(page_size=1)]


def test_with_block_deletes_the_session(client: CodeInterpreter) -> None:
    with client.sessions.create(ttl_seconds=120) as s:
        assert s.bash("echo inside").stdout == "inside\n"
        sid = s.id
    with pytest.raises(NotFoundError):
        client.sessions.get(sid)
    with pytest.raises(NotFoundError) as info:
        s.delete()
    assert info.value.status == 404 and info.value.request_id


def test_typed_errors(client: CodeInterpreter, base_url: str, cleanup: List[Session]) -> None:
    for key in (None, "wrong"):
        with pytest.raises(AuthError) as auth:
            list(CodeInterpreter(base_url, key or "", max_retries=0).sessions.list())
        assert auth.value.status == 401 and isinstance(auth.value, CodeInterpreterError)
    with pytest.raises(NotFoundError):
        client.sessions.get(f"code-session-{uuid.uuid4()}")
    with pytest.raises(NotFoundError):
        client.sessions.get("..")
    with pytest.raises(ValidationError) as invalid:
        client.execute("1", timeout_ms=10_000_000)
    assert "timeout_ms" in invalid.value.detail
    s = client.sessions.create()
    cleanup.append(s)
    for bad in ("../escape", "/etc/passwd", "a//b"):
        with pytest.raises(ValidationError):
            s.files.write(bad, "x")
