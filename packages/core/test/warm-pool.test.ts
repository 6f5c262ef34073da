import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PlatformResource } from "../src/sessions/platform.js";
import {
  InMemoryPoolPlatform,
  LABEL_POOL,
  LABEL_REAP_AFTER,
  WarmPool,
  claimedName,
  executorClaim,
  hasComponentLabels,
  isExecutorName,
  isPoolMemberName,
  isSessionId,
  memberLabels,
  newLifetime,
  newPoolMemberName,
  parseClaimRecord,
  poolFingerprint,
  sessionClaim,
  sessionFromTags,
  sessionTags,
  silentLogger,
  type ClaimRecord,
  type WarmPoolOptions,
} from "./core.js";

const pools: WarmPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(platform: InMemoryPoolPlatform, opts: Partial<WarmPoolOptions> = {}): WarmPool {
  const p = new WarmPool(platform, { size: 2, syncIntervalMs: 50, ...opts });
  pools.push(p);
  return p;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(5);
  }
}

function claimForSession(owner: string | null = null): (m: PlatformResource) => ClaimRecord {
  return (m) => {
    const lifetime = newLifetime(Date.now(), 60, 3600, null);
    const tags = sessionTags(lifetime, { owner, metadata: { who: owner ?? "" } });
    return sessionClaim(
      {
        id: claimedName(m.name, "session"),
        labels: tags.labels,
        annotations: tags.annotations,
        lifetime,
        keeperIdleTimeoutSeconds: null,
      },
      Date.now(),
    );
  };
}

