import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { runMain, startServer } from "../src/index.js";
import { MemoryFileStore, testConfig } from "./helpers.js";

const logger = pino({ level: "silent" });

function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe("startServer", () => {
  it("listens on port 0 and serves the app", async () => {
    const backend = new InMemoryBackend();
    const running = await startServer({
      backend,
      files: new MemoryFileStore(),
      config: testConfig(),
      logger,
      host: "127.0.0.1",
      port: 0,
    });
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${running.url}/health`);
    expect(await res.json()).toMatchObject({ status: "ok", backend: "memory" });
    await running.close();
    expect(backend.closed).toBe(true);
  });

  it("graceful shutdown lets in-flight requests finish, refuses new ones and keeps sessions", async () => {
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const backend = new InMemoryBackend({
      run: async () => {
        started();
        await gate;
        return { stdout: "finished\n" };
      },
    });
    const running = await startServer({
      backend,
      files: new MemoryFileStore(),
      config: testConfig({ SHUTDOWN_TIMEOUT_SECONDS: "10" }),
      logger,
      host: "127.0.0.1",
      port: 0,
    });
    const session = (await (await post(`${running.url}/v1/sessions`, {})).json()) as { session_id: string };
    const inflight = post(`${running.url}/v1/execute`, { code: "slow()" });
    await startedP;

    let closed = false;
    const closing = running.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();

    finish();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ stdout: "finished\n" });
    await closing;
    expect(backend.closed).toBe(true);
    expect(backend.callsTo("deleteSession")).toHaveLength(0);
    expect(backend.size).toBe(1);
    expect(session.session_id).toMatch(/^code-session-/);
  });

  it("after the shutdown timeout, cuts remaining connections (aborting their runs)", async () => {
    let aborted = false;
    const backend = new InMemoryBackend({
      run: (_req, ctx) =>
        new Promise((resolve) => {
          ctx.signal?.addEventListener("abort", () => {
            aborted = true;
            resolve({ timedOut: true });
          });
        }),
    });
    const running = await startServer({
      backend,
      files: new MemoryFileStore(),
      config: testConfig({ SHUTDOWN_TIMEOUT_SECONDS: "0.2" }),
      logger,
      host: "127.0.0.1",
      port: 0,
    });
    const inflight = post(`${running.url}/v1/execute`, { code: "forever()" }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await running.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await inflight).toBeInstanceOf(Error);
    expect(aborted).toBe(true);
    expect(backend.closed).toBe(true);
  });
});

describe("runMain", () => {
  it("prints the config error and exits 1", async () => {
    let out = "";
    const codes: number[] = [];
    const handle = await runMain({
      env: { PORT: "not-a-port", MAX_EXEC_TIMEOUT_MS: "-1" },
      stderr: { write: (s: string) => (out += s) },
      exit: (c) => codes.push(c),
      handleSignals: false,
    });
    expect(handle).toBeNull();
    expect(codes).toEqual([1]);
    expect(out).toMatch(/PORT/);
    expect(out).toMatch(/MAX_EXEC_TIMEOUT_MS/);
  });

  it("starts with the configured backend and shuts down with exit 0", async () => {
    const backend = new InMemoryBackend();
    const codes: number[] = [];
    const handle = await runMain({
      env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent" },
      exit: (c) => codes.push(c),
      logger,
      handleSignals: false,
      createBackend: async () => backend,
      createFiles: () => new MemoryFileStore(),
    });
    expect(handle).not.toBeNull();
    const res = await fetch(`${handle!.running.url}/health`);
    expect(res.status).toBe(200);
    await handle!.shutdown("SIGTERM");
    expect(codes).toEqual([0]);
    expect(backend.closed).toBe(true);
  });
});
