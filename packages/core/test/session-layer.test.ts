import { describe, expect, it, vi } from "vitest";
import {
  PollTimeoutError,
  SessionExhaustedError,
  StateCache,
  ValidationError,
  activityWriteIntervalMs,
  exhaustionError,
  mergeState,
  poll,
  silentLogger,
  validateCreateRequest,
} from "./core.js";

describe("activity write interval", () => {
  it("is min(idle/4, 30 s), or 5 min without an idle timeout", () => {
    expect(activityWriteIntervalMs(4)).toBe(1000);
    expect(activityWriteIntervalMs(60)).toBe(15_000);
    expect(activityWriteIntervalMs(3600)).toBe(30_000);
    expect(activityWriteIntervalMs(null)).toBe(300_000);
  });
});

describe("StateCache", () => {
  it("writes the first activity at once, then at most once per interval, with a trailing write", async () => {
    vi.useFakeTimers();
    try {
      let now = 1_000_000;
      const cache = new StateCache(silentLogger, () => now);
      const writes: number[] = [];
      const write = async (at: number) => {
        writes.push(at);
      };
      cache.touch("s", 1000, write);
      await vi.advanceTimersByTimeAsync(0);
      expect(writes).toEqual([1_000_000]);
      now += 100;
      cache.touch("s", 1000, write);
      now += 100;
      cache.touch("s", 1000, write);
      await vi.advanceTimersByTimeAsync(0);
      expect(writes).toEqual([1_000_000]); // debounced
      expect(cache.get("s")?.lastActiveAt).toBe(1_000_200); // but known at once
      now += 800;
      await vi.advanceTimersByTimeAsync(1000);
      expect(writes).toEqual([1_000_000, 1_000_200]); // the trailing write carries the last activity
    } finally {
      vi.useRealTimers();
    }
  });

  it("close() writes pending activity, then nothing more", async () => {
    let now = 1_700_000_005_000;
    const cache = new StateCache(silentLogger, () => now);
    const writes: number[] = [];
    const write = async (at: number) => {
      writes.push(at);
    };
    cache.touch("s", 60_000, write);
    await new Promise((r) => setImmediate(r));
    now += 10;
    cache.touch("s", 60_000, write);
    await cache.close();
    expect(writes).toEqual([1_700_000_005_000, 1_700_000_005_010]);
    now += 10;
    cache.touch("s", 60_000, write);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([1_700_000_005_000, 1_700_000_005_010]);
  });

  it("a failed write is logged, never thrown, and retried with the next activity", async () => {
    let now = 1_700_000_000_000;
    const warn = vi.fn();
    const cache = new StateCache({ ...silentLogger, warn }, () => now);
    let fail = true;
    const writes: number[] = [];
    const write = async (at: number) => {
      if (fail) throw new Error("engine down");
      writes.push(at);
    };
    // Timers are the test's own: a loaded machine must not let the 10 ms retry fire early.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      cache.touch("s", 10, write);
      await new Promise((r) => setImmediate(r));
      expect(warn).toHaveBeenCalledOnce();
      fail = false;
      now += 20;
      cache.touch("s", 10, write);
      await vi.advanceTimersByTimeAsync(30);
      expect(writes).toEqual([1_700_000_000_020]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("merges state by maximum", () => {
    expect(mergeState({ expiresAt: 5, lastActiveAt: 1 }, { expiresAt: 3, lastActiveAt: 2 })).toEqual({
      expiresAt: 5,
      lastActiveAt: 2,
    });
    expect(mergeState(undefined, {})).toEqual({});
  });
});

describe("exhaustionError", () => {
  const result = (over: object) => ({
    stdout: "",
    stderr: "",
    exitCode: null,
    timedOut: false,
    durationMs: 1,
    files: [],
    ...over,
  });

  it("recognises the runtime or our runner failing to fork", () => {
    const runner = result({
      stderr:
        'Traceback (most recent call last):\n  File "<runner>", line 218, in main\nBlockingIOError: [Errno 11] Resource temporarily unavailable',
    });
    expect(exhaustionError("s", runner)).toBeInstanceOf(SessionExhaustedError);
    const oci = result({
      exitCode: 126,
      stdout:
        "OCI runtime exec failed: exec failed: unable to start container process: resource temporarily unavailable",
    });
    expect(exhaustionError("s", oci)?.status).toBe(409);
    expect(exhaustionError("s", new Error("reading the session state failed (exit 126)"))).toBeInstanceOf(
      SessionExhaustedError,
    );
  });

  it("leaves the program's own output and client errors alone", () => {
    expect(
      exhaustionError("s", result({ exitCode: 1, stderr: "Resource temporarily unavailable" })),
    ).toBeNull();
    expect(exhaustionError("s", result({ stderr: "Resource temporarily unavailable" }))).toBeNull();
    expect(exhaustionError("s", result({ timedOut: true, stderr: 'File "<runner>" EAGAIN' }))).toBeNull();
    expect(exhaustionError("s", new ValidationError("EAGAIN in a path"))).toBeNull();
  });
});

describe("poll", () => {
  it("returns the first defined value, backs off, and times out", async () => {
    let n = 0;
    await expect(
      poll(async () => (++n >= 3 ? n : undefined), { timeoutMs: 1000, intervalMs: 1 }),
    ).resolves.toBe(3);
    await expect(
      poll(async () => undefined, { timeoutMs: 20, intervalMs: 5, backoff: 2 }),
    ).rejects.toBeInstanceOf(PollTimeoutError);
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expect(poll(async () => undefined, { timeoutMs: 1000, signal: ac.signal })).rejects.toThrow("stop");
  });
});

describe("validateCreateRequest", () => {
  it("answers one set of messages", () => {
    const base = { files: [], ttlSeconds: 60, idleTimeoutSeconds: null, metadata: {}, owner: null };
    expect(() => validateCreateRequest({ ...base, ttlSeconds: 0 }, 100)).toThrow(
      "ttl_seconds must be a positive integer",
    );
    expect(() => validateCreateRequest({ ...base, ttlSeconds: 101 }, 100)).toThrow(
      "ttl_seconds 101 exceeds the maximum session lifetime of 100 seconds",
    );
    expect(() => validateCreateRequest({ ...base, idleTimeoutSeconds: -1 }, 100)).toThrow(
      "idle_timeout_seconds must be a positive integer",
    );
    expect(validateCreateRequest({ ...base, idleTimeoutSeconds: 30 }, 100)).toEqual({
      ttlSeconds: 60,
      idleTimeoutSeconds: 30,
      metadata: {},
    });
  });
});
