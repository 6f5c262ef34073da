"""The client: CodeInterpreter, one-shot runs, the file store, and sessions as handles."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union
from urllib.parse import quote

import requests

from ._http import Http, OutputCallback, read_execution_stream
from .errors import NotFoundError, ValidationError
from .types import Execution, SessionInfo, StagedFile, StoredFile, WorkspaceEntry

T = TypeVar("T")
Content = Union[bytes, bytearray, memoryview, str]


def _bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def _session_path(session_id: str) -> str:
    # An id of dots would be resolved away in a URL (another route): never a session.
    if session_id.strip(".") == "":
        raise NotFoundError(404, f"session {session_id!r} not found")
    return "/v1/sessions/" + quote(session_id, safe="")


def _workspace_path(path: str) -> str:
    segments = path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ValidationError(
            422, f'path: {path!r} must be relative to /workspace, without empty, "." or ".." segments'
        )
    return "/".join(quote(s, safe="") for s in segments)


def _staged(files: Optional[Sequence[StagedFile]]) -> Optional[List[Dict[str, str]]]:
    return None if files is None else [{"path": f.path, "file_id": f.file_id} for f in files]


def _pages(fetch: Callable[[Optional[str]], Mapping[str, Any]], key: str, make: Callable[[Any], T]) -> Iterator[T]:
    cursor: Optional[str] = None
    while True:
        page = fetch(cursor)
        items = page.get(key) or []
        for item in items:
            yield make(item)
        cursor = page.get("next_cursor")
        if not cursor or not items:
            return


def _run(
    http: Http,
    path: str,
    body: Dict[str, Any],
    on_stdout: Optional[OutputCallback],
    on_stderr: Optional[OutputCallback],
) -> Execution:
    body = {k: v for k, v in body.items() if v is not None}
    if on_stdout is not None or on_stderr is not None:
        res = http.request(
            "POST", path + "/stream", json_body=body, stream=True, headers={"Accept": "text/event-stream"}
        )
        return read_execution_stream(res, on_stdout, on_stderr)
    return Execution.from_json(http.request("POST", path, json_body=body).json())


class SessionFiles:
    """The files of one session's /workspace."""

    def __init__(self, http: Http, session_id: str) -> None:
        self._http = http
        self._session_id = session_id

    def write(self, path: str, content: Content) -> WorkspaceEntry:
        """Creates or replaces ``path`` (relative to /workspace); parent directories are made."""
        url = f"{_session_path(self._session_id)}/files/{_workspace_path(path)}"
        res = self._http.request(
            "PUT", url, data=_bytes(content), headers={"Content-Type": "application/octet-stream"}
        )
        return WorkspaceEntry.from_json(res.json())

    def read(self, path: str) -> bytes:
        """The bytes of ``path``; NotFoundError for a missing path or a directory."""
        url = f"{_session_path(self._session_id)}/files/{_workspace_path(path)}"
        return self._http.request("GET", url).content

    def read_text(self, path: str) -> str:
        return self.read(path).decode("utf-8")

    def list(self, page_size: int = 100) -> Iterator[WorkspaceEntry]:
        """Files and directories under /workspace, fetched page by page as iterated."""
        url = f"{_session_path(self._session_id)}/files"
        return _pages(
            lambda cursor: self._http.request("GET", url, params={"limit": page_size, "cursor": cursor}).json(),
            "files",
            WorkspaceEntry.from_json,
        )

    def copy(self, file_id: str, path: str) -> WorkspaceEntry:
        """Copies a stored file (``client.files.upload``) to ``path`` in the workspace."""
        url = f"{_session_path(self._session_id)}/files"
        return WorkspaceEntry.from_json(
            self._http.request("POST", url, json_body={"path": path, "file_id": file_id}).json()
        )


class Session:
    """A running session. ``with client.sessions.create() as s:`` deletes it at the end."""

    def __init__(self, http: Http, info: SessionInfo) -> None:
        self._http = http
        self.id = info.id
        #: The session's state as of the last call that returned it.
        self.info = info
        self.files = SessionFiles(http, info.id)

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    def run(
        self,
        code: str,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
        last_line_interactive: Optional[bool] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
    ) -> Execution:
        """Runs Python in the session's /workspace; streamed (SSE) to the callbacks if given."""
        body = {"code": code, "timeout_ms": timeout_ms, "stdin": stdin, "last_line_interactive": last_line_interactive}
        return _run(self._http, f"{_session_path(self.id)}/execute", body, on_stdout, on_stderr)

    def bash(
        self,
        cmd: str,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
    ) -> Execution:
        """Runs a bash command (a fresh process in /workspace)."""
        body = {"cmd": cmd, "timeout_ms": timeout_ms, "stdin": stdin}
        return _run(self._http, f"{_session_path(self.id)}/bash", body, on_stdout, on_stderr)

    def keepalive(self, ttl_seconds: Optional[int] = None) -> SessionInfo:
        """Moves expires_at to now + ttl_seconds (default: as far as the server allows)."""
        body = {} if ttl_seconds is None else {"ttl_seconds": ttl_seconds}
        res = self._http.request("POST", f"{_session_path(self.id)}/keepalive", json_body=body)
        self.info = SessionInfo.from_json(res.json())
        return self.info

    def refresh(self) -> SessionInfo:
        """Reads the session's current state; NotFoundError once it has ended."""
        self.info = SessionInfo.from_json(self._http.request("GET", _session_path(self.id)).json())
        return self.info

    def delete(self) -> None:
        """Deletes the session; NotFoundError if it is already gone."""
        self._http.request("DELETE", _session_path(self.id))

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.delete()
        except NotFoundError:
            pass


