/** Streaming one regular file out of /workspace through workspace.py `read`. */
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import type { SessionFile } from "../backend.js";
import { BackendError } from "../errors.js";
import { executorCommands, workspaceInput } from "../executor-scripts.js";
import { assertSafeWorkspacePath } from "../paths.js";
import { execCapture, type ExecTransport } from "./transport.js";
import {
  DEFAULT_MAX_FILE_BYTES,
  WORKSPACE_READ_TIMEOUT_MS,
  watchHelper,
  workspaceError,
  type WorkspaceOpOptions,
} from "./workspace-helper.js";

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
