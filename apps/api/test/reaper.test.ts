import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createMetrics, startReaper } from "../src/index.js";
import { MemoryFileStore } from "./helpers.js";

const logger = pino({ level: "silent" });

describe("startReaper", () => {
  it("reaps expired and idle sessions and sweeps files, then keeps going", async () => {
    let now = 1_700_000_000_000;
    const backend = new InMemoryBackend({ now: () => now });
    const files = new MemoryFileStore(1024, 60, () => now);
    const metrics = createMetrics({ collectDefault: false });
    const keep = await backend.createSession({
      files: [],
      ttlSeconds: 3600,
      idleTimeoutSeconds: null,
      metadata: {},
      owner: null,
    });
    const short = await backend.createSession({
      files: [],
      ttlSeconds: 10,
      idleTimeoutSeconds: null,
      metadata: {},
      owner: null,
    });
    const idle = await backend.createSession({
      files: [],
      ttlSeconds: 3600,
      idleTimeoutSeconds: 5,
      metadata: {},
      owner: null,
    });
    await files.add("old");
    now += 61_000;

    const reaper = startReaper({
      backend,
      files,
      intervalSeconds: 0.1,
      logger,
      metrics,
      runImmediately: false,
    });
    await reaper.runOnce();
    expect(backend.size).toBe(1);
    await expect(backend.getSession(keep.id)).resolves.toMatchObject({ id: keep.id });
    expect(files.files.size).toBe(0);
    const text = await metrics.registry.metrics();
    expect(text).toContain('code_interpreter_sessions_reaped_total{reason="expired"} 1');
    expect(text).toContain('code_interpreter_sessions_reaped_total{reason="idle"} 1');
    expect(
      [short.id, idle.id].every(
        (id) => !backend.calls.some((c) => c.method === "deleteSession" && c.args[0] === id),
      ),
    ).toBe(true);

    // Scheduled passes run on their own.
    const before = backend.callsTo("reap").length;
    await vi.waitFor(() => expect(backend.callsTo("reap").length).toBeGreaterThan(before + 1), {
      timeout: 2000,
    });
    await reaper.stop();
  });

  it("survives errors from the backend and the file store", async () => {
    const backend = new InMemoryBackend();
    const files = new MemoryFileStore();
    const reap = vi.spyOn(backend, "reap").mockRejectedValueOnce(new Error("daemon down"));
    const sweep = vi.spyOn(files, "sweep").mockRejectedValueOnce(new Error("disk gone"));
    const errors: unknown[] = [];
    const log = {
      ...logger,
      error: (o: object) => errors.push(o),
      info: () => undefined,
      warn: () => undefined,
      debug: () => undefined,
    };
    const reaper = startReaper({ backend, files, intervalSeconds: 0.1, logger: log, runImmediately: false });
    await reaper.runOnce();
    expect(errors).toHaveLength(2);
    await reaper.runOnce();
    expect(reap).toHaveBeenCalledTimes(2);
    expect(sweep).toHaveBeenCalledTimes(2);
    await reaper.stop();
  });

  it("never overlaps passes, and stop() waits for the running one", async () => {
    const backend = new InMemoryBackend();
    const files = new MemoryFileStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let active = 0;
    let maxActive = 0;
    vi.spyOn(backend, "reap").mockImplementation(async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await gate;
      active -= 1;
      return { reaped: [], failed: [] };
    });
    const reaper = startReaper({ backend, files, intervalSeconds: 0.1, logger });
    const a = reaper.runOnce();
    const b = reaper.runOnce();
    await new Promise((r) => setTimeout(r, 300)); // several intervals pass while the first pass hangs
    expect(maxActive).toBe(1);
    let stopped = false;
    const stopping = reaper.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await Promise.all([a, b, stopping]);
    expect(stopped).toBe(true);
    const calls = (backend.reap as unknown as { mock: { calls: unknown[] } }).mock.calls.length;
    await new Promise((r) => setTimeout(r, 250));
    expect((backend.reap as unknown as { mock: { calls: unknown[] } }).mock.calls.length).toBe(calls);
  });

  it("skips backend.reap when the backend has no reaper capability", async () => {
    const backend = new InMemoryBackend({ capabilities: { reaper: false } });
    const files = new MemoryFileStore();
    const reaper = startReaper({ backend, files, intervalSeconds: 1, logger, runImmediately: false });
    await reaper.runOnce();
    expect(backend.callsTo("reap")).toHaveLength(0);
    expect(files.sweeps).toBe(1);
    await reaper.stop();
  });
});
