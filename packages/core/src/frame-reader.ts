/**
 * The one reader of length-prefixed frames that both executor protocols use (the runner's
 * `kind | length` stream and the agent's `length | kind | id` channel): a fixed-size header,
 * then `length` payload bytes. Linear time and bounded memory: every byte is copied at most
 * once, a payload is joined once when complete. What a header means, and which frames are
 * refused, is the subclass's; the first refusal is final and nothing more is parsed.
 */
export abstract class LengthPrefixedReader {
  private readonly head: Buffer;
  private headLen = 0;
  private need = 0;
  private parts: Buffer[] = [];
  private got = 0;
  violation: string | null = null;

  protected constructor(
    private readonly headerBytes: number,
    private readonly onViolation: (reason: string) => void,
  ) {
    this.head = Buffer.alloc(headerBytes);
  }

  /** Reads a complete header: the payload's length, or why the frame is refused. */
  protected abstract readHeader(head: Buffer): number | string;
  /** The complete payload of the frame whose header was read last. */
  protected abstract onPayload(payload: Buffer): void;
  /** Before a new frame begins: why no further frame is allowed, or null. */
  protected beforeFrame(): string | null {
    return null;
  }

  protected feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.violation === null) {
      if (this.headLen < this.headerBytes) {
        if (this.headLen === 0) {
          const refused = this.beforeFrame();
          if (refused !== null) return this.fail(refused);
        }
        const n = Math.min(this.headerBytes - this.headLen, chunk.length - off);
        chunk.copy(this.head, this.headLen, off, off + n);
        this.headLen += n;
        off += n;
        if (this.headLen < this.headerBytes) return;
        const need = this.readHeader(this.head);
        this.parts = [];
        this.got = 0;
        if (typeof need === "string") return this.fail(need);
        this.need = need;
        if (need === 0) this.emit(Buffer.alloc(0));
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

  /** Breaks the stream (also from outside, e.g. when a payload broke a rule). */
  fail(reason: string): void {
    if (this.violation !== null) return;
    this.violation = reason;
    this.parts = [];
    this.onViolation(reason);
  }

  private emit(payload: Buffer): void {
    this.headLen = 0;
    this.parts = [];
    this.onPayload(payload);
  }
}
