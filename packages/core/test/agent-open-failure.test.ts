/**
 * A channel whose exec cannot even start (the container is being removed: a session deleted
 * right after its create, while its agent channel opens in the background) rejects the call
 * that opened it, and nothing else: no unhandled rejection that would end the API process.
 */
import { describe, expect, it } from "vitest";
import { AgentChannel, type ExecTransport } from "./core.js";

describe("AgentChannel open failure", () => {
  it("rejects hello() with the exec's error and leaves no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const t: ExecTransport = {
        exec: () => Promise.reject(new Error("(HTTP code 500) container not running: Removal In Progress")),
      };
      const ch = new AgentChannel(t, { maxFileBytes: 1 << 20 });
      await expect(ch.hello()).rejects.toThrow(/Removal In Progress/);
      await expect(
        ch.run({ language: "python", code: "1", timeoutMs: 1000, maxOutputBytes: 100 }),
      ).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
