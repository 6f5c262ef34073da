/**
 * Typed errors: one class per HTTP status of the contract, all extending
 * {@link CodeInterpreterError}, so callers can `catch (e) { if (e instanceof NotFoundError) ... }`.
 */

export interface ErrorInit {
  /** HTTP status; 0 when no answer was received (connection refused, reset, timed out). */
  status: number;
  /** The server's `detail` (or a description of the failure). */
  detail: string;
  /** The `X-Request-Id` of the answer, to find the request in the server's log. */
  requestId?: string | undefined;
  cause?: unknown;
}

/** Base class of every error the client throws. */
export class CodeInterpreterError extends Error {
  override readonly name: string = "CodeInterpreterError";
  readonly status: number;
  readonly detail: string;
  readonly requestId: string | undefined;

  constructor(init: ErrorInit) {
    super(init.status ? `${init.status}: ${init.detail}` : init.detail, { cause: init.cause });
    this.status = init.status;
    this.detail = init.detail;
    this.requestId = init.requestId;
  }
}

/** 400: the body could not be read (malformed JSON or multipart). */
export class BadRequestError extends CodeInterpreterError {
  override readonly name = "BadRequestError";
}
/** 401: missing or wrong API key. */
export class AuthError extends CodeInterpreterError {
  override readonly name = "AuthError";
}
/** 404: unknown, expired, foreign or malformed id, or unknown route. */
export class NotFoundError extends CodeInterpreterError {
  override readonly name = "NotFoundError";
}
/** 409: conflict. */
export class ConflictError extends CodeInterpreterError {
  override readonly name = "ConflictError";
}
/** 413: body or file too large. */
export class PayloadTooLargeError extends CodeInterpreterError {
  override readonly name = "PayloadTooLargeError";
}
/** 422: well-formed but invalid fields (unsafe path, timeout above the limit, ...). */
export class ValidationError extends CodeInterpreterError {
  override readonly name = "ValidationError";
}
/** 429: a capacity limit (e.g. `MAX_SESSIONS`) is reached; retried automatically first. */
export class RateLimitError extends CodeInterpreterError {
  override readonly name = "RateLimitError";
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  constructor(init: ErrorInit & { retryAfter?: number | undefined }) {
    super(init);
    this.retryAfter = init.retryAfter;
  }
}
/** 501: the server's backend cannot do this (e.g. no sessions). */
export class NotImplementedError extends CodeInterpreterError {
  override readonly name = "NotImplementedError";
}
/** 503: the server's backend (Docker, Kubernetes) does not answer; retried automatically first. */
export class UnavailableError extends CodeInterpreterError {
  override readonly name = "UnavailableError";
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  readonly retryAfter: number | undefined;
  constructor(init: ErrorInit & { retryAfter?: number | undefined }) {
    super(init);
    this.retryAfter = init.retryAfter;
  }
}
/** Any other 5xx. */
export class ServerError extends CodeInterpreterError {
  override readonly name = "ServerError";
}
/** No HTTP answer: connection refused or reset, DNS failure, or the request timed out. */
export class ConnectionError extends CodeInterpreterError {
  override readonly name = "ConnectionError";
}
/** A stream ended with an `error` event, or without its `result` event. */
export class StreamError extends CodeInterpreterError {
  override readonly name = "StreamError";
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into seconds, or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - now) / 1000);
}

/** The typed error for an HTTP error answer. */
export function errorForStatus(
  status: number,
  detail: string,
  requestId: string | undefined,
  retryAfter: number | undefined,
): CodeInterpreterError {
  const init = { status, detail, requestId };
  switch (status) {
    case 400:
      return new BadRequestError(init);
    case 401:
      return new AuthError(init);
    case 404:
      return new NotFoundError(init);
    case 409:
      return new ConflictError(init);
    case 413:
      return new PayloadTooLargeError(init);
    case 422:
      return new ValidationError(init);
    case 429:
      return new RateLimitError({ ...init, retryAfter });
    case 501:
      return new NotImplementedError(init);
    case 503:
      return new UnavailableError({ ...init, retryAfter });
    default:
      return status >= 500 ? new ServerError(init) : new CodeInterpreterError(init);
  }
}
