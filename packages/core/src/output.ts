/**
 * Bounded output capture: keeps at most `limit` bytes of a stream, decodes UTF-8 across
 * chunk boundaries, and reports what to forward to a live listener. Memory stays O(limit)
 * however much the program prints.
 */
import { StringDecoder } from "node:string_decoder";

export const TRUNCATION_MARKER = "\n...[truncated]";

export class OutputLimiter {
  private readonly decoder = new StringDecoder("utf8");
  private readonly parts: string[] = [];
  private kept = 0;
  private cut = false;

  constructor(private readonly limit: number) {}

  get truncated(): boolean {
    return this.cut;
  }

  /** Adds a chunk; returns the text to forward live ("" when nothing new is kept). */
  push(chunk: Buffer): string {
    if (this.cut) return "";
    const room = this.limit - this.kept;
    let text: string;
    if (chunk.length <= room) {
      this.kept += chunk.length;
      text = this.decoder.write(chunk);
    } else {
      this.kept = this.limit;
      this.cut = true;
      // The bytes of a character cut by the limit stay in the decoder and are dropped: flushing
      // them (decoder.end()) would print a U+FFFD the program never wrote.
      text = this.decoder.write(chunk.subarray(0, room)) + TRUNCATION_MARKER;
    }
    if (text) this.parts.push(text);
    return text;
  }

  /** Everything kept, ending with TRUNCATION_MARKER when cut. */
  text(): string {
    if (!this.cut) {
      const rest = this.decoder.end();
      if (rest) this.parts.push(rest);
    }
    return this.parts.join("");
  }
}
