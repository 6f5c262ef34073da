/**
 * Issue 4 (session lifetime), backend side, on the real engine: what reap() removes and what it
 * must never touch, and several reapers on the same expired sessions at once.
 *
 * "Keeper-less" sessions below are containers that carry a session's exact name, labels and
 * lifetime but run `sleep` instead of the keeper: they stand for a session whose keeper failed,
 * so the reaper (and only the reaper) has to remove them.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { type ReapReport } from "@code-interpreter/core";
import {
  LABEL_REAP_AFTER,
  newLifetime,
  sessionTags,
  toUnixSeconds,
} from "@code-interpreter/core/backend-kit";
import {
  cleanup,
  docker,
  exists,
  gone,
  makeBackend,
  sessionReq,
  startPlainContainer,
  track,
} from "./helpers.js";

const backend = makeBackend();

afterAll(async () => {
  await backend.close();
  await cleanup();
});

/** A session-shaped container (name + both labels + lifetime labels) whose PID 1 is `sleep`. */
async function keeperlessSession(opts: { createdAgoMs: number; ttlSeconds: number }): Promise<string> {
  const id = `code-session-${randomUUID()}`;
  const lifetime = newLifetime(Date.now() - opts.createdAgoMs, opts.ttlSeconds, 3600, null);
  const tags = sessionTags(lifetime, { owner: null, metadata: { test: "lifecycle-reaper" } });
  await startPlainContainer(id, { ...tags.labels, ...tags.annotations });
  return id;
}

async function running(name: string): Promise<boolean> {
  try {
    return (await docker.getContainer(name).inspect()).State.Running;
  } catch {
    return false;
  }
}

const past = () => toUnixSeconds(Date.now() - 60_000);
const future = () => toUnixSeconds(Date.now() + 3_600_000);
const expiredSessionLabels = () => {
  const t = sessionTags(newLifetime(Date.now() - 120_000, 5, 3600, null), { owner: null, metadata: {} });
  return { ...t.labels, ...t.annotations };
};

describe("reap() on the real engine", { timeout: 120_000 }, () => {
  it("removes expired keeper-less sessions and orphaned executors, and nothing else", async () => {
    const expiredLabels = expiredSessionLabels();
    const survivors = {
      // No labels, unrelated name.
      plain: `ci-lc-plain-${randomUUID()}`,
      // Session name, only one of the two identity labels (plus expired lifetime labels).
      sessionOnlyApp: `code-session-${randomUUID()}`,
      sessionOnlyComponent: `code-session-${randomUUID()}`,
      // Both session labels and expired lifetime, but not a session name.
      labelsWithoutPrefix: `ci-lc-session-${randomUUID()}`,
      // Executor name with a past reap-after, but only one identity label.
      execOnlyComponent: `code-exec-${randomUUID()}`,
      execOnlyApp: `code-exec-${randomUUID()}`,
      // Executor labels, past reap-after, but not an executor name.
      execLabelsWithoutPrefix: `ci-lc-exec-${randomUUID()}`,
      // A real orphan candidate that is still within its timeout + margin.
      execNotDue: `code-exec-${randomUUID()}`,
    };
    const { app: _a, component: _c, ...lifetimeOnly } = expiredLabels;
    await Promise.all([
      startPlainContainer(survivors.plain, {}),
      startPlainContainer(survivors.sessionOnlyApp, { ...lifetimeOnly, app: "code-interpreter" }),
      startPlainContainer(survivors.sessionOnlyComponent, { ...lifetimeOnly, component: "session" }),
      startPlainContainer(survivors.labelsWithoutPrefix, expiredLabels),
      startPlainContainer(survivors.execOnlyComponent, { component: "executor", [LABEL_REAP_AFTER]: past() }),
      startPlainContainer(survivors.execOnlyApp, { app: "code-interpreter", [LABEL_REAP_AFTER]: past() }),
      startPlainContainer(survivors.execLabelsWithoutPrefix, {
        app: "code-interpreter",
        component: "executor",
        [LABEL_REAP_AFTER]: past(),
      }),
      startPlainContainer(survivors.execNotDue, {
        app: "code-interpreter",
        component: "executor",
        [LABEL_REAP_AFTER]: future(),
      }),
    ]);

    const orphan = `code-exec-${randomUUID()}`;
    await startPlainContainer(orphan, {
      app: "code-interpreter",
      component: "executor",
      [LABEL_REAP_AFTER]: past(),
    });
    const expired = await keeperlessSession({ createdAgoMs: 60_000, ttlSeconds: 5 });
    const live = await keeperlessSession({ createdAgoMs: 0, ttlSeconds: 600 });
    const real = await backend.createSession(sessionReq({ ttlSeconds: 600 }));
    track(real.id);

    const report = await backend.reap();
    const names = Object.values(survivors);
    expect(report.reaped).toContainEqual({ id: orphan, reason: "orphaned-executor" });
    expect(report.reaped).toContainEqual({ id: expired, reason: "expired" });
    const mine = [...names, orphan, expired, live, real.id];
    expect(report.failed.filter((f) => mine.includes(f.id))).toEqual([]);
    for (const n of [...names, live, real.id]) {
      expect(report.reaped.map((r) => r.id)).not.toContain(n);
      expect(await running(n), n).toBe(true);
    }
    expect(await gone(orphan)).toBe(true);
    expect(await gone(expired)).toBe(true);
    // The live session is still a working session.
    await expect(backend.getSession(real.id)).resolves.toMatchObject({ id: real.id });
    await backend.deleteSession(real.id);
  });

  it("two backends reaping the same expired sessions at once: no failures, all removed", async () => {
    const ids = await Promise.all(
      Array.from({ length: 6 }, () => keeperlessSession({ createdAgoMs: 30_000, ttlSeconds: 2 })),
    );
    const orphans = Array.from({ length: 2 }, () => `code-exec-${randomUUID()}`);
    await Promise.all(
      orphans.map((n) =>
        startPlainContainer(n, {
          app: "code-interpreter",
          component: "executor",
          [LABEL_REAP_AFTER]: past(),
        }),
      ),
    );
    const mine = [...ids, ...orphans];
    const a = makeBackend();
    const b = makeBackend();
    try {
      // Several rounds each, interleaved, as two API processes on one engine would.
      const rounds = async (x: typeof a): Promise<ReapReport[]> => {
        const out: ReapReport[] = [];
        for (let i = 0; i < 3; i++) out.push(await x.reap());
        return out;
      };
      const reports = (await Promise.all([rounds(a), rounds(b), rounds(backend)])).flat();
      const failed = reports.flatMap((r) => r.failed).filter((f) => mine.includes(f.id));
      expect(failed, JSON.stringify(failed)).toEqual([]);
      const reaped = reports.flatMap((r) => r.reaped).filter((r) => mine.includes(r.id));
      // Every one was removed by exactly one of the reapers; the others saw "already gone".
      expect(new Set(reaped.map((r) => r.id))).toEqual(new Set(mine));
      expect(reaped).toHaveLength(mine.length);
      for (const n of mine) expect(await exists(n), n).toBe(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
