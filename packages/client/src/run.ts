/**
 * Running code: the options of `execute`, `run` and `bash`, their request bodies (typed by the
 * OpenAPI document), and the choice between the JSON answer and the SSE stream.
 */
import { readExecutionStream, type OutputCallbacks } from "./sse.js";
import { toExecution, toWireFiles, type Execution, type StagedFile } from "./types.js";
import type { RequestJson, Schemas } from "./wire.js";

export interface RequestOptions {
  /**
   * Cancels the request (and, server-side, the run: a disconnect kills it).
   * @default undefined
   */
  signal?: AbortSignal | undefined;
}

export interface BashOptions extends OutputCallbacks, RequestOptions {
  /**
   * Run time limit in milliseconds (at most the server's `MAX_EXEC_TIMEOUT_MS`).
   * @default undefined (the server's `DEFAULT_EXEC_TIMEOUT_MS`)
   */
  timeoutMs?: number | undefined;
  /**
   * Text given to the program's stdin.
   * @default undefined (empty stdin)
   */
  stdin?: string | undefined;
}

export interface RunOptions extends BashOptions {
  /**
   * A bare expression on the last line prints its value, as in a REPL.
   * @default true (the server's default)
   */
  lastLineInteractive?: boolean | undefined;
}

export interface SessionRunOptions extends RunOptions {
  /**
   * Clear the session's Python state (a fresh interpreter) before running; the result's
   * `stateReset` then says so.
   * @default false
   */
  reset?: boolean | undefined;
}

export interface ExecuteOptions extends RunOptions {
  /**
   * Files from the file store to place in the workspace first.
   * @default []
   */
  files?: StagedFile[] | undefined;
}

export function executeBody(code: string, opts: ExecuteOptions): RequestJson<"execute"> {
  return {
    code,
    timeout_ms: opts.timeoutMs,
    stdin: opts.stdin,
    last_line_interactive: opts.lastLineInteractive,
    files: toWireFiles(opts.files),
  };
}

export function sessionExecuteBody(code: string, opts: SessionRunOptions): RequestJson<"sessionExecute"> {
  return {
    code,
    timeout_ms: opts.timeoutMs,
    stdin: opts.stdin,
    last_line_interactive: opts.lastLineInteractive,
    reset: opts.reset,
  };
}

export function bashBody(cmd: string, opts: BashOptions): RequestJson<"sessionBash"> {
  return { cmd, timeout_ms: opts.timeoutMs, stdin: opts.stdin };
}

/**
 * The run's result: from the SSE stream when an output callback is given (the callbacks see
 * the output as it is printed), else from the JSON answer.
 */
export async function runWith(
  opts: OutputCallbacks,
  json: () => Promise<Schemas["ExecResult"]>,
  stream: () => Promise<Response>,
): Promise<Execution> {
  if (opts.onStdout || opts.onStderr) return readExecutionStream(await stream(), opts);
  return toExecution(await json());
}
