/**
 * Maps what @kubernetes/client-node throws (ApiException with an HTTP code, node-fetch
 * system errors, WebSocket handshake errors) onto the typed errors of core.
 */
import { ApiException } from "@kubernetes/client-node";
import { BackendError, BackendUnavailableError, isCodeInterpreterError } from "@code-interpreter/core";

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** The HTTP status of a Kubernetes API error, or null for transport-level failures. */
export function httpStatusOf(err: unknown): number | null {
  if (err instanceof ApiException) return err.code;
  const msg = messageOf(err);
  const m = /Unexpected server response: (\d{3})/.exec(msg);
  return m ? Number(m[1]) : null;
}

export function isNotFound(err: unknown): boolean {
  return httpStatusOf(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return httpStatusOf(err) === 409;
}

function errnoOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { error?: unknown; cause?: unknown }).error ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (err && typeof err === "object") {
    const m = (err as { message?: unknown }).message;
    if (typeof m === "string" && m) return m;
    const inner = (err as { error?: unknown }).error;
    if (inner && inner !== err) return messageOf(inner);
  }
  return String(err);
}

/** The `message` of the Status object in an ApiException body, when there is one. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        return body.slice(0, 500) || `HTTP ${err.code}`;
      }
    }
    if (
      parsed &&
      typeof parsed === "object" &&
      typeof (parsed as { message?: unknown }).message === "string"
    ) {
      return (parsed as { message: string }).message;
    }
    return `HTTP ${err.code}`;
  }
  return messageOf(err);
}

/** True for "the API server did not answer" (as opposed to "it answered no"). */
export function isUnreachable(err: unknown): boolean {
  const code = errnoOf(err);
  if (code && NETWORK_CODES.has(code)) return true;
  const type = (err as { type?: unknown } | null)?.type;
  if (type === "system" || type === "request-timeout") return true;
  const status = httpStatusOf(err);
  return status === 502 || status === 503 || status === 504;
}

/** Converts any error from a Kubernetes call into a core error; `what` names the operation. */
export function toCoreError(err: unknown, what: string): Error {
  if (isCodeInterpreterError(err)) return err;
  if (isUnreachable(err)) {
    return new BackendUnavailableError(
      `Kubernetes API unreachable while trying to ${what}: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const status = httpStatusOf(err);
  if (status === 429) {
    return new BackendUnavailableError(`Kubernetes API is throttling requests (${what})`, { cause: err });
  }
  if (status === 401 || status === 403) {
    return new BackendError(
      `Kubernetes API refused to ${what} (HTTP ${status}): ${apiMessage(err)}; check the service account's Role`,
      { cause: err },
    );
  }
  if (status !== null) {
    return new BackendError(`Kubernetes API failed to ${what} (HTTP ${status}): ${apiMessage(err)}`, {
      cause: err,
    });
  }
  return new BackendError(`failed to ${what}: ${messageOf(err)}`, { cause: err });
}
