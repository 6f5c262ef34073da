"""Typed errors: one class per HTTP status of the API, all subclasses of CodeInterpreterError."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Optional


class CodeInterpreterError(Exception):
    """Base class of every error the client raises.

    ``status`` is the HTTP status (0 when no answer was received), ``detail`` the server's
    ``{"detail"}`` message, ``request_id`` the answer's ``X-Request-Id``.
    """

    def __init__(self, status: int, detail: str, request_id: Optional[str] = None) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail
        self.request_id = request_id


class BadRequestError(CodeInterpreterError):
    """400: the body could not be read."""


class AuthError(CodeInterpreterError):
    """401: missing or wrong API key."""


class NotFoundError(CodeInterpreterError):
    """404: unknown, expired, foreign or malformed id, or unknown route."""


class ConflictError(CodeInterpreterError):
    """409: conflict."""


class PayloadTooLargeError(CodeInterpreterError):
    """413: body or file too large."""


class ValidationError(CodeInterpreterError):
    """422: well-formed but invalid fields."""


class _RetryAfter(CodeInterpreterError):
    def __init__(
        self, status: int, detail: str, request_id: Optional[str] = None, retry_after: Optional[float] = None
    ) -> None:
        super().__init__(status, detail, request_id)
        #: Seconds the server asked to wait (``Retry-After``), when it said.
        self.retry_after = retry_after


class RateLimitError(_RetryAfter):
    """429: a capacity limit (e.g. MAX_SESSIONS) is reached; retried automatically first."""


class NotImplementedByServerError(CodeInterpreterError):
    """501: the server's backend cannot do this (e.g. no sessions)."""


class UnavailableError(_RetryAfter):
    """503: the server's backend does not answer; retried automatically first."""


class ServerError(CodeInterpreterError):
    """Any other 5xx."""


class ConnectionFailedError(CodeInterpreterError):
    """No HTTP answer: connection refused or reset, DNS failure, timeout (status 0)."""


class StreamError(CodeInterpreterError):
    """A stream ended with an ``error`` event, without its ``result``, or with malformed events."""


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` (delta seconds or an HTTP date) as seconds, or None."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_BY_STATUS = {
    400: BadRequestError,
    401: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    501: NotImplementedByServerError,
}


def error_for_status(
    status: int, detail: str, request_id: Optional[str], retry_after: Optional[float]
) -> CodeInterpreterError:
    if status == 429:
        return RateLimitError(status, detail, request_id, retry_after)
    if status == 503:
        return UnavailableError(status, detail, request_id, retry_after)
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(status, detail, request_id)
    if status >= 500:
        return ServerError(status, detail, request_id)
    return CodeInterpreterError(status, detail, request_id)
