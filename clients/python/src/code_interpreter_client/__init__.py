"""Python client for the code-interpreter REST API (stdlib + requests)."""

from .client import CodeInterpreter, Files, Session, SessionFiles, Sessions
from .errors import (
    AuthError,
    BadRequestError,
    CodeInterpreterError,
    ConflictError,
    ConnectionFailedError,
    NotFoundError,
    NotImplementedByServerError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    StreamError,
    UnavailableError,
    ValidationError,
)
from .types import Execution, ProducedFile, SessionInfo, StagedFile, StoredFile, WorkspaceEntry

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BadRequestError",
    "CodeInterpreter",
    "CodeInterpreterError",
    "ConflictError",
    "ConnectionFailedError",
    "Execution",
    "Files",
    "NotFoundError",
    "NotImplementedByServerError",
    "PayloadTooLargeError",
    "ProducedFile",
    "RateLimitError",
    "ServerError",
    "Session",
    "SessionFiles",
    "SessionInfo",
    "Sessions",
    "StagedFile",
    "StoredFile",
    "StreamError",
    "UnavailableError",
    "ValidationError",
    "WorkspaceEntry",
]
