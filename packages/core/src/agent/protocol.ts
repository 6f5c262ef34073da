/**
 * The frames spoken between the API and a session's resident agent (python/agent.py), both
 * directions: a 4-byte big-endian payload length, a kind byte, a 4-byte big-endian request
 * id, then the payload (at most AGENT_MAX_PAYLOAD bytes). See core's README for the kinds.
 */
import { LengthPrefixedReader } from "../frame-reader.js";

export const AGENT_MAX_PAYLOAD = 1 << 16;
export const AGENT_HEADER_BYTES = 9;

const k = (c: string): number => c.charCodeAt(0);

/** Kinds the API sends. */
export const AgentRequestKind = {
  python: k("P"),
  bash: k("B"),
  cancel: k("C"),
  reset: k("R"),
  read: k("r"),
  write: k("W"),
  stage: k("S"),
  chunk: k("w"),
  /** Flow control of a read: a u32 count of bytes the reader has taken. */
  ack: k("A"),
  list: k("L"),
  ping: k("p"),
} as const;

/** Kinds the relay and the agent send. */
export const AgentReplyKind = {
  hello: k("H"),
  stdout: k("1"),
  stderr: k("2"),
  files: k("F"),
  meta: k("M"),
  data: k("D"),
  result: k("X"),
  error: k("E"),
} as const;

const REPLY_KINDS = new Set<number>(Object.values(AgentReplyKind));

/** One frame; the payload may be split by the caller into several frames of the same kind. */
export function encodeAgentFrame(kind: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > AGENT_MAX_PAYLOAD) throw new RangeError(`a frame payload of ${payload.length} bytes`);
  const head = Buffer.alloc(AGENT_HEADER_BYTES);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt8(kind, 4);
  head.writeUInt32BE(id >>> 0, 5);
  return payload.length ? Buffer.concat([head, payload]) : head;
}

/**
 * Splits what the agent says into frames in linear time and bounded memory (every byte is
 * copied at most once; a frame holds at most AGENT_MAX_PAYLOAD bytes). Unknown kinds and
 * oversized frames are violations; the first one is final and nothing more is parsed.
 */
export class AgentFrameParser extends LengthPrefixedReader {
  private kind = 0;
  private id = 0;

  constructor(
    private readonly onFrame: (kind: number, id: number, payload: Buffer) => void,
    onViolation: (reason: string) => void,
    private readonly maxPayload: number = AGENT_MAX_PAYLOAD,
  ) {
    super(AGENT_HEADER_BYTES, onViolation);
  }

  push(chunk: Buffer): void {
    this.feed(chunk);
  }

  protected readHeader(head: Buffer): number | string {
    const need = head.readUInt32BE(0);
    this.kind = head.readUInt8(4);
    this.id = head.readUInt32BE(5);
    if (!REPLY_KINDS.has(this.kind)) return `unknown frame kind 0x${this.kind.toString(16)}`;
    if (need > this.maxPayload) return `a frame of ${need} bytes (at most ${this.maxPayload})`;
    return need;
  }

  protected onPayload(payload: Buffer): void {
    this.onFrame(this.kind, this.id, payload);
  }
}
