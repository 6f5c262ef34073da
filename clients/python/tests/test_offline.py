"""Retry and stream rules without the API: a scripted local HTTP server (stdlib)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Tuple

import pytest

from code_interpreter_client import (
    CodeInterpreter,
    ConnectionFailedError,
    RateLimitError,
    StreamError,
    UnavailableError,
    ValidationError,
)
from code_interpreter_client._http import _events
from code_interpreter_client.errors import parse_retry_after

Answer = Tuple[int, Dict[str, str], bytes]

SESSION = {
    "session_id": "code-session-00000000-0000-4000-8000-000000000000",
    "status": "running",
    "created_at": 1.5,
    "expires_at": 601.5,
    "last_active_at": 1.5,
    "metadata": {},
}


class Scripted:
    def __init__(self, answers: List[Answer]) -> None:
        self.answers = answers
        self.calls: List[Tuple[str, str, float]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                script.calls.append((self.command, self.path, time.monotonic()))
                status, headers, body = script.answers.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture()
def scripted() -> Iterator[List[Scripted]]:
    made: List[Scripted] = []
    yield made
    for s in made:
        s.server.shutdown()


def serve(made: List[Scripted], answers: List[Answer]) -> Scripted:
    s = Scripted(answers)
    made.append(s)
    return s


def js(status: int, body: object, **headers: str) -> Answer:
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


def test_429_waits_retry_after_then_succeeds(scripted: List[Scripted]) -> None:
    s = serve(scripted, [js(429, {"detail": "full"}, **{"retry-after": "1"}), js(201, SESSION)])
    session = CodeInterpreter(s.url, retry_min_delay=0.01).sessions.create()
    assert session.id == SESSION["session_id"]
    assert s.calls[1][2] - s.calls[0][2] >= 0.95


def test_503_retried_then_typed_error(scripted: List[Scripted]) -> None:
    s = serve(scripted, [js(503, {"detail": "a"}), js(503, {"detail": "b"})])
    with pytest.raises(UnavailableError) as err:
        CodeInterpreter(s.url, max_retries=1, retry_min_delay=0.01).sessions.create()
    assert (err.value.status, err.value.detail) == (503, "b")
    assert len(s.calls) == 2


def test_no_retry_without_permission(scripted: List[Scripted]) -> None:
    s = serve(scripted, [js(429, {"detail": "full"}, **{"retry-after": "7"})])
    with pytest.raises(RateLimitError) as err:
        CodeInterpreter(s.url, max_retries=0).sessions.create()
    assert err.value.retry_after == 7
    s2 = serve(scripted, [js(422, {"detail": "code: required"})])
    with pytest.raises(ValidationError):
        CodeInterpreter(s2.url).execute("1")
    assert len(s2.calls) == 1


def test_unreachable_post_is_not_retried() -> None:
    with pytest.raises(ConnectionFailedError) as err:
        CodeInterpreter("http://127.0.0.1:9", retry_min_delay=0.01).execute("1")
    assert err.value.status == 0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=7) == 3
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_event_stream_parsing_across_chunks() -> None:
    chunks = [b"event: output\r", b"\ndata: {\"a\"", b":1}\r\n\r\n: comment\n\nevent: x\ndata: 1\ndata: 2\n\n", b"data: tail"]
    assert list(_events(iter(chunks))) == [("output", '{"a":1}'), ("x", "1\n2")]


def test_hostile_streams(scripted: List[Scripted]) -> None:
    def run(body: str) -> None:
        s = serve(scripted, [(200, {"content-type": "text/event-stream"}, body.encode())])
        CodeInterpreter(s.url).execute("1", on_stdout=lambda d: None)

    with pytest.raises(StreamError, match="boom"):
        run('event: error\ndata: {"message":"boom"}\n\n')
    with pytest.raises(StreamError, match="before its result"):
        run('event: output\ndata: {"stream":"stdout","data":"x"}\n\n')
    with pytest.raises(StreamError, match="malformed output"):
        run('event: output\ndata: {"stream":"other","data":"x"}\n\n')
    with pytest.raises(StreamError, match="malformed"):
        run("event: result\ndata: {not json\n\n")
