/**
 * The runner exactly as it is shipped (RUNNER_PY: the runner_*.py files joined ahead of
 * runner.py), run by runCode as a local process: the parts must make one working program.
 */
import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PYTHON_DIR, RUNNER_PY, runCode } from "./core.js";
import { LocalTransport } from "./agent-local.js";

const run = (language: "python" | "bash", code: string, timeoutMs = 10_000) =>
  runCode(
    new LocalTransport(),
    { language, code, timeoutMs, maxOutputBytes: 10_000, stdin: "from stdin\n" },
    { cpuSeconds: 10, maxFileBytes: 1024 },
  );

describe("the runner, shipped as one program", () => {
  it("is every runner_*.py file, then runner.py", () => {
    const parts = readdirSync(PYTHON_DIR).filter((n) => /^runner_\w+\.py$/.test(n));
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts) expect(RUNNER_PY).toContain(readFileSync(new URL(part, PYTHON_DIR), "utf8"));
    expect(RUNNER_PY.endsWith(readFileSync(new URL("runner.py", PYTHON_DIR), "utf8"))).toBe(true);
  });

  it("runs Python with REPL semantics and the caller's stdin", async () => {
    const r = await run("python", "import sys\nprint(sys.stdin.read().strip())\nx = 2\nx * 21");
    expect(r).toMatchObject({ stdout: "from stdin\n42\n", exitCode: 0, timedOut: false });
  });

  it("runs bash and reports its exit code", async () => {
    const r = await run("bash", "echo $((6*7)); exit 3");
    expect(r).toMatchObject({ stdout: "42\n", exitCode: 3, timedOut: false });
  });

  it("kills the program at its timeout", async () => {
    const r = await run("bash", "echo started; sleep 30; echo never", 500);
    expect(r).toMatchObject({ stdout: "started\n", exitCode: null, timedOut: true });
    expect(r.durationMs).toBeLessThan(10_000);
  });
});
