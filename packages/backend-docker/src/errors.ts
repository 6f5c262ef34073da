/**
 * Maps what dockerode throws (Node system errors, HTTP status errors from the engine,
 * aborted requests) onto core's typed errors, so no raw dockerode error leaves the package.
 */
import {
  BackendError,
  BackendUnavailableError,
  SessionNotFoundError,
  isCodeInterpreterError,
  type CodeInterpreterError,
} from "@code-interpreter/core";

/** The command that builds the executor image without a registry (shown when it is missing). */
export const BUILD_IMAGE_HINT = "bash images/executor/build-offline.sh";

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EACCES",
  "EPERM",
  "ETIMEDOUT",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENOTSOCK",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

interface DockerodeLikeError {
  code?: unknown;
  statusCode?: unknown;
  name?: unknown;
  message?: unknown;
  json?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

function asObj(err: unknown): DockerodeLikeError {
  return err && typeof err === "object" ? (err as DockerodeLikeError) : {};
}

/** HTTP status from the engine, or undefined for non-HTTP errors. */
export function engineStatus(err: unknown): number | undefined {
  const s = asObj(err).statusCode;
  return typeof s === "number" ? s : undefined;
}

/** The engine's own message (`{"message": ...}` body) or the error's message. */
export function engineMessage(err: unknown): string {
  const e = asObj(err);
  const json = e.json;
  if (json && typeof json === "object" && !Buffer.isBuffer(json)) {
    const m = (json as { message?: unknown }).message;
    if (typeof m === "string" && m) return m;
  }
  if (typeof e.message === "string") return e.message.trim();
  return String(err);
}

export function isNotFound(err: unknown): boolean {
  return engineStatus(err) === 404;
}

/** 404 from the archive API for a path that does not exist (the container itself does). */
export function isMissingPath(err: unknown): boolean {
  return engineStatus(err) === 404 && /could not find the file/i.test(engineMessage(err));
}

/** 409 "removal of container ... is already in progress" (another process is deleting it). */
export function isRemovalInProgress(err: unknown): boolean {
  return engineStatus(err) === 409 && /already in progress/i.test(engineMessage(err));
}

/** 409 container not running / paused, e.g. exec on a session whose keeper just ended it. */
export function isNotRunning(err: unknown): boolean {
  return engineStatus(err) === 409 && /not running|is paused|restarting/i.test(engineMessage(err));
}

export function isConnectionError(err: unknown): boolean {
  const e = asObj(err);
  if (typeof e.code === "string" && CONNECTION_CODES.has(e.code) && engineStatus(err) === undefined)
    return true;
  if (e.name === "AbortError" || e.code === "ABORT_ERR") return true;
  if (e.name === "TimeoutError") return true;
  return (
    typeof e.message === "string" && /socket hang up/i.test(e.message) && engineStatus(err) === undefined
  );
}

export function isMissingImage(err: unknown): boolean {
  return engineStatus(err) === 404 && /no such image/i.test(engineMessage(err));
}

/**
 * Converts any error into a CodeInterpreterError. Typed errors pass through unchanged;
 * `what` names the operation for the message ("creating the session container").
 */
export function mapDockerError(err: unknown, what: string, image?: string): CodeInterpreterError {
  if (isCodeInterpreterError(err)) return err;
  if (isConnectionError(err)) {
    const e = asObj(err);
    const detail =
      e.name === "AbortError" || e.name === "TimeoutError" ? "no answer in time" : engineMessage(err);
    return new BackendUnavailableError(`the Docker engine is unreachable while ${what}: ${detail}`, {
      cause: err,
    });
  }
  if (isMissingImage(err)) {
    return new BackendError(
      `the executor image ${image ? JSON.stringify(image) + " " : ""}is missing on the Docker engine; ` +
        `build it with \`${BUILD_IMAGE_HINT}\``,
      { cause: err },
    );
  }
  const status = engineStatus(err);
  const msg = engineMessage(err).replace(/^\(HTTP code \d+\)\s*/, "");
  return new BackendError(`Docker ${what} failed${status ? ` (HTTP ${status})` : ""}: ${msg.slice(0, 500)}`, {
    cause: err,
  });
}

/** As mapDockerError, but an engine "no such container"/"not running" means the session is gone. */
export function mapSessionError(err: unknown, sessionId: string, what: string): CodeInterpreterError {
  if (!isCodeInterpreterError(err) && !isMissingPath(err) && (isNotFound(err) || isNotRunning(err)))
    return new SessionNotFoundError(sessionId);
  return mapDockerError(err, what);
}
