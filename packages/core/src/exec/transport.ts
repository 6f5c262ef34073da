/**
 * The one primitive a backend provides — "run this argv in the container/pod with this
 * stdin" — and the bounded capture of a command's output that the helpers below build on.
 */
import type { Readable } from "node:stream";

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
export function capture(p: ExecProcess, max: number): Promise<CapturedExec> {
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
