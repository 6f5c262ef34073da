/**
 * Running code: one exec of the runner carries the program's output, the collected files and
 * the exit record; timeouts, aborts, the backstop and protocol breaches end it the same way on
 * every platform.
 */
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { ExecRequest, ExecResult, ProducedFile } from "../backend.js";
import { BackendError } from "../errors.js";
import {
  KILL_DRAIN_MS,
  MAX_COLLECTED_FILES,
  MAX_FRAME_BYTES,
  RUNNER_BACKSTOP_MS,
  executorCommands,
  runnerInput,
} from "../executor-scripts.js";
import { OutputLimiter } from "../output.js";
import { extractFiles } from "./extract-files.js";
import {
  FRAME_EXIT,
  FRAME_FILES,
  FRAME_STDERR,
  FRAME_STDOUT,
  FrameParser,
  ProtocolViolation,
  maxRunnerStreamBytes,
  parseExitRecord,
  type ExitRecord,
} from "./runner-stream.js";
import { execCapture, type ExecTransport } from "./transport.js";

export interface RunOptions {
  cpuSeconds: number;
  /**
   * How to stop the program when the caller aborts, or when the runner itself does not answer
   * (backstop). Sessions kill the program's processes inside the container; one-shot runs
   * remove the whole container. Defaults to the in-container kill.
   */
  kill?: (execId: string) => Promise<void>;
  /** Per-file cap for collected files (the file store's limit). */
  maxFileBytes: number;
  /** Called once the program is running (e.g. to record session activity in parallel). */
  onStarted?: () => void;
}

/**
 * Runs code through the runner script with every rule of the REST contract applied: one exec
 * carries the program's output, the collected files and the exit record. Everything that
 * comes back is treated as hostile: the limits the runner applies are applied again here.
 */
