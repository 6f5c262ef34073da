/** Helpers for the tests that start what ships (image, compose) on the real engine. */
import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect } from "vitest";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
export const run = promisify(execFile);

/** The engine the tests use: DOCKER_HOST (unix://...), like every Docker client; never a hard-coded path. */
export function engineSocket(): string {
  const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  if (!host.startsWith("unix://"))
    throw new Error(`these tests mount the engine's socket: DOCKER_HOST=${host} is not unix://`);
  return host.slice("unix://".length);
}

/** The socket's group, so the non-root API (uid 65532) may use it (`--group-add`). */
export function engineSocketGid(): number {
  return statSync(engineSocket()).gid;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function docker(...args: string[]): Promise<string> {
  return (await run("docker", args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 })).stdout;
}

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of the API under test
  body: any;
}

export async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: r.status, body: parsed };
}

/** Polls until `path` answers `status`, or fails with the last answer and `context()`. */
export async function waitFor(
  base: string,
  path: string,
  status: number,
  ms: number,
  context: () => Promise<string>,
) {
  const deadline = Date.now() + ms;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const a = await call(base, "GET", path);
      if (a.status === status) return a;
      last = `${a.status} ${JSON.stringify(a.body)}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${path} did not answer ${status} within ${ms} ms (last: ${last})\n${await context()}`);
}

/** The HTTP smoke: health, one-shot execute, a session created, used with bash, deleted. */
export async function smoke(base: string): Promise<void> {
  const health = await call(base, "GET", "/health");
  expect(health).toMatchObject({ status: 200, body: { status: "ok", backend: "docker" } });
  expect((await call(base, "GET", "/livez")).status).toBe(200);

  const exec = await call(base, "POST", "/v1/execute", { code: "import os\nprint(os.getuid())\n6 * 7" });
  expect(exec.status).toBe(200);
  expect(exec.body).toMatchObject({ stdout: "65532\n42\n", exit_code: 0, timed_out: false });

  const created = await call(base, "POST", "/v1/sessions", { ttl_seconds: 300 });
  expect(created.status).toBe(201);
  const id = created.body.session_id as string;
  try {
    const bash = await call(base, "POST", `/v1/sessions/${id}/bash`, {
      cmd: "echo hi > f.txt && cat f.txt && id -u",
    });
    expect(bash.status).toBe(200);
    expect(bash.body).toMatchObject({ stdout: "hi\n65532\n", exit_code: 0 });
  } finally {
    expect((await call(base, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
  }
  expect((await call(base, "GET", `/v1/sessions/${id}`)).status).toBe(404);
}
