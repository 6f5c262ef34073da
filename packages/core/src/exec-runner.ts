/**
 * Execution semantics shared by every backend, on top of one primitive: "run this argv in
 * the container/pod with this stdin" (ExecTransport). Timeouts, kills, output limits,
 * staging tars and file collection behave the same on Docker and Kubernetes because they
 * are implemented once, here. No platform I/O happens in this module.
 */
import { randomUUID } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type {
  ExecRequest,
  ExecResult,
  ProducedFile,
  StagedFile,
  WorkspaceEntry,
  SessionFile,
} from "./backend.js";
import { BackendError, ConflictError, NotFoundError, PayloadTooLargeError } from "./errors.js";
import { LengthPrefixedReader } from "./frame-reader.js";
import {
  KILL_DRAIN_MS,
  RUNNER_BACKSTOP_MS,
  MAX_COLLECTED_FILES,
  MAX_FRAME_BYTES,
  MAX_LISTED_ENTRIES,
  WORKSPACE_EXIT,
  executorCommands,
  runnerInput,
  workspaceInput,
} from "./executor-scripts.js";
import { assertSafeWorkspacePath, isSafeWorkspacePath, workspacePathProblem } from "./paths.js";
import { OutputLimiter } from "./output.js";

export interface ExecOptions {
  stdin?: Buffer | Readable | null;
}

export interface ExecProcess {
  stdout: Readable;
  stderr: Readable;
  /** Exit code once the process has ended and its output is drained; null when unknown. */
  done: Promise<number | null>;
  /** Stops reading and releases the connection; the process itself may keep running. */
  destroy(): void;
}

export interface ExecTransport {
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecProcess>;
}

export interface CapturedExec {
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs a command and buffers its output (bounded): for the backends' small helper commands. */
export async function execCapture(
  t: ExecTransport,
  cmd: string[],
  opts: ExecOptions & { maxBytes?: number } = {},
): Promise<CapturedExec> {
  const p = await t.exec(cmd, opts);
  return capture(p, opts.maxBytes ?? 16 * 1024 * 1024);
}

/** Buffers a running command's output, at most `max` bytes of each stream. */
function capture(p: ExecProcess, max: number): Promise<CapturedExec> {
  const collect = (s: Readable) =>
    new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      let n = 0;
      s.on("data", (b: Buffer) => {
        if (n < max) parts.push(b);
        n += b.length;
      });
      s.on("end", () => resolve(Buffer.concat(parts).subarray(0, max)));
      s.on("close", () => resolve(Buffer.concat(parts).subarray(0, max)));
      s.on("error", reject);
    });
  return Promise.all([collect(p.stdout), collect(p.stderr), p.done]).then(([stdout, stderr, exitCode]) => ({
    exitCode,
    stdout,
    stderr,
  }));
}

/** A tar stream of the staged files (regular files, mode 0644; parent dirs are implied). */
export function packFiles(files: readonly StagedFile[]): Readable {
  const pack = tar.pack();
  // tar-stream speaks streamx; hand callers a plain Node stream. The archive is padded to a
  // whole tar record (as GNU tar writes it): GNU tar only stops reading at a record boundary,
  // so an unpadded archive would hang on transports that cannot half-close stdin (k8s exec v4).
  const out = Readable.from(padToTarRecord(pack as AsyncIterable<Buffer>));
  // A file can fail (open rejects, its stream errors) before anyone reads `out`: report the
  // error on `out` itself, never as an unhandled 'error' on the pack, and never leave `out` open.
  pack.on("error", () => undefined);
  void (async () => {
    try {
      for (const f of files) {
        const src = await f.open();
        const entry = pack.entry({
          name: f.path,
          size: f.size,
          mode: 0o644,
          type: "file",
          mtime: new Date(),
        });
        await pipeline(src, entry);
      }
      pack.finalize();
    } catch (err) {
      out.destroy(err as Error);
      pack.destroy(err as Error);
    }
  })();
  return out;
}

/** GNU tar's default record size (blocking factor 20 × 512). */
export const TAR_RECORD_BYTES = 10240;