export async function runCode(t: ExecTransport, req: ExecRequest, opts: RunOptions): Promise<ExecResult> {
  const execId = randomUUID();
  const sink = req.collectFiles;
  // One byte past the limit lets the limiter see (and mark) the cut.
  const forwardLimitBytes = req.maxOutputBytes + 1;
  const cmd = executorCommands.run({
    execId,
    language: req.language,
    cpuSeconds: opts.cpuSeconds,
    lastLineInteractive: req.language === "python" && req.lastLineInteractive !== false,
    collect: !!sink,
    timeoutMs: req.timeoutMs,
    forwardLimitBytes,
    maxFiles: MAX_COLLECTED_FILES,
    maxFileBytes: opts.maxFileBytes,
  });
  const out = new OutputLimiter(req.maxOutputBytes);
  const err = new OutputLimiter(req.maxOutputBytes);
  const started = Date.now();
  if (req.signal?.aborted) throw new BackendError("the request was cancelled");
  const proc = await t.exec(cmd, { stdin: runnerInput(req.code, req.stdin) });
  opts.onStarted?.();

  let exit: ExitRecord | null = null;
  let tarStream: PassThrough | null = null;
  let collecting: Promise<ProducedFile[]> | null = null;
  const runnerErr: Buffer[] = [];
  let runnerErrBytes = 0;
  let onViolation: (reason: string) => void = () => undefined;
  const violated = new Promise<"violation">((resolve) => {
    onViolation = () => resolve("violation");
  });
  const emit = (limiter: OutputLimiter, stream: "stdout" | "stderr", b: Buffer) => {
    const text = limiter.push(b);
    if (text && req.onOutput) req.onOutput({ stream, data: text });
  };
  const parser: FrameParser = new FrameParser(
    (kind, payload) => {
      if (kind === FRAME_STDOUT) emit(out, "stdout", payload);
      else if (kind === FRAME_STDERR) emit(err, "stderr", payload);
      else if (kind === FRAME_FILES) {
        if (!sink) {
          parser.fail("files were sent but none were asked for");
          return;
        }
        if (!tarStream) {
          tarStream = new PassThrough();
          tarStream.on("error", () => undefined); // the extractor reports what went wrong
          collecting = extractFiles(tarStream, sink, {
            maxFiles: MAX_COLLECTED_FILES,
            maxFileBytes: opts.maxFileBytes,
          });
          collecting.catch((e: unknown) => {
            if (e instanceof ProtocolViolation) parser.fail(e.message);
          });
        }
        if (tarStream.destroyed) return;
        if (!tarStream.write(payload)) {
          proc.stdout.pause();
          tarStream.once("drain", () => proc.stdout.resume());
        }
      } else if (kind === FRAME_EXIT) {
        exit = parseExitRecord(payload);
        if (!exit) parser.fail("a malformed exit record");
      }
    },
    {
      maxFrameBytes: MAX_FRAME_BYTES,
      maxTotalBytes: maxRunnerStreamBytes(
        forwardLimitBytes,
        sink ? { count: MAX_COLLECTED_FILES, maxFileBytes: opts.maxFileBytes } : null,
      ),
    },
    (reason) => onViolation(reason),
  );
  proc.stdout.on("data", (b: Buffer) => parser.push(b));
  proc.stderr.on("data", (b: Buffer) => {
    // The runner's own complaints (never the program's output): kept for diagnostics.
    if (runnerErrBytes < 8192) runnerErr.push(b);
    runnerErrBytes += b.length;
  });
  proc.stdout.on("error", () => undefined);
  proc.stderr.on("error", () => undefined);

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<"backstop" | "abort">((resolve) => {
    timer = setTimeout(() => resolve("backstop"), req.timeoutMs + RUNNER_BACKSTOP_MS);
    if (req.signal) {
      onAbort = () => resolve("abort");
      req.signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  const outcome = await Promise.race([proc.done.then(() => "done" as const), stop, violated]);
  clearTimeout(timer);
  if (onAbort) req.signal?.removeEventListener("abort", onAbort);

  if (outcome !== "done") {
    const kill =
      opts.kill ?? ((id: string) => execCapture(t, executorCommands.kill(id)).then(() => undefined));
    await kill(execId).catch(() => undefined);
    // Let the output already produced drain, but never wait on a stray process holding the pipe.
    if (outcome !== "violation")
      await Promise.race([proc.done.catch(() => null), delay(KILL_DRAIN_MS, undefined, { ref: false })]);
    proc.destroy();
  }
  (tarStream as PassThrough | null)?.end();
  let files: ProducedFile[] = [];
  if (collecting) {
    try {
      files = await (collecting as Promise<ProducedFile[]>);
    } catch (e) {
      if (outcome === "done" && parser.violation === null)
        throw new BackendError(`collecting output files failed: ${(e as Error).message}`);
    }
  }
  if (parser.violation !== null) {
    // Forged or corrupt: keep the output already checked, drop the files and the exit record.
    const note = `[code-interpreter] the run was stopped: its output stream broke the protocol (${parser.violation})`;
    return {
      stdout: out.text(),
      stderr: err.text() + (err.text() ? "\n" : "") + note,
      exitCode: null,
      timedOut: false,
      durationMs: Date.now() - started,
      files: [],
    };
  }
  const record = exit as ExitRecord | null;
  if (outcome === "done" && !record) {
    const why = Buffer.concat(runnerErr).toString("utf8").trim().slice(0, 2000);
    // The program (or the platform) killed the runner: report it like a crashed program.
    return {
      stdout: out.text(),
      stderr: err.text() + (why ? `${err.text() ? "\n" : ""}${why}` : ""),
      exitCode: null,
      timedOut: false,
      durationMs: Date.now() - started,
      files,
    };
  }
  // Stopped by us (abort, backstop): killed, whatever the runner managed to report meanwhile.
  const killed = outcome === "abort" || outcome === "backstop";
  return {
    stdout: out.text(),
    stderr: err.text(),
    exitCode: record && !killed ? record.exit_code : null,
    timedOut: record && !killed ? record.timed_out : outcome === "backstop",
    durationMs: record ? record.duration_ms : Date.now() - started,
    files,
  };
}
