import { describe, expect, it } from "vitest";
import { runnerStdin } from "./core.js";

/** Parses the framing the runner reads: "<codeBytes> <stdinBytes>\n", code, stdin. */
function unframe(buf: Buffer): { code: string; stdin: string; codeBytes: number; stdinBytes: number } {
  const nl = buf.indexOf(0x0a);
  const header = buf.subarray(0, nl).toString("ascii");
  expect(header).toMatch(/^\d+ \d+$/);
  const [codeBytes, stdinBytes] = header.split(" ").map(Number) as [number, number];
  const body = buf.subarray(nl + 1);
  expect(body.length).toBe(codeBytes + stdinBytes);
  return {
    code: body.subarray(0, codeBytes).toString("utf8"),
    stdin: body.subarray(codeBytes).toString("utf8"),
    codeBytes,
    stdinBytes,
  };
}

describe("runnerStdin framing", () => {
  it("header with byte lengths, then the code, then the stdin", () => {
    expect(runnerStdin("print(1)", "abc").toString()).toBe("8 3\nprint(1)abc");
  });

  it.each<[string, string | null | undefined]>([
    ["print(input())", "hello\n"],
    ["", ""],
    ["x = 1", null],
    ["x = 1", undefined],
    ["print('日本語 😀')", "ünïcødé input\n"],
    ["line1\nline2\n\n", "\n\n\n"],
    ["a" + "\0" + "b", "\0"],
    ["# 12 34\n", "12 34\n"],
  ])("round-trips code %j with stdin %j", (code, stdin) => {
    const framed = unframe(runnerStdin(code, stdin));
    expect(framed.code).toBe(code);
    expect(framed.stdin).toBe(stdin ?? "");
    expect(framed.codeBytes).toBe(Buffer.byteLength(code));
    expect(framed.stdinBytes).toBe(Buffer.byteLength(stdin ?? ""));
  });

  it("counts bytes, not characters", () => {
    expect(runnerStdin("é", "😀").subarray(0, 4).toString()).toBe("2 4\n");
  });

  it("handles large code and input", () => {
    const code = "x = 1\n".repeat(100_000);
    const stdin = "y".repeat(1_000_000);
    const framed = unframe(runnerStdin(code, stdin));
    expect(framed.code).toBe(code);
    expect(framed.stdin).toBe(stdin);
  });
});