async function* padToTarRecord(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    yield chunk;
  }
  const pad = (TAR_RECORD_BYTES - (n % TAR_RECORD_BYTES)) % TAR_RECORD_BYTES;
  if (pad > 0) yield Buffer.alloc(pad);
}

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
function watchHelper(
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
function workspaceError(code: number | null, stderr: Buffer, what: string): Error {
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

/**
 * Writes the files into /workspace through workspace.py: each path walked without following
 * symlinks, each file written to a temporary name and renamed once complete. Throws
 * ConflictError (a symlink or non-directory on the path), PayloadTooLargeError (the file's
 * limit, or the workspace is full) or BackendError; cleanup is the caller's.
 */
export async function stageFiles(
  t: ExecTransport,
  files: readonly StagedFile[],
  opts: WorkspaceOpOptions & { maxFileBytes?: number } = {},
): Promise<void> {
  if (files.length === 0) return;
  for (const f of files) assertSafeWorkspacePath(f.path);
  const pack = packFiles(files);
  let packError: Error | null = null;
  pack.on("error", (e) => (packError = e));
  const id = randomUUID();
  const maxFileBytes = opts.maxFileBytes ?? Math.max(DEFAULT_MAX_FILE_BYTES, ...files.map((f) => f.size));
  const proc = await t.exec(executorCommands.workspace(id, ["write", maxFileBytes]), {
    stdin: workspaceInput(pack),
  });
  let stopError: Error | null = null;
  let onStop: (e: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => {
    onStop = (e) => {
      stopError = e;
      reject(e);
    };
  });
  stopped.catch(() => undefined);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const defaultMs = WORKSPACE_STAGE_TIMEOUT_MS + Math.ceil((bytes / STAGE_MIN_BYTES_PER_SECOND) * 1000);
  const release = watchHelper(t, id, proc, "staging files", opts, defaultMs, onStop);
  try {
    const r = await Promise.race([capture(proc, 64 * 1024), stopped]);
    if (stopError) throw stopError;
    if (packError) throw new BackendError(`staging files failed: ${(packError as Error).message}`);
    if (r.exitCode !== 0) throw workspaceError(r.exitCode, r.stderr, "writing into /workspace");
  } finally {
    release();
  }
}

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

/** Frame kinds written by the runner (see python/runner.py). */
const FRAME_STDOUT = 0x31; // "1"
const FRAME_STDERR = 0x32; // "2"
const FRAME_FILES = 0x46; // "F"
const FRAME_EXIT = 0x58; // "X"
const FRAME_KINDS = new Set([FRAME_STDOUT, FRAME_STDERR, FRAME_FILES, FRAME_EXIT]);
const MAX_EXIT_RECORD_BYTES = 4096;
const FRAME_HEADER_BYTES = 5;

interface ExitRecord {
  exit_code: number | null;
  timed_out: boolean;
  duration_ms: number;
}

/** What comes out of the executor broke the runner's protocol: it is forged or corrupt. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

export interface FrameLimits {
  /** Largest payload of one frame (the runner writes at most MAX_FRAME_BYTES). */
  maxFrameBytes: number;
  /** Largest number of bytes the whole stream may carry, framing included. */
  maxTotalBytes: number;
}

/**
 * Splits the runner's stdout into frames (kind byte, 4-byte big-endian length, payload), in
 * linear time and bounded memory: every byte is copied at most once, a frame may not be
 * longer than `maxFrameBytes`, the stream not longer than `maxTotalBytes`, the kind must be
 * known, and the exit record comes exactly once, last. The first breach is final: `violation`
 * says what, and nothing more is parsed.
 */
export class FrameParser extends LengthPrefixedReader {
  private kind = 0;
  private total = 0;
  private exitSeen = false;

  constructor(
    private readonly onFrame: (kind: number, payload: Buffer) => void,
    private readonly limits: FrameLimits,
    onViolation: (reason: string) => void = () => undefined,
  ) {
    super(FRAME_HEADER_BYTES, onViolation);
  }

  push(chunk: Buffer): void {
    if (this.violation !== null || chunk.length === 0) return;
    this.total += chunk.length;
    if (this.total > this.limits.maxTotalBytes) {
      this.fail(`the stream is longer than ${this.limits.maxTotalBytes} bytes`);
      return;
    }
    this.feed(chunk);
  }

  protected override beforeFrame(): string | null {
    return this.exitSeen ? "data after the exit record" : null;
  }

  protected readHeader(head: Buffer): number | string {
    this.kind = head[0] as number;
    const need = head.readUInt32BE(1);
    if (!FRAME_KINDS.has(this.kind)) return `unknown frame kind 0x${this.kind.toString(16)}`;
    const max = this.kind === FRAME_EXIT ? MAX_EXIT_RECORD_BYTES : this.limits.maxFrameBytes;
    if (need > max) return `a frame of ${need} bytes (at most ${max})`;
    return need;
  }

  protected onPayload(payload: Buffer): void {
    if (this.kind === FRAME_EXIT) this.exitSeen = true;
    this.onFrame(this.kind, payload);
  }
}

/** Upper bound of a genuine runner stream for these limits (framing overhead included). */
export function maxRunnerStreamBytes(
  forwardLimitBytes: number,
  files: { count: number; maxFileBytes: number } | null,
): number {
  // Output frames carry at least one byte each: at most 6 bytes on the wire per output byte.
  const output = 2 * forwardLimitBytes * (FRAME_HEADER_BYTES + 1);
  // A tar entry: its bytes padded to 512, a header and a PAX header (long names) of up to 3 KiB;
  // then the end-of-archive records. Framed in pieces of 10 KiB at least (tarfile's records).
  const tar = files ? files.count * (files.maxFileBytes + 512 + 4096) + 2 * 10240 : 0;
  const tarFramed = tar + Math.ceil(tar / 512) * FRAME_HEADER_BYTES;
  return output + tarFramed + FRAME_HEADER_BYTES + MAX_EXIT_RECORD_BYTES + 1024;
}

function parseExitRecord(payload: Buffer): ExitRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString("utf8"));
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const r = v as Record<string, unknown>;
  const code = r.exit_code;
  if (!(code === null || (Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 512)))
    return null;
  if (typeof r.timed_out !== "boolean") return null;
  if (typeof r.duration_ms !== "number" || !Number.isFinite(r.duration_ms) || r.duration_ms < 0) return null;
  return { exit_code: code as number | null, timed_out: r.timed_out, duration_ms: Math.round(r.duration_ms) };
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
    if (outcome !== "violation") await Promise.race([proc.done.catch(() => null), delay(KILL_DRAIN_MS)]);
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