class Sessions:
    def __init__(self, http: Http) -> None:
        self._http = http

    def create(
        self,
        *,
        files: Optional[Sequence[StagedFile]] = None,
        ttl_seconds: Optional[int] = None,
        idle_timeout_seconds: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Session:
        """Starts a session with ``files`` staged in its /workspace."""
        body = {
            "files": _staged(files),
            "ttl_seconds": ttl_seconds,
            "idle_timeout_seconds": idle_timeout_seconds,
            "metadata": None if metadata is None else dict(metadata),
        }
        body = {k: v for k, v in body.items() if v is not None}
        return Session(self._http, SessionInfo.from_json(self._http.request("POST", "/v1/sessions", json_body=body).json()))

    def get(self, session_id: str) -> Session:
        """A handle on an existing session; NotFoundError when unknown or ended."""
        return Session(self._http, SessionInfo.from_json(self._http.request("GET", _session_path(session_id)).json()))

    def list(self, page_size: int = 100) -> Iterator[Session]:
        """The caller's sessions, oldest first, fetched page by page as iterated."""
        return _pages(
            lambda cursor: self._http.request(
                "GET", "/v1/sessions", params={"limit": page_size, "cursor": cursor}
            ).json(),
            "sessions",
            lambda d: Session(self._http, SessionInfo.from_json(d)),
        )


class Files:
    def __init__(self, http: Http) -> None:
        self._http = http

    def upload(self, content: Content, filename: str) -> StoredFile:
        """Uploads bytes to the file store (multipart POST /v1/files)."""
        res = self._http.request("POST", "/v1/files", files={"file": (filename, _bytes(content))})
        return StoredFile.from_json(res.json())

    def download(self, file_id: str) -> bytes:
        return self._http.request("GET", "/v1/files/" + quote(file_id, safe="")).content

    def delete(self, file_id: str) -> None:
        self._http.request("DELETE", "/v1/files/" + quote(file_id, safe=""))

    def list(self, page_size: int = 100) -> Iterator[StoredFile]:
        return _pages(
            lambda cursor: self._http.request(
                "GET", "/v1/files", params={"limit": page_size, "cursor": cursor}
            ).json(),
            "files",
            StoredFile.from_json,
        )


class CodeInterpreter:
    """Client for the code-interpreter REST API.

    :param base_url: default ``$CODE_INTERPRETER_URL``, else ``http://localhost:8000``
    :param api_key: sent as ``Authorization: Bearer``; default ``$CODE_INTERPRETER_API_KEY``
    :param max_retries: retries on 429/503 (and unanswered GET/PUT/DELETE); default 4
    :param retry_min_delay: first backoff in seconds without ``Retry-After``; doubles; default 0.5
    :param retry_max_delay: cap on one wait, also on ``Retry-After``; default 30
    :param timeout: seconds to connect and between bytes read (None: no limit); default 600
    :param session: a ``requests.Session`` to use; default a new one
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        max_retries: int = 4,
        retry_min_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        timeout: Optional[float] = 600.0,
        session: Optional[requests.Session] = None,
    ) -> None:
        self._http = Http(
            base_url or os.environ.get("CODE_INTERPRETER_URL") or "http://localhost:8000",
            api_key if api_key is not None else os.environ.get("CODE_INTERPRETER_API_KEY"),
            max_retries,
            retry_min_delay,
            retry_max_delay,
            timeout,
            session,
        )
        self.sessions = Sessions(self._http)
        self.files = Files(self._http)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def health(self) -> Dict[str, Any]:
        """GET /health; a backend that is down answers ``status: "unavailable"`` (not raised)."""
        result: Dict[str, Any] = self._http.request("GET", "/health", ok_statuses=(503,)).json()
        return result

    def execute(
        self,
        code: str,
        *,
        timeout_ms: Optional[int] = None,
        stdin: Optional[str] = None,
        last_line_interactive: Optional[bool] = None,
        files: Optional[Sequence[StagedFile]] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
    ) -> Execution:
        """Runs Python once in a fresh sandbox (removed after); streamed to the callbacks if given."""
        body = {
            "code": code,
            "timeout_ms": timeout_ms,
            "stdin": stdin,
            "last_line_interactive": last_line_interactive,
            "files": _staged(files),
        }
        return _run(self._http, "/v1/execute", body, on_stdout, on_stderr)

    def close(self) -> None:
        self._http.session.close()

    def __enter__(self) -> "CodeInterpreter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
