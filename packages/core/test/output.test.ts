import { describe, expect, it } from "vitest";
import { OutputLimiter, TRUNCATION_MARKER } from "./core.js";

const b = (s: string) => Buffer.from(s, "utf8");

describe("OutputLimiter", () => {
  it("keeps everything under the limit, with no marker", () => {
    const o = new OutputLimiter(100);
    expect(o.push(b("hello "))).toBe("hello ");
    expect(o.push(b("world"))).toBe("world");
    expect(o.text()).toBe("hello world");
    expect(o.truncated).toBe(false);
  });

  it("output of exactly the limit is complete and not truncated", () => {
    const o = new OutputLimiter(10);
    o.push(b("01234"));
    o.push(b("56789"));
    expect(o.truncated).toBe(false);
    expect(o.text()).toBe("0123456789");
  });

  it("one byte past the limit cuts and appends the marker once", () => {
    const o = new OutputLimiter(10);
    o.push(b("0123456789"));
    expect(o.push(b("X"))).toBe(TRUNCATION_MARKER);
    expect(o.push(b("more"))).toBe("");
    expect(o.truncated).toBe(true);
    expect(o.text()).toBe("0123456789" + TRUNCATION_MARKER);
  });

  it("cuts inside a chunk; live output adds up to text()", () => {
    const o = new OutputLimiter(8);
    let live = "";
    live += o.push(b("abc"));
    live += o.push(b("defghijkl"));
    live += o.push(b("zzz"));
    expect(o.text()).toBe("abcdefgh" + TRUNCATION_MARKER);
    expect(live).toBe(o.text());
  });

  it("a zero limit keeps nothing but the marker", () => {
    const o = new OutputLimiter(0);
    o.push(b("x"));
    expect(o.text()).toBe(TRUNCATION_MARKER);
  });

  it("empty chunks change nothing", () => {
    const o = new OutputLimiter(3);
    expect(o.push(Buffer.alloc(0))).toBe("");
    o.push(b("abc"));
    expect(o.push(Buffer.alloc(0))).toBe("");
    expect(o.truncated).toBe(false);
    expect(o.text()).toBe("abc");
  });

  it("decodes multibyte UTF-8 split across chunks, byte by byte", () => {
    const s = "héllo 日本語 😀 done";
    const o = new OutputLimiter(1000);
    let live = "";
    for (const byte of b(s)) live += o.push(Buffer.from([byte]));
    expect(o.text()).toBe(s);
    expect(live).toBe(s);
    expect(o.text()).not.toContain("\uFFFD");
  });

  it("a cut in the middle of a character drops the partial character (no U+FFFD)", () => {
    // "aé" is 3 bytes; the limit of 4 falls inside the second "é" (2 bytes) and inside the emoji.
    for (const [limit, input, kept] of [
      [4, "aéé", "aé"],
      [3, "a😀", "a"],
      [5, "abcd😀", "abcd"],
    ] as const) {
      const o = new OutputLimiter(limit);
      let live = "";
      for (const byte of b(input)) live += o.push(Buffer.from([byte]));
      expect(o.text()).toBe(kept + TRUNCATION_MARKER);
      expect(live).toBe(o.text());
    }
  });

  it("a stream that ends mid-character (not cut) shows the replacement character", () => {
    const o = new OutputLimiter(100);
    o.push(Buffer.from([0x61, 0xe6, 0x97]));
    expect(o.text()).toBe("a\uFFFD");
  });

  it("memory stays bounded: 50 MB pushed, text ≤ limit + marker", () => {
    const limit = 64 * 1024;
    const o = new OutputLimiter(limit);
    const chunk = Buffer.alloc(64 * 1024, "x");
    let forwarded = 0;
    for (let i = 0; i < 800; i++) forwarded += o.push(chunk).length; // 800 × 64 KiB = 50 MiB
    const text = o.text();
    expect(o.truncated).toBe(true);
    expect(text.length).toBeLessThanOrEqual(limit + TRUNCATION_MARKER.length);
    expect(text.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(forwarded).toBe(text.length);
  });

  it("memory stays bounded with multibyte output too", () => {
    const limit = 10_001;
    const o = new OutputLimiter(limit);
    const chunk = b("日本語😀".repeat(3000));
    for (let i = 0; i < 200; i++) o.push(chunk);
    const text = o.text();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(limit + Buffer.byteLength(TRUNCATION_MARKER));
    expect(text).not.toContain("\uFFFD");
  });
});
