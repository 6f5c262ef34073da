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
  MAX_COLLECTED_FILES,
  MAX_LISTED_ENTRIES,
  executorCommands,
  runnerStdin,
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
   * How to stop the program on timeout/abort. Sessions kill the process group inside the
   * container; one-shot runs remove the whole container. Defaults to the in-container kill.
   */
  kill?: (execId: string) => Promise<void>;
  /** Whether the workspace can still be read after a kill (false when kill removes the container). */
  collectAfterKill?: boolean;
  /** Per-file cap for collected files (the file store's limit). */
  maxFileBytes: number;
  /** Called once the program is running (e.g. to record session activity in parallel). */
  onStarted?: () => void;
}

/** Runs code through the runner script with every rule of the REST contract applied. */
export async function runCode(t: ExecTransport, req: ExecRequest, opts: RunOptions): Promise<ExecResult> {
  const execId = randomUUID();
  const collect = !!req.collectFiles;
  const cmd = executorCommands.run({
    execId,
    language: req.language,
    cpuSeconds: opts.cpuSeconds,
    lastLineInteractive: req.language === "python" && req.lastLineInteractive !== false,
    snapshot: collect,
  });
  const out = new OutputLimiter(req.maxOutputBytes);
  const err = new OutputLimiter(req.maxOutputBytes);
  const started = Date.now();
  if (req.signal?.aborted) throw new BackendError("the request was cancelled");
  const proc = await t.exec(cmd, { stdin: runnerStdin(req.code, req.stdin) });
  opts.onStarted?.();
  const forward = (limiter: OutputLimiter, stream: "stdout" | "stderr") => (b: Buffer) => {
    const text = limiter.push(b);
    if (text && req.onOutput) req.onOutput({ stream, data: text });
  };
  proc.stdout.on("data", forward(out, "stdout"));
  proc.stderr.on("data", forward(err, "stderr"));
  proc.stdout.on("error", () => undefined);
  proc.stderr.on("error", () => undefined);

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<"timeout" | "abort">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), req.timeoutMs);
    if (req.signal) {
      onAbort = () => resolve("abort");
      req.signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  const outcome = await Promise.race([proc.done.then((code) => ({ code })), stop]);
  clearTimeout(timer);
  if (onAbort) req.signal?.removeEventListener("abort", onAbort);

  let exitCode: number | null = null;
  let timedOut = false;
  let killed = false;
  if (typeof outcome === "object") {
    exitCode = outcome.code;
  } else {
    killed = true;
    timedOut = outcome === "timeout";
    const kill =
      opts.kill ?? ((id: string) => execCapture(t, executorCommands.kill(id)).then(() => undefined));
    await kill(execId).catch(() => undefined);
    // Let the output already produced drain, but never wait on a stray process holding the pipe.
    await Promise.race([proc.done.catch(() => null), delay(KILL_DRAIN_MS)]);
    proc.destroy();
  }
  const durationMs = Date.now() - started;

  let files: ProducedFile[] = [];
  if (collect && req.collectFiles && (!killed || opts.collectAfterKill) && !req.signal?.aborted) {
    files = await collectFiles(t, execId, req.collectFiles, opts.maxFileBytes);
  }
  return { stdout: out.text(), stderr: err.text(), exitCode, timedOut, durationMs, files };
}

async function collectFiles(
  t: ExecTransport,
  execId: string,
  sink: NonNullable<ExecRequest["collectFiles"]>,
  maxFileBytes: number,
): Promise<ProducedFile[]> {
  const proc = await t.exec(executorCommands.collect(execId, MAX_COLLECTED_FILES, maxFileBytes));
  proc.stderr.resume();
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
  try {
    await pipeline(proc.stdout, extract);
  } catch (e) {
    proc.destroy();
    throw new BackendError(`collecting output files failed: ${(e as Error).message}`);
  }
  await proc.done.catch(() => null);
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
