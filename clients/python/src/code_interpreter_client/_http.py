"""One HTTP request with the client's defaults, typed errors and retries; the SSE reader."""

from __future__ import annotations

import json
import random
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import requests

from .errors import (
    CodeInterpreterError,
    ConnectionFailedError,
    StreamError,
    error_for_status,
    parse_retry_after,
)
from .types import Execution

IDEMPOTENT = {"GET", "PUT", "DELETE"}
#: Sent on every request, so server logs can tell clients apart.
USER_AGENT = "code-interpreter-client-python/0.1"
OutputCallback = Callable[[str], None]


class Http:
    def __init__(
        self,
        base_url: str,
        api_key: Optional[str],
        max_retries: int,
        retry_min_delay: float,
        retry_max_delay: float,
        timeout: Optional[float],
        session: Optional[requests.Session],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.retry_min_delay = retry_min_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout
        self.session = session or requests.Session()

    def _retryable(self, err: CodeInterpreterError, method: str) -> bool:
        if err.status in (429, 503):
            return True
        return method in IDEMPOTENT and err.status in (0, 502, 504)

    def _delay(self, err: CodeInterpreterError, attempt: int) -> float:
        asked = getattr(err, "retry_after", None)
        if asked is not None:
            return float(min(asked, self.retry_max_delay))
        backoff = self.retry_min_delay * (2 ** (attempt - 1))
        return float(min(self.retry_max_delay, backoff * (0.5 + random.random() / 2)))

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Optional[bytes] = None,
        files: Optional[Mapping[str, Tuple[str, bytes]]] = None,
        params: Optional[Mapping[str, Any]] = None,
        stream: bool = False,
        ok_statuses: Tuple[int, ...] = (),
        headers: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(method, path, json_body, data, files, params, stream, ok_statuses, headers)
            except CodeInterpreterError as err:
                if attempt > self.max_retries or not self._retryable(err, method):
                    raise
                time.sleep(self._delay(err, attempt))

    def _attempt(
        self,
        method: str,
        path: str,
        json_body: Any,
        data: Optional[bytes],
        files: Optional[Mapping[str, Tuple[str, bytes]]],
        params: Optional[Mapping[str, Any]],
        stream: bool,
        ok_statuses: Tuple[int, ...],
        extra_headers: Optional[Mapping[str, str]],
    ) -> requests.Response:
        headers: Dict[str, str] = {"User-Agent": USER_AGENT, **(extra_headers or {})}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            res = self.session.request(
                method,
                self.base_url + path,
                json=json_body,
                data=data,
                files=files,
                params=query,
                headers=headers,
                stream=stream,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ConnectionFailedError(0, f"could not reach {self.base_url}: {exc}") from exc
        if res.ok or res.status_code in ok_statuses:
            return res
        raise _error_from(res)


def _error_from(res: requests.Response) -> CodeInterpreterError:
    detail = res.reason or f"HTTP {res.status_code}"
    try:
        body = res.json()
        if isinstance(body, dict) and "detail" in body:
            d = body["detail"]
            detail = d if isinstance(d, str) else json.dumps(d)
    except ValueError:
        if res.text:
            detail = res.text[:500]
    return error_for_status(
        res.status_code,
        detail,
        res.headers.get("x-request-id"),
        parse_retry_after(res.headers.get("retry-after")),
    )


# ------------------------------------------------------------------ SSE


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of an event stream, ended by CRLF, LF or CR, even when split across chunks."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            cut = min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0 or (buf[cut : cut + 1] == b"\r" and cut == len(buf) - 1):
                break  # no line end yet, or a CR that may be followed by LF
            line, rest = buf[:cut], buf[cut + 1 :]
            if buf[cut : cut + 1] == b"\r" and rest[:1] == b"\n":
                rest = rest[1:]
            buf = rest
            yield line.decode("utf-8", errors="replace")
    if buf:
        yield buf.rstrip(b"\r").decode("utf-8", errors="replace")


def _events(chunks: Iterator[bytes]) -> Iterator[Tuple[str, str]]:
    """(event, data) pairs as the HTML spec's event-stream interpretation dispatches them."""
    event = ""
    data: List[str] = []
    for line in _lines(chunks):
        if line == "":
            if data:
                yield (event or "message", "\n".join(data))
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)


def read_execution_stream(
    res: requests.Response, on_stdout: Optional[OutputCallback], on_stderr: Optional[OutputCallback]
) -> Execution:
    """Calls the output callbacks in order; returns the result with all output gathered."""
    request_id = res.headers.get("x-request-id")
    out: List[str] = []
    err: List[str] = []
    try:
        for event, data in _events(res.iter_content(chunk_size=None)):
            try:
                payload = json.loads(data)
            except ValueError:
                raise StreamError(200, f"malformed {event} event", request_id) from None
            if event == "output":
                stream, text = (payload.get("stream"), payload.get("data")) if isinstance(payload, dict) else (None, None)
                if not isinstance(text, str) or stream not in ("stdout", "stderr"):
                    raise StreamError(200, "malformed output event", request_id)
                (out if stream == "stdout" else err).append(text)
                callback = on_stdout if stream == "stdout" else on_stderr
                if callback is not None:
                    callback(text)
            elif event == "result":
                if not (
                    isinstance(payload, dict)
                    and isinstance(payload.get("timed_out"), bool)
                    and isinstance(payload.get("duration_ms"), (int, float))
                    and isinstance(payload.get("files"), list)
                    and (payload.get("exit_code") is None or isinstance(payload.get("exit_code"), int))
                ):
                    raise StreamError(200, "malformed result event", request_id)
                return Execution.from_json(payload, stdout="".join(out), stderr="".join(err))
            elif event == "error":
                message = payload.get("message") if isinstance(payload, dict) else None
                raise StreamError(200, message if isinstance(message, str) else "the run failed", request_id)
    finally:
        res.close()
    raise StreamError(200, "the stream ended before its result event", request_id)
