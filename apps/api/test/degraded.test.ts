/**
 * Start degraded, not dead: `npm start` (scripts/start.sh) with DOCKER_HOST naming an engine
 * that does not answer starts no local dockerd, the API starts anyway, /livez answers 200 and
 * /readyz 503 naming that engine — and it becomes ready as soon as the engine answers (here: a
 * socket proxy to the real engine appears at the named path).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
/** The real engine's socket, from DOCKER_HOST like every Docker client. */
const ENGINE = (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(/^unix:\/\//, "");

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  } catch {
    return null;
  }
}

async function until<T>(what: () => Promise<T | null>, ok: (v: T) => boolean, ms: number): Promise<T | null> {
  const deadline = Date.now() + ms;
  let last: T | null = null;
  while (Date.now() < deadline) {
    last = await what();
    if (last !== null && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

const dir = mkdtempSync(join(tmpdir(), "ci-degraded-"));
const named = join(dir, "engine.sock");
let child: ChildProcess | null = null;
let proxy: Server | null = null;
let output = "";

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGTERM");
    await new Promise((r) => child!.once("exit", r));
  }
  if (proxy) await new Promise((r) => proxy!.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("npm start against a named engine that does not answer", () => {
  it("starts degraded (/livez 200, /readyz 503 naming the engine) and becomes ready when the engine answers", async () => {
    const port = await freePort();
    child = spawn("bash", ["scripts/start.sh"], {
      cwd: ROOT,
      env: {
        ...process.env,
        DOCKER_HOST: `unix://${named}`,
        HOST: "127.0.0.1",
        PORT: String(port),
        FILE_STORAGE_DIR: join(dir, "files"),
        LOG_LEVEL: "warn",
        WARM_POOL_SIZE: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const base = `http://127.0.0.1:${port}`;

    // Setup (dependencies, build) runs first: give it time.
    const live = await until(
      () => get(`${base}/livez`),
      (r) => r.status === 200,
      120_000,
    );
    expect(live?.status, output).toBe(200);
    expect(output).toContain(`DOCKER_HOST=unix://${named} does not answer; not starting a local dockerd`);

    const notReady = await get(`${base}/readyz`);
    expect(notReady?.status).toBe(503);
    expect(notReady?.body.detail).toContain(`waiting for the Docker engine at unix://${named}`);
    expect((await get(`${base}/livez`))?.status).toBe(200);

    // The engine "comes back" at the named address.
    proxy = createServer((client) => {
      const upstream = createConnection(ENGINE);
      client.pipe(upstream).pipe(client);
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy!.listen(named, resolve));
    const ready = await until(
      () => get(`${base}/readyz`),
      (r) => r.status === 200,
      30_000,
    );
    expect(ready?.body, output).toMatchObject({ status: "ready", backend: "docker" });
    expect(child.exitCode).toBeNull();
  }, 180_000);
});
