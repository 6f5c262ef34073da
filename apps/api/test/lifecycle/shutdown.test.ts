/**
 * Issue 4: graceful shutdown is bounded by SHUTDOWN_TIMEOUT_SECONDS even while a reaper pass
 * runs (a pass over many sessions on a busy engine can take seconds), and never deletes
 * sessions. The real-process version is in restart.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { ReapReport } from "@code-interpreter/core";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { startServer } from "../../src/index.js";
import { MemoryFileStore, testConfig } from "../helpers.js";
import { captureLogs } from "./helpers.js";

class SlowReaperBackend extends InMemoryBackend {
  reapStarted = false;
  override async reap(now?: number): Promise<ReapReport> {
    this.reapStarted = true;
    await new Promise((r) => setTimeout(r, 30_000).unref());
    return super.reap(now);
  }
}

describe("shutdown during a slow reaper pass", { timeout: 30_000 }, () => {
  it("does not wait past the shutdown timeout for the pass, and keeps the sessions", async () => {
    const backend = new SlowReaperBackend();
    const logs = captureLogs("warn");
    const running = await startServer({
      backend,
      files: new MemoryFileStore(),
      config: testConfig({ SHUTDOWN_TIMEOUT_SECONDS: "1", SESSION_REAPER_INTERVAL_SECONDS: "0.1" }),
      logger: logs.logger,
      host: "127.0.0.1",
      port: 0,
    });
    const res = await fetch(`${running.url}/v1/sessions`, { method: "POST", body: "{}" });
    expect(res.status).toBe(201);
    const { session_id } = (await res.json()) as { session_id: string };
    while (!backend.reapStarted) await new Promise((r) => setTimeout(r, 20));

    const t0 = Date.now();
    await running.close();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2_500);
    expect(logs.lines).toContainEqual(
      expect.objectContaining({ msg: "a reaper pass is still running at shutdown: not waiting for it" }),
    );
    expect(backend.closed).toBe(true);
    expect(backend.calls.some((c) => c.method === "deleteSession")).toBe(false);
    expect(backend.size).toBe(1);
    expect(session_id).toMatch(/^code-session-/);
  });
});
