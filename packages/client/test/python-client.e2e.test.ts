/**
 * The Python client (clients/python) against the real server on the real engine, with
 * Debian's python3 (+ python3-requests, python3-pytest; `scripts/setup.sh` installs them).
 * pytest runs once, at collection, with the server's URL and key in the environment; each
 * pytest case then becomes one test here, so it counts in `npm test`'s summary line. A
 * failure shows pytest's own report.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startTestServer } from "./server.js";

const PROJECT = fileURLToPath(new URL("../../../clients/python", import.meta.url));
const PYTHON = process.env.PYTHON ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");

interface Case {
  name: string;
  outcome: "passed" | "failed" | "skipped";
  message: string;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: PROJECT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const unescape = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&#10;/g, "\n")
    .replace(/&amp;/g, "&");

/** The <testcase> elements of a JUnit XML report (pytest's --junitxml). */
function parseJunit(xml: string): Case[] {
  const cases: Case[] = [];
  const re = /<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1] ?? "";
    const body = m[2] ?? "";
    const attr = (n: string) => unescape(new RegExp(`\\b${n}="([^"]*)"`).exec(attrs)?.[1] ?? "");
    const name = `${attr("classname").replace(/^tests\./, "")}::${attr("name")}`;
    const problem = /<(failure|error)\b[^>]*?(?:message="([^"]*)")?[^>]*>([\s\S]*?)<\/\1>/.exec(body);
    if (problem)
      cases.push({ name, outcome: "failed", message: unescape(`${problem[2] ?? ""}\n${problem[3] ?? ""}`) });
    else if (/<skipped\b/.test(body)) cases.push({ name, outcome: "skipped", message: "skipped" });
    else cases.push({ name, outcome: "passed", message: "" });
  }
  return cases;
}

const key = `py-${randomUUID()}`;
const server = await startTestServer({ API_KEYS: key });
const reportDir = await mkdtemp(join(tmpdir(), "ci-pytest-"));
const report = join(reportDir, "junit.xml");
let result: { code: number | null; output: string };
let cases: Case[] = [];
try {
  result = await run(
    PYTHON,
    ["-m", "pytest", "-p", "no:cacheprovider", "-rA", `--junitxml=${report}`, "tests"],
    {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: "1",
      CODE_INTERPRETER_URL: server.baseUrl,
      CODE_INTERPRETER_API_KEY: key,
    },
  );
  if (existsSync(report)) cases = parseJunit(await readFile(report, "utf8"));
} finally {
  await server.close();
  await rm(reportDir, { recursive: true, force: true });
}

describe(`python client (${PYTHON}, pytest)`, () => {
  it("pytest ran and exited 0", () => {
    expect(cases.length, result.output).toBeGreaterThan(0);
    expect(result.code, result.output).toBe(0);
  });

  for (const c of cases) {
    it(c.name, () => {
      // Nothing may be skipped: a skipped pytest case fails here.
      expect(c.outcome, c.message).toBe("passed");
    });
  }
});