/**
 * Hands each collected file to the sink, enforcing in TypeScript what the runner promises:
 * at most `maxFiles` entries, each a regular file no larger than `maxFileBytes`, at a safe
 * workspace path. A breach rejects with ProtocolViolation.
 */
export async function extractFiles(
  tarBytes: Readable,
  sink: NonNullable<ExecRequest["collectFiles"]>,
  limits: { maxFiles: number; maxFileBytes: number },
): Promise<ProducedFile[]> {
  const files: ProducedFile[] = [];
  const seen = new Set<string>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    stream.on("error", () => undefined); // the pipeline reports it
    const reject = (why: string) => {
      stream.resume();
      next(new ProtocolViolation(why));
    };
    if (header.type !== "file") return reject(`a collected entry of type ${String(header.type)}`);
    const problem = workspacePathProblem(header.name);
    if (problem !== null) return reject(`a collected file at an unsafe path (${problem})`);
    if (seen.has(header.name)) return reject("a collected file sent twice");
    if (files.length >= limits.maxFiles) return reject(`more than ${limits.maxFiles} collected files`);
    const size = header.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0 || size > limits.maxFileBytes)
      return reject(`a collected file larger than ${limits.maxFileBytes} bytes`);
    seen.add(header.name);
    sink({ path: header.name, size, content: Readable.from(stream) })
      .then((fileId) => {
        files.push({ path: header.name, kind: "file", fileId, sizeBytes: size });
        stream.resume(); // in case the sink did not read everything
        next();
      })
      .catch((e: unknown) => {
        stream.resume();
        next(e as Error);
      });
  });
  await pipeline(tarBytes, extract);
  return files;
}

/** A listing row as workspace.py prints it; anything else is dropped. */
function listingRow(v: unknown): WorkspaceEntry | null {
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [path, kind, size] = v as [unknown, unknown, unknown];
  if (!isSafeWorkspacePath(path)) return null;
  if (kind !== "file" && kind !== "directory") return null;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return null;
  return { path, kind, sizeBytes: kind === "directory" ? 0 : size };
}