describe("WarmPool", () => {
  it("fills to its size in the background and claims turn members into sessions with their uuid", async () => {
    const platform = new InMemoryPoolPlatform();
    const sizes: number[] = [];
    const p = pool(platform, { size: 3, events: { size: (n) => sizes.push(n) } });
    p.start();
    await until(() => p.stats().ready === 3);
    expect(platform.members()).toHaveLength(3);
    for (const m of platform.members()) {
      expect(isPoolMemberName(m.name)).toBe(true);
      expect(hasComponentLabels(m.tags, "session")).toBe(true);
      expect(m.tags[LABEL_POOL]).toBe(platform.fingerprint);
    }
    const before = platform.members().map((m) => m.name);
    const r = await p.claim("session", claimForSession("alice"));
    expect(r).not.toBeNull();
    expect(isSessionId(r!.name)).toBe(true);
    expect(before).toContain(r!.name.replace("code-session-", "code-pool-"));
    const info = sessionFromTags(r!.name, r!.tags, {}, "running");
    expect(info).toMatchObject({ owner: "alice", metadata: { who: "alice" } });
    // Refilled to its size again, without anyone asking.
    await until(() => p.stats().ready === 3 && platform.members().length === 3);
    expect(sizes.at(-1)).toBe(3);
  });

  it("a claim never waits for a refill: an empty pool answers a miss at once", async () => {
    const platform = new InMemoryPoolPlatform({ createDelayMs: 2000 });
    const claims: Array<[string, string]> = [];
    const p = pool(platform, { size: 2, events: { claim: (outcome, kind) => claims.push([outcome, kind]) } });
    p.start();
    const started = Date.now();
    expect(await p.claim("session", claimForSession())).toBeNull();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(claims).toEqual([["miss", "session"]]);
    expect(p.stats().creating).toBe(2);
  });

  it("counts hits and misses and reports claim durations", async () => {
    const platform = new InMemoryPoolPlatform();
    const seen: Array<{ outcome: string; seconds: number }> = [];
    const p = pool(platform, {
      size: 1,
      events: { claim: (outcome, _k, seconds) => seen.push({ outcome, seconds }) },
    });
    p.start();
    await until(() => p.stats().ready === 1);
    expect(await p.claim("executor", () => executorClaim(Date.now() + 5000, Date.now()))).not.toBeNull();
    expect(await p.claim("executor", () => executorClaim(Date.now() + 5000, Date.now()))).toBeNull();
    expect(seen.map((s) => s.outcome)).toEqual(["hit", "miss"]);
    for (const s of seen) expect(s.seconds).toBeGreaterThanOrEqual(0);
  });

  it("two pools (two API processes) on one platform never hand out the same member", async () => {
    const platform = new InMemoryPoolPlatform({ claimDelayMs: 2 });
    const a = pool(platform, { size: 6 });
    const b = pool(platform, { size: 6 });
    a.start();
    await until(() => a.stats().ready === 6);
    b.start();
    await until(() => b.stats().ready >= 6);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claim("session", claimForSession())),
    );
    const got = results.filter((r): r is PlatformResource => r !== null);
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((r) => r.name)).size).toBe(got.length);
    expect(new Set(got.map((r) => r.handle)).size).toBe(got.length);
    // Each claimed resource on the platform belongs to exactly one claim.
    expect(platform.claimed()).toHaveLength(got.length);
  });

  it("adopts members it finds (a restarted API) and reaps those of another fingerprint", async () => {
    const platform = new InMemoryPoolPlatform({ fingerprint: poolFingerprint({ image: "new" }) });
    const old = poolFingerprint({ image: "old" });
    const adopted = platform.plant({ name: newPoolMemberName(), tags: memberLabels(platform.fingerprint) });
    const stale = platform.plant({ name: newPoolMemberName(), tags: memberLabels(old) });
    const reaped: string[] = [];
    const p = pool(platform, { size: 2, events: { reaped: (why) => reaped.push(why) } });
    p.start();
    await until(() => p.stats().ready === 2);
    const names = platform.members().map((m) => m.name);
    expect(names).toContain(adopted.name);
    expect(names).not.toContain(stale.name);
    expect(reaped).toEqual(["fingerprint"]);
    expect(platform.creates).toBe(1);
  });

  it("reaps members near their max age, stopped ones, and never claims one about to end", async () => {
    let now = Date.now();
    const platform = new InMemoryPoolPlatform();
    const stopped = platform.plant({
      name: newPoolMemberName(),
      tags: memberLabels("fp-1"),
      phase: "stopped",
    });
    const reaped: string[] = [];
    const p = pool(platform, {
      size: 2,
      maxAgeSeconds: 100,
      claimMarginMs: 10_000,
      now: () => now,
      events: { reaped: (why) => reaped.push(why) },
    });
    p.start();
    await until(() => p.stats().ready === 2);
    expect(platform.members().map((m) => m.name)).not.toContain(stopped.name);
    const first = platform.members().map((m) => m.name);
    await until(() => reaped.length === 1);
    expect(reaped).toEqual(["stopped"]);
    now += 91_000; // 9 s left of 100: inside the margin
    const r = await p.claim("session", claimForSession());
    // The old ones were reaped on the way; the claim missed rather than hand out a dying member.
    expect(r).toBeNull();
    await until(() => platform.members().every((m) => !first.includes(m.name)) && p.stats().ready === 2);
    expect(reaped).toEqual(["stopped", "max-age", "max-age"]);
  });

  it("shrinks to a smaller size: the oldest members go", async () => {
    const platform = new InMemoryPoolPlatform();
    const big = pool(platform, { size: 4 });
    big.start();
    await until(() => big.stats().ready === 4);
    await big.close();
    const reaped: string[] = [];
    const small = pool(platform, { size: 1, events: { reaped: (why) => reaped.push(why) } });
    small.start();
    await until(() => platform.members().length === 1);
    expect(reaped).toEqual(["shrink", "shrink", "shrink"]);
    expect(small.stats().ready).toBe(1);
  });

  it("keeps members + sessions within the global cap", async () => {
    const platform = new InMemoryPoolPlatform();
    let sessions = 3;
    const p = pool(platform, { size: 4, maxTotal: 5, countSessions: async () => sessions });
    p.start();
    await until(() => p.stats().ready === 2);
    await sleep(200);
    expect(platform.members()).toHaveLength(2);
    sessions = 4; // one more session elsewhere: one member must go
    await until(() => platform.members().length === 1);
    sessions = 0;
    await until(() => platform.members().length === 4);
  });

  it("a listing that started before a claim neither reaps the claimed session nor offers it again", async () => {
    const platform = new InMemoryPoolPlatform();
    const p = pool(platform, {
      size: 1,
      maxTotal: 1,
      countSessions: async () => platform.claimed().length,
      syncIntervalMs: 60_000,
    });
    p.start();
    await until(() => p.stats().ready === 1);
    // A slow listing: it answers what the platform held before the claim below.
    const stale = platform.members();
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    platform.listMembers = async () => {
      await answered;
      return stale;
    };
    const syncing = p.sync();
    const claimed = await p.claim("session", claimForSession());
    expect(claimed).not.toBeNull();
    answer();
    await syncing;
    await sleep(20);
    // The cap (1) is full with the new session: a stale listing must not count its member as
    // excess and remove it, nor put it back into the ready set.
    expect(platform.claimed()).toHaveLength(1);
    expect(p.stats().ready).toBe(0);
  });

  it("a member still being warmed is not offered by a listing that finds it", async () => {
    const platform = new InMemoryPoolPlatform();
    let warmed!: () => void;
    const gate = new Promise<void>((r) => (warmed = r));
    const p = pool(platform, { size: 1, syncIntervalMs: 60_000, warm: () => gate });
    p.start();
    await until(() => platform.members().length === 1);
    await p.sync();
    expect(p.stats().ready).toBe(0);
    expect(await p.claim("session", claimForSession())).toBeNull();
    warmed();
    await until(() => p.stats().ready === 1);
  });

  it("a refill failure is logged at info, backs off, and the pool recovers", async () => {
    const platform = new InMemoryPoolPlatform();
    platform.failCreates = 2;
    const info = vi.fn();
    const failures: unknown[] = [];
    const p = pool(platform, {
      size: 1,
      logger: { ...silentLogger, info },
      events: { refillFailed: (e) => failures.push(e) },
    });
    p.start();
    await until(() => p.stats().ready === 1, 10_000);
    expect(failures).toHaveLength(2);
    expect(info).toHaveBeenCalledWith(
      expect.objectContaining({ err: expect.stringContaining("refused") }),
      "warm pool refill failed",
    );
  });

  it("a member whose claim fails is skipped: the next one is claimed", async () => {
    const platform = new InMemoryPoolPlatform();
    const p = pool(platform, { size: 2 });
    p.start();
    await until(() => p.stats().ready === 2);
    platform.failClaims = 1;
    const r = await p.claim("session", claimForSession());
    expect(r).not.toBeNull();
    expect(platform.claimed()).toHaveLength(1);
  });

  it("a member whose warm-up fails is removed and never offered", async () => {
    const platform = new InMemoryPoolPlatform();
    let fail = true;
    const p = pool(platform, {
      size: 1,
      warm: async () => {
        if (fail) {
          fail = false;
          throw new Error("agent did not start");
        }
      },
    });
    p.start();
    await until(() => p.stats().ready === 1, 10_000);
    expect(platform.members()).toHaveLength(1);
    expect(platform.creates).toBe(2);
  });

  it("close() stops refilling and leaves members for the next process; drain() removes them all", async () => {
    const platform = new InMemoryPoolPlatform();
    const p = pool(platform, { size: 2 });
    p.start();
    await until(() => p.stats().ready === 2);
    await p.close();
    expect(await p.claim("session", claimForSession())).toBeNull();
    expect(platform.members()).toHaveLength(2);
    const next = pool(platform, { size: 2 });
    next.start();
    await until(() => next.stats().ready === 2);
    expect(platform.creates).toBe(2);
    expect(await next.drain()).toBe(2);
    expect(platform.members()).toHaveLength(0);
  });

  it("size 0 makes nothing and always misses", async () => {
    const platform = new InMemoryPoolPlatform();
    const p = pool(platform, { size: 0 });
    p.start();
    await sleep(100);
    expect(platform.creates).toBe(0);
    expect(await p.claim("session", claimForSession())).toBeNull();
  });
});

