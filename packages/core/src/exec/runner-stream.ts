/**
 * The runner's output stream (see python/runner.py), read as hostile input: frame kinds, the
 * linear-time bounded FrameParser, the stream's size bound and the exit record's shape.
 */
import { LengthPrefixedReader } from "../frame-reader.js";

/** Frame kinds written by the runner (see python/runner.py). */
export const FRAME_STDOUT = 0x31; // "1"
export const FRAME_STDERR = 0x32; // "2"
export const FRAME_FILES = 0x46; // "F"
export const FRAME_EXIT = 0x58; // "X"
const FRAME_KINDS = new Set([FRAME_STDOUT, FRAME_STDERR, FRAME_FILES, FRAME_EXIT]);
const MAX_EXIT_RECORD_BYTES = 4096;
const FRAME_HEADER_BYTES = 5;

export interface ExitRecord {
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

/** The exit record's JSON, checked field by field; null when it is not one. */
export function parseExitRecord(payload: Buffer): ExitRecord | null {
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