/** Lists /workspace (files and directories, sorted by path), within a deadline. */
export async function listWorkspace(
  t: ExecTransport,
  opts: WorkspaceOpOptions = {},
): Promise<WorkspaceEntry[]> {
  const id = randomUUID();
  const proc = await t.exec(executorCommands.workspace(id, ["list", MAX_LISTED_ENTRIES]), {
    stdin: workspaceInput(),
  });
  let onStop: (e: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (onStop = reject));
  stopped.catch(() => undefined);
  const release = watchHelper(t, id, proc, "listing /workspace", opts, WORKSPACE_LIST_TIMEOUT_MS, onStop);
  let r: CapturedExec;
  try {
    // Paths are at most 1 KiB, rows a few bytes more: 10 000 rows fit in 12 MiB.
    r = await Promise.race([capture(proc, 12 * 1024 * 1024), stopped]);
  } finally {
    release();
  }
  if (r.exitCode !== 0) throw workspaceError(r.exitCode, r.stderr, "listing /workspace");
  let rows: unknown;
  try {
    rows = JSON.parse(r.stdout.toString("utf8") || "[]");
  } catch {
    throw new BackendError("listing /workspace failed: the listing is malformed");
  }
  if (!Array.isArray(rows)) throw new BackendError("listing /workspace failed: the listing is malformed");
  const entries: WorkspaceEntry[] = [];
  const seen = new Set<string>();
  for (const row of rows.slice(0, MAX_LISTED_ENTRIES)) {
    const e = listingRow(row);
    if (e && !seen.has(e.path)) {
      seen.add(e.path);
      entries.push(e);
    }
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Streams one regular file out of /workspace. NotFoundError when missing, ConflictError when
 * not a regular file (a FIFO, a device, a symlink) — at once, never blocking —,
 * PayloadTooLargeError above `maxBytes`. The deadline covers the time to the first byte; the
 * signal, the whole transfer. The body carries exactly the announced size, or fails.
 */
export async function readWorkspaceFile(
  t: ExecTransport,
  path: string,
  opts: WorkspaceOpOptions & { maxBytes?: number } = {},
): Promise<SessionFile> {
  assertSafeWorkspacePath(path);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  const id = randomUUID();
  const proc = await t.exec(executorCommands.workspace(id, ["read", path, maxBytes]), {
    stdin: workspaceInput(),
  });
  const errParts: Buffer[] = [];
  let errBytes = 0;
  proc.stderr.on("data", (b: Buffer) => {
    if (errBytes < 4096) errParts.push(b);
    errBytes += b.length;
  });
  proc.stderr.on("error", () => undefined);
  const what = `reading ${JSON.stringify(path)}`;
  return new Promise<SessionFile>((resolve, reject) => {
    let header: Buffer = Buffer.alloc(0);
    let settled = false;
    let body: PassThrough | null = null;
    let release: () => void = () => undefined;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      release();
      proc.destroy();
      reject(e);
    };
    release = watchHelper(t, id, proc, what, opts, WORKSPACE_READ_TIMEOUT_MS, (e) => {
      if (body) body.destroy(e);
      else fail(e);
    });
    const onData = (b: Buffer) => {
      if (settled) return;
      header = header.length ? Buffer.concat([header, b]) : b;
      const nl = header.indexOf(10);
      if (nl === -1) {
        if (header.length > 24) fail(new BackendError(`${what} failed: bad header`));
        return;
      }
      const text = header.subarray(0, nl).toString("latin1");
      const size = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(size) || size > maxBytes) {
        fail(new BackendError(`${what} failed: bad header`));
        return;
      }
      settled = true;
      proc.stdout.off("data", onData);
      proc.stdout.pause();
      const out = new PassThrough();
      body = out;
      let left = size;
      const take = (chunk: Buffer) => {
        if (left <= 0) return;
        const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
        left -= part.length;
        if (!out.write(part)) {
          proc.stdout.pause();
          out.once("drain", () => proc.stdout.resume());
        }
        if (left === 0) {
          out.end();
          proc.destroy();
        }
      };
      if (size === 0) {
        out.end();
        proc.destroy();
      } else take(header.subarray(nl + 1));
      proc.stdout.on("data", take);
      proc.stdout.resume();
      // Header received: the deadline is met; from now on only the signal (client gone) stops it.
      if (opts.signal) {
        const signal = opts.signal;
        const onAbort = () => out.destroy(new BackendError(`${what} was cancelled`));
        signal.addEventListener("abort", onAbort, { once: true });
        out.on("close", () => signal.removeEventListener("abort", onAbort));
      }
      release();
      void proc.done
        .catch(() => null)
        .finally(() => {
          if (left > 0) out.destroy(new BackendError(`${what} failed: the file ended early`));
        });
      out.on("close", () => {
        if (left > 0) {
          proc.destroy();
          void execCapture(t, executorCommands.kill(id)).catch(() => undefined);
        }
      });
      resolve({ sizeBytes: size, content: out });
    };
    proc.stdout.on("data", onData);
    proc.stdout.on("error", (e) => fail(e));
    proc.done.then(
      (code) => {
        if (settled) return;
        fail(workspaceError(code, Buffer.concat(errParts), what));
      },
      (e: unknown) => fail(e as Error),
    );
  });
}

/** Reads a Readable of known small size fully (helper for tests and adapters). */
export async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(parts);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
