/** The code-interpreter-api binary: --help and --version print and exit 0 without listening. */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { API_VERSION } from "../src/index.js";

const MAIN = join(dirname(fileURLToPath(import.meta.url)), "../dist/main.js");
const run = promisify(execFile);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Whether something accepts connections on 127.0.0.1:port. */
async function listening(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once("error", () => resolve(true));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)));
  });
}

describe("code-interpreter-api binary", () => {
  // The binary is dist/main.js, what `npm i` links as code-interpreter-api.
  for (const flag of ["--help", "-h"]) {
    it(`${flag} prints usage and exits 0 without listening`, async () => {
      const port = await freePort();
      const { stdout } = await run(process.execPath, [MAIN, flag], {
        env: {
          ...process.env,
          HOST: "127.0.0.1",
          PORT: String(port),
          DOCKER_HOST: "unix:///nonexistent.sock",
        },
        timeout: 10_000,
      });
      expect(stdout).toMatch(/^Usage: code-interpreter-api/);
      expect(stdout).toContain("GET /livez");
      expect(stdout).not.toContain("listening");
      expect(await listening(port)).toBe(false);
    });
  }

  it("--version prints the package version (the built dist reads package.json)", async () => {
    const { stdout } = await run(process.execPath, [MAIN, "--version"], { timeout: 10_000 });
    const pkg = JSON.parse(
      readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../package.json"), "utf8"),
    ) as { version: string };
    expect(stdout).toBe(`${pkg.version}\n`);
    expect(API_VERSION).toBe(pkg.version);
  });

  it("an unknown option exits 2 with the usage on stderr", async () => {
    const err = await run(process.execPath, [MAIN, "--port", "1"], { timeout: 10_000 }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/Unknown option '--port'/);
    expect(err?.stderr).toContain("Usage:");
  });
});
