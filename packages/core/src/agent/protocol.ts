/**
 * The frames spoken between the API and a session's resident agent (python/agent.py), both
 * directions: a 4-byte big-endian payload length, a kind byte, a 4-byte big-endian request
 * id, then the payload (at most AGENT_MAX_PAYLOAD bytes). See core's README for the kinds.
 */
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
export class AgentFrameParser {
  private readonly head = Buffer.alloc(AGENT_HEADER_BYTES);
  private headLen = 0;
  private kind = 0;
  private id = 0;
  private need = 0;
  private parts: Buffer[] = [];
  private got = 0;
  violation: string | null = null;

  constructor(
    private readonly onFrame: (kind: number, id: number, payload: Buffer) => void,
    private readonly onViolation: (reason: string) => void,
    private readonly maxPayload: number = AGENT_MAX_PAYLOAD,
  ) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.violation === null) {
      if (this.headLen < AGENT_HEADER_BYTES) {
        const n = Math.min(AGENT_HEADER_BYTES - this.headLen, chunk.length - off);
        chunk.copy(this.head, this.headLen, off, off + n);
        this.headLen += n;
        off += n;
        if (this.headLen < AGENT_HEADER_BYTES) return;
        this.need = this.head.readUInt32BE(0);
        this.kind = this.head.readUInt8(4);
        this.id = this.head.readUInt32BE(5);
        this.parts = [];
        this.got = 0;
        if (!REPLY_KINDS.has(this.kind)) return this.fail(`unknown frame kind 0x${this.kind.toString(16)}`);
        if (this.need > this.maxPayload)
          return this.fail(`a frame of ${this.need} bytes (at most ${this.maxPayload})`);
        if (this.need === 0) this.emit(Buffer.alloc(0));
        continue;
      }
      const n = Math.min(this.need - this.got, chunk.length - off);
      this.parts.push(chunk.subarray(off, off + n));
      this.got += n;
      off += n;
      if (this.got === this.need) {
        this.emit(this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.need));
      }
    }
  }

  fail(reason: string): void {
    if (this.violation !== null) return;
    this.violation = reason;
    this.parts = [];
    this.onViolation(reason);
  }

  private emit(payload: Buffer): void {
    this.headLen = 0;
    this.parts = [];
    this.onFrame(this.kind, this.id, payload);
  }
}