describe("claim records", () => {
  it("round-trip, and anything else is not one", () => {
    const rec = executorClaim(1_700_000_010_000, 1_700_000_000_000);
    expect(parseClaimRecord(JSON.parse(JSON.stringify(rec)))).toEqual(rec);
    expect(hasComponentLabels(rec.tags, "executor")).toBe(true);
    expect(rec.tags[LABEL_REAP_AFTER]).toBe("1700000010");
    for (const bad of [
      null,
      [],
      "x",
      { ...rec, as: "admin" },
      { ...rec, tags: { a: 1 } },
      { ...rec, keeper: {} },
    ]) {
      expect(parseClaimRecord(bad)).toBeNull();
    }
  });

  it("names follow the member's uuid; the fingerprint changes with what a member is made of", () => {
    const m = newPoolMemberName();
    expect(isSessionId(claimedName(m, "session"))).toBe(true);
    expect(isExecutorName(claimedName(m, "executor"))).toBe(true);
    expect(claimedName(m, "session").slice(-36)).toBe(m.slice(-36));
    expect(() => claimedName("code-session-x", "session")).toThrow();
    const a = poolFingerprint({ image: "i", limits: { memoryLimitMb: 256, cpuLimit: 1 } });
    expect(poolFingerprint({ limits: { cpuLimit: 1, memoryLimitMb: 256 }, image: "i" })).toBe(a);
    expect(poolFingerprint({ image: "i", limits: { memoryLimitMb: 512, cpuLimit: 1 } })).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{20}$/);
  });
});
