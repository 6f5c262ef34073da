/**
 * What the workspace operations (stage, list, read) share: their deadlines and cancellation,
 * the kill of workspace.py inside the container when either fires, and the mapping of
 * workspace.py's exit codes to the typed errors a caller sees.
 */
import { BackendError, ConflictError, NotFoundError, PayloadTooLargeError } from "../errors.js";
import { WORKSPACE_EXIT, executorCommands } from "../executor-scripts.js";
import { execCapture, type ExecProcess, type ExecTransport } from "./transport.js";

/** Deadlines and cancellation for the workspace operations (list, read, stage). */
export interface WorkspaceOpOptions {
  /** Aborting ends the operation at once and kills its helper in the container. */
  signal?: AbortSignal;
  /** Deadline for the whole operation (read: until the file's first byte). */
  timeoutMs?: number;
}

export const WORKSPACE_LIST_TIMEOUT_MS = 30_000;
export const WORKSPACE_READ_TIMEOUT_MS = 30_000;
/** Staging's default deadline: this much, plus time for the bytes at STAGE_MIN_BYTES_PER_SECOND. */
export const WORKSPACE_STAGE_TIMEOUT_MS = 120_000;
/** The slowest upload (e.g. a PUT streamed from a slow client) the default deadline allows for. */
export const STAGE_MIN_BYTES_PER_SECOND = 64 * 1024;
/** Per-file limit of reads and writes when the backend names none (the default MAX_FILE_SIZE_MB). */
export const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;

/**
 * Runs one workspace helper with a deadline and an abort signal: when either fires the
 * connection is dropped and the helper is killed inside the container (by its exec id).
 * `guard` resolves with `onStop`'s error when that happens; `release` ends the watch.
 */
export function watchHelper(
  t: ExecTransport,
  id: string,
  proc: ExecProcess,
  what: string,
  opts: WorkspaceOpOptions,
  defaultTimeoutMs: number,
  onStop: (e: Error) => void,
): () => void {
  const ms = opts.timeoutMs ?? defaultTimeoutMs;
  let stopped = false;
  const stop = (e: Error) => {
    if (stopped) return;
    stopped = true;
    release();
    proc.destroy();
    void execCapture(t, executorCommands.kill(id)).catch(() => undefined);
    onStop(e);
  };
  const timer = setTimeout(
    () => stop(new BackendError(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
    ms,
  );
  timer.unref?.();
  const onAbort = () => stop(new BackendError(`${what} was cancelled`));
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const release = () => {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
  };
  if (opts.signal?.aborted) onAbort();
  return release;
}

/** The helper's complaint, made safe to show: one line, printable, bounded. */
function helperReason(stderr: Buffer): string {
  return (
    stderr
      .toString("utf8")
      .replace(/[^\x20-\x7e\u00a0-\uffff]+/g, " ")
      .trim()
      .slice(0, 300) || "no reason given"
  );
}

/** Maps workspace.py's exit code to the typed error a caller sees (4xx for their mistakes). */
export function workspaceError(code: number | null, stderr: Buffer, what: string): Error {
  const why = helperReason(stderr);
  switch (code) {
    case WORKSPACE_EXIT.missing:
      return new NotFoundError(`${what}: no such file`);
    case WORKSPACE_EXIT.refused:
      // A read of something that is not a regular file: there is no file to give (404).
      if (what.startsWith("reading")) return new NotFoundError(`${what}: ${why}`);
      return new ConflictError(`${what}: refused: ${why}`);
    case WORKSPACE_EXIT.tooLarge:
      return new PayloadTooLargeError(`${what}: ${why}`);
    case WORKSPACE_EXIT.noSpace:
      return new PayloadTooLargeError(`${what}: no space left in /workspace`);
    default:
      return new BackendError(`${what} failed (exit ${code}): ${why}`);
  }
}
