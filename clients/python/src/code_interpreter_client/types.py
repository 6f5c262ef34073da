"""The API's shapes as dataclasses. Times are unix seconds (floats), as on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional


@dataclass(frozen=True)
class ProducedFile:
    """A file code created or changed, saved to the file store."""

    path: str
    kind: str
    file_id: str


@dataclass(frozen=True)
class Execution:
    """The result of a Python or bash run. ``exit_code`` is None when the run timed out."""

    stdout: str
    stderr: str
    exit_code: Optional[int]
    timed_out: bool
    duration_ms: float
    files: List[ProducedFile] = field(default_factory=list)

    @staticmethod
    def from_json(d: Mapping[str, Any], stdout: Optional[str] = None, stderr: Optional[str] = None) -> "Execution":
        return Execution(
            stdout=d["stdout"] if stdout is None else stdout,
            stderr=d["stderr"] if stderr is None else stderr,
            exit_code=d["exit_code"],
            timed_out=d["timed_out"],
            duration_ms=d["duration_ms"],
            files=[ProducedFile(f["path"], f["kind"], f["file_id"]) for f in d.get("files", [])],
        )


@dataclass(frozen=True)
class SessionInfo:
    id: str
    status: str
    created_at: float
    expires_at: float
    last_active_at: float
    metadata: Dict[str, str]
    idle_timeout_seconds: Optional[int] = None
    max_expires_at: Optional[float] = None

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> "SessionInfo":
        return SessionInfo(
            id=d["session_id"],
            status=d["status"],
            created_at=float(d["created_at"]),
            expires_at=float(d["expires_at"]),
            last_active_at=float(d["last_active_at"]),
            metadata=dict(d.get("metadata") or {}),
            idle_timeout_seconds=d.get("idle_timeout_seconds"),
            max_expires_at=None if d.get("max_expires_at") is None else float(d["max_expires_at"]),
        )


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    size_bytes: int
    #: Set in listings, not on upload answers.
    upload_time: Optional[float] = None

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> "StoredFile":
        upload_time = d.get("upload_time")
        return StoredFile(d["file_id"], d["filename"], d["size_bytes"], None if upload_time is None else float(upload_time))


@dataclass(frozen=True)
class WorkspaceEntry:
    """A file or directory (``kind``) under ``/workspace``; ``path`` is relative to it."""

    path: str
    kind: str
    size_bytes: int

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> "WorkspaceEntry":
        return WorkspaceEntry(d["path"], d.get("kind", "file"), d["size_bytes"])


@dataclass(frozen=True)
class StagedFile:
    """A stored file to place at ``path`` (relative to /workspace) before the code runs."""

    path: str
    file_id: str
