import { describe, expect, it } from "vitest";
import {
  KEEPER_PY,
  KILL_PY,
  RUNNER_BOOTSTRAP_PY,
  RUNNER_PY,
  WORKSPACE_PY,
  executorCommands,
  runnerStdin,
} from "./core.js";

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

describe("the in-executor programs", () => {
  it("are the files in python/, started isolated (python3 -I -S)", () => {
    for (const src of [RUNNER_PY, RUNNER_BOOTSTRAP_PY, KILL_PY, WORKSPACE_PY, KEEPER_PY]) {
      expect(src.length).toBeGreaterThan(100);
    }
    expect(RUNNER_BOOTSTRAP_PY).toContain("prctl(4, 0");
    const cmds = [
      executorCommands.keeper({
        statePath: null,
        maxExpiresAt: 2,
        expiresAt: 2,
        idleTimeoutSeconds: null,
        createdAt: 1,
      }),
      executorCommands.kill("e"),
      executorCommands.workspace("e", ["list", 5]),
      executorCommands.workspace("e", ["read", "a.txt", 10]),
      executorCommands.workspace("e", ["write", 10]),
      executorCommands.run({
        execId: "e",
        language: "python",
        cpuSeconds: 1,
        lastLineInteractive: true,
        collect: false,
        timeoutMs: 1000,
        forwardLimitBytes: 10,
        maxFiles: 1,
        maxFileBytes: 1,
      }),
    ];
    for (const cmd of cmds) {
      const at = cmd.indexOf("python3");
      expect(cmd.slice(at, at + 4)).toEqual(["python3", "-I", "-S", "-c"]);
    }
  });

  it("keeps command lines short: the big programs travel on stdin", () => {
    const list = executorCommands.workspace("e", ["list", 5]);
    expect(list.join(" ").length).toBeLessThan(2000);
    expect(list).not.toContain(WORKSPACE_PY);
  });
});
