/**
 * Issue 4: the API's reaper (startReaper) on the real engine — what it must never touch, the
 * orphaned one-shot executor it must remove, and two API processes reaping the same expired
 * sessions at the same time.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LABEL_REAP_AFTER, toUnixSeconds } from "@code-interpreter/core/backend-kit";
import { LocalFileStore } from "@code-interpreter/files-client";
import { startReaper } from "../../src/index.js";
import { testConfig } from "../helpers.js";
import {
  captureLogs,
  dockerBackend,
  exists,
  isRunning,
  lifecycleEnv,
  removeTracked,
  seedContainer,
  seedKeeperlessSession,
  waitFor,
} from "./helpers.js";

const owner = `lc-reapers-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  await removeTracked([owner]);
});

describe("two reapers on one engine", { timeout: 120_000 }, () => {
  it("remove every expired session and the orphaned executor exactly once, with no errors, and touch nothing else", async () => {
    const config = testConfig(lifecycleEnv({ SESSION_REAPER_INTERVAL_SECONDS: "0.5" }));
    const dir = await mkdtemp(join(tmpdir(), "ci-lifecycle-reapers-"));

    // Must survive: not a session, and session-named containers with only one identity label.
    const plain = `ci-lc-plain-${randomUUID()}`;
    const onlyApp = `code-session-${randomUUID()}`;
    const onlyComponent = `code-session-${randomUUID()}`;
    const expiredLabels = { "code-interpreter.dev/created-at": "1", "code-interpreter.dev/expires-at": "2" };
    await Promise.all([
      seedContainer(plain, {}),
      seedContainer(onlyApp, { ...expiredLabels, app: "code-interpreter" }),
      seedContainer(onlyComponent, { ...expiredLabels, component: "session" }),
    ]);
    // Must go: an orphaned one-shot executor (past its reap-after) and expired sessions whose
    // keeper failed (only a reaper can end them).
    const orphan = `code-exec-${randomUUID()}`;
    await seedContainer(orphan, {
      app: "code-interpreter",
      component: "executor",
      [LABEL_REAP_AFTER]: toUnixSeconds(Date.now() - 1_000),
    });
    const expired = await Promise.all(
      Array.from({ length: 6 }, () =>
        seedKeeperlessSession({ owner, createdAt: Date.now() - 30_000, ttlSeconds: 5 }).then((s) => s.id),
      ),
    );
    const doomed = [orphan, ...expired];

    const reapers = [0, 1].map(() => {
      const logs = captureLogs();
      const backend = dockerBackend(config);
      const files = new LocalFileStore({ dir, maxFileBytes: 1024, ttlSeconds: 3600 });
      const reaper = startReaper({
        backend,
        files,
        intervalSeconds: config.sessionReaperIntervalSeconds,
        logger: logs.logger,
      });
      return { logs, backend, reaper };
    });
    try {
      const took = await waitFor(
        async () => (await Promise.all(doomed.map(exists))).every((e) => !e),
        20_000,
      );
      expect(took, "not everything was reaped within 20 s").not.toBeNull();
      // A few more passes of both, with nothing of ours left to do.
      await Promise.all(reapers.map((r) => r.reaper.runOnce()));
    } finally {
      await Promise.all(reapers.map((r) => r.reaper.stop()));
      await Promise.all(reapers.map((r) => r.backend.close()));
      await rm(dir, { recursive: true, force: true });
    }

    const lines = reapers.flatMap((r) => r.logs.lines);
    // Nothing surfaced: no failed pass, no failed reap of ours.
    expect(lines.filter((l) => l.msg === "reaper pass failed")).toEqual([]);
    expect(lines.filter((l) => l.msg === "reap failed" && doomed.includes(l.session as string))).toEqual([]);
    // Each reaped (and logged with its reason) by exactly one of the two.
    const reaped = lines.filter((l) => l.msg === "reaped" && doomed.includes(l.session as string));
    expect(reaped.map((l) => l.session).sort()).toEqual([...doomed].sort());
    expect(reaped.find((l) => l.session === orphan)?.reason).toBe("orphaned-executor");
    for (const id of expired) expect(reaped.find((l) => l.session === id)?.reason).toBe("expired");
    for (const n of [plain, onlyApp, onlyComponent]) expect(await isRunning(n), n).toBe(true);
  });
});
