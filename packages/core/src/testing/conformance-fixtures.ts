/** The conformance suite's fixtures: staged files, requests, a file collector, binary bytes. */
import { Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import type { ExecRequest, FileCollector, StagedFile } from "../backend.js";

export const MAX_OUT = 100_000;

export function staged(path: string, content: Buffer | string): StagedFile {
  const buf = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return { path, size: buf.length, open: () => Promise.resolve(Readable.from([buf])) };
}

export function py(code: string, extra: Partial<ExecRequest> = {}): ExecRequest {
  return { language: "python", code, timeoutMs: 20_000, maxOutputBytes: MAX_OUT, ...extra };
}

export function collector(into: Map<string, Buffer>): FileCollector {
  return async (f) => {
    into.set(f.path, await readAll(f.content));
    return `file-${into.size}`;
  };
}

/** Every byte value, twice, plus a multi-byte UTF-8 tail: catches any text-mode mangling. */
export const BINARY = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i)),
  Buffer.from("\r\n\u00e9\u{1F600}\n"),
]);
