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
import { BackendError, NotFoundError } from "./errors.js";
import {
  KILL_DRAIN_MS,
  RUNNER_BACKSTOP_MS,
  MAX_COLLECTED_FILES,
  MAX_LISTED_ENTRIES,
  executorCommands,
  runnerInput,
} from "./executor-scripts.js";
import { OutputLimiter } from "./output.js";

export interface ExecOptions {
  stdin?: Buffer | Readable | null;
  /** "root" only for the backend's own bookkeeping (session state); code never runs as root. */
  user?: "root";
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
  const max = opts.maxBytes ?? 16 * 1024 * 1024;
  const p = await t.exec(cmd, opts);
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
  const [stdout, stderr, exitCode] = await Promise.all([collect(p.stdout), collect(p.stderr), p.done]);
  return { exitCode, stdout, stderr };
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

/** Extracts the files into /workspace; throws BackendError (and leaves cleanup to the caller). */
export async function stageFiles(t: ExecTransport, files: readonly StagedFile[]): Promise<void> {
  if (files.length === 0) return;
  const stdin = packFiles(files);
  let packError: Error | null = null;
  stdin.on("error", (e) => (packError = e));
  const r = await execCapture(t, executorCommands.extract(), { stdin });
  if (packError) throw new BackendError(`staging files failed: ${(packError as Error).message}`);
  if (r.exitCode !== 0) {
    throw new BackendError(
      `staging files into /workspace failed (tar exit ${r.exitCode}): ${r.stderr.toString().trim().slice(0, 500)}`,
    );
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

/** Frame kinds written by the runner (see RUNNER_PY). */
const FRAME_STDOUT = 0x31; // "1"
const FRAME_STDERR = 0x32; // "2"
const FRAME_FILES = 0x46; // "F"
const FRAME_EXIT = 0x58; // "X"

interface ExitRecord {
  exit_code: number | null;
  timed_out: boolean;
  duration_ms: number;
}

/**
 * Runs code through the runner script with every rule of the REST contract applied: one exec
 * carries the program's output, the collected files and the exit record.
 */
export async function runCode(t: ExecTransport, req: ExecRequest, opts: RunOptions): Promise<ExecResult> {
  const execId = randomUUID();
  const sink = req.collectFiles;
  const cmd = executorCommands.run({
    execId,
    language: req.language,
    cpuSeconds: opts.cpuSeconds,
    lastLineInteractive: req.language === "python" && req.lastLineInteractive !== false,
    collect: !!sink,
    timeoutMs: req.timeoutMs,
    // One byte past the limit lets the limiter see (and mark) the cut.
    forwardLimitBytes: req.maxOutputBytes + 1,
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
  const emit = (limiter: OutputLimiter, stream: "stdout" | "stderr", b: Buffer) => {
    const text = limiter.push(b);
    if (text && req.onOutput) req.onOutput({ stream, data: text });
  };
  const parser = new FrameParser((kind, payload) => {
    if (kind === FRAME_STDOUT) emit(out, "stdout", payload);
    else if (kind === FRAME_STDERR) emit(err, "stderr", payload);
    else if (kind === FRAME_FILES && sink) {
      if (!tarStream) {
        tarStream = new PassThrough();
        collecting = extractFiles(tarStream, sink);
        collecting.catch(() => undefined);
      }
      if (!tarStream.write(payload)) {
        proc.stdout.pause();
        tarStream.once("drain", () => proc.stdout.resume());
      }
    } else if (kind === FRAME_EXIT) {
      try {
        exit = JSON.parse(payload.toString("utf8")) as ExitRecord;
      } catch {
        exit = null;
      }
    }
  });
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
  const outcome = await Promise.race([proc.done.then(() => "done" as const), stop]);
  clearTimeout(timer);
  if (onAbort) req.signal?.removeEventListener("abort", onAbort);

  if (outcome !== "done") {
    const kill =
      opts.kill ?? ((id: string) => execCapture(t, executorCommands.kill(id)).then(() => undefined));
    await kill(execId).catch(() => undefined);
    // Let the output already produced drain, but never wait on a stray process holding the pipe.
    await Promise.race([proc.done.catch(() => null), delay(KILL_DRAIN_MS)]);
    proc.destroy();
  }
  (tarStream as PassThrough | null)?.end();
  let files: ProducedFile[] = [];
  if (collecting) {
    try {
      files = await (collecting as Promise<ProducedFile[]>);
    } catch (e) {
      if (outcome === "done")
        throw new BackendError(`collecting output files failed: ${(e as Error).message}`);
    }
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
  return {
    stdout: out.text(),
    stderr: err.text(),
    exitCode: record ? record.exit_code : null,
    timedOut: record ? record.timed_out : outcome === "backstop",
    durationMs: record ? record.duration_ms : Date.now() - started,
    files,
  };
}

/** Splits the runner's stdout into frames (kind byte, 4-byte big-endian length, payload). */
class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (kind: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 5) {
      const len = this.buf.readUInt32BE(off + 1);
      if (this.buf.length - off < 5 + len) break;
      this.onFrame(this.buf[off] as number, this.buf.subarray(off + 5, off + 5 + len));
      off += 5 + len;
    }
    this.buf = off ? Buffer.from(this.buf.subarray(off)) : this.buf;
  }
}

async function extractFiles(
  tarBytes: Readable,
  sink: NonNullable<ExecRequest["collectFiles"]>,
): Promise<ProducedFile[]> {
  const files: ProducedFile[] = [];
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    if (header.type !== "file") {
      stream.resume();
      next();
      return;
    }
    const size = header.size ?? 0;
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

/** Lists /workspace (files and directories, sorted by path). */
export async function listWorkspace(t: ExecTransport): Promise<WorkspaceEntry[]> {
  const r = await execCapture(t, executorCommands.list(MAX_LISTED_ENTRIES));
  if (r.exitCode !== 0)
    throw new BackendError(`listing /workspace failed: ${r.stderr.toString().slice(0, 300)}`);
  const rows = JSON.parse(r.stdout.toString() || "[]") as Array<[string, "file" | "directory", number]>;
  return rows.map(([path, kind, sizeBytes]) => ({ path, kind, sizeBytes }));
}

/** Streams one regular file out of /workspace; NotFoundError when missing or not a file. */
export async function readWorkspaceFile(t: ExecTransport, path: string): Promise<SessionFile> {
  const proc = await t.exec(executorCommands.read(path));
  proc.stderr.resume();
  return new Promise<SessionFile>((resolve, reject) => {
    let header = Buffer.alloc(0);
    let settled = false;
    const body = new PassThrough();
    const onData = (b: Buffer) => {
      if (settled) return;
      header = Buffer.concat([header, b]);
      const nl = header.indexOf(10);
      if (nl === -1) {
        if (header.length > 32) fail(new BackendError("reading the file failed: bad header"));
        return;
      }
      settled = true;
      proc.stdout.off("data", onData);
      proc.stdout.pause();
      const size = Number(header.subarray(0, nl).toString());
      const rest = header.subarray(nl + 1);
      if (rest.length) body.write(rest);
      proc.stdout.pipe(body);
      proc.stdout.resume();
      proc.done.catch(() => null).finally(() => body.end());
      resolve({ sizeBytes: size, content: body });
    };
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      proc.destroy();
      reject(e);
    };
    proc.stdout.on("data", onData);
    proc.stdout.on("error", (e) => fail(e));
    proc.done.then(
      (code) => {
        if (settled) return;
        if (code === 2 || code === 3)
          fail(new NotFoundError(`no file at ${JSON.stringify(path)} in the workspace`));
        else fail(new BackendError(`reading ${JSON.stringify(path)} failed (exit ${code})`));
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
