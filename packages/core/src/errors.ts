/**
 * Typed errors shared by every backend and the API. Each carries the HTTP status the
 * API answers with, so the route layer maps errors without knowing where they came from.
 */
export abstract class CodeInterpreterError extends Error {
  abstract readonly status: number;
  /** Stable machine-readable code, e.g. for logs and metrics. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** 404: the session does not exist, is gone, expired, or the id is not a session id. */
export class SessionNotFoundError extends CodeInterpreterError {
  readonly status = 404;
  readonly code = "session_not_found";
  constructor(readonly sessionId: string) {
    super(`session ${JSON.stringify(sessionId)} not found`);
  }
}

/** 404: some other named thing (a file id, a path in a workspace) does not exist. */
export class NotFoundError extends CodeInterpreterError {
  readonly status = 404;
  readonly code = "not_found";
}

/** 501: the configured backend cannot do this. */
export class NotSupportedError extends CodeInterpreterError {
  readonly status = 501;
  readonly code = "not_supported";
}

/** 503: the backend (Docker daemon, Kubernetes API) does not answer. */
export class BackendUnavailableError extends CodeInterpreterError {
  readonly status = 503;
  readonly code = "backend_unavailable";
}

/** 422: well-formed input whose fields are not acceptable. */
export class ValidationError extends CodeInterpreterError {
  readonly status = 422;
  readonly code = "validation_error";
}

/** 413: a body or file over its size limit. */
export class PayloadTooLargeError extends CodeInterpreterError {
  readonly status = 413;
  readonly code = "payload_too_large";
}

/** 429: a capacity limit (e.g. MAX_SESSIONS) is reached. */
export class CapacityError extends CodeInterpreterError {
  readonly status = 429;
  readonly code = "capacity_reached";
}

/** 409: the request conflicts with what is there (e.g. a write through a symlink or onto a directory). */
export class ConflictError extends CodeInterpreterError {
  readonly status = 409;
  readonly code = "conflict";
}

/**
 * 409: the session exists but cannot start another process (its pids limit is used up, e.g.
 * by a fork bomb left running). The session stays listable, inspectable and deletable.
 */
export class SessionExhaustedError extends CodeInterpreterError {
  readonly status = 409;
  readonly code = "session_exhausted";
  constructor(
    readonly sessionId: string,
    options?: { cause?: unknown },
  ) {
    super(
      `session ${JSON.stringify(sessionId)} has no free process slots (its programs use all of its ` +
        `process limit): end them, or delete the session`,
      options,
    );
  }
}

/**
 * 500/502-class: the backend answered but the operation failed (image missing, pod could not
 * be scheduled, staging failed). The message is safe to show to callers.
 */
export class BackendError extends CodeInterpreterError {
  readonly status = 500;
  readonly code = "backend_error";
}

export function isCodeInterpreterError(err: unknown): err is CodeInterpreterError {
  return err instanceof CodeInterpreterError;
}
