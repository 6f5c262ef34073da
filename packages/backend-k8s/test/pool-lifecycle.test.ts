/**
 * The warm pool on Kubernetes (issue 10), one-shot runs and reaping: each one-shot run claims
 * a member, runs once in it and removes it (no marker of one run is ever seen by another; no
 * pod is left); members are reaped when the pool shrinks, when they near their max age, when
 * the fingerprint (image, limits) changes, and all of them by a drain; a restarted API adopts
 * the members it finds; an orphaned one-shot member is reaped like a cold executor.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LABEL_POOL, executorClaim, type PlatformResource } from "@code-interpreter/core/backend-kit";
import { LABEL_POOL_CLAIMED, type KubernetesBackend, type KubernetesBackendOptions } from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import {
  NAMESPACE,
  eventually,
  limits,
  makePooledBackend,
  memberPods,
  poolReady,
  startFake,
  ProbedBackend,
  backendOptions,
} from "./helpers.js";

const pods = (fake: FakeApiServer): V1Pod[] =>
  fake
    .podNames(NAMESPACE)
    .map((n) => fake.getPod(NAMESPACE, n) as V1Pod)
    .filter(Boolean);
const claimedExecutors = (fake: FakeApiServer) =>
  pods(fake).filter((p) => p.metadata?.labels?.[LABEL_POOL_CLAIMED] === "executor");
const uids = (list: V1Pod[]) => new Set(list.map((p) => p.metadata!.uid!));

describe("one-shot runs from the warm pool", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  let hits: () => number;
  beforeAll(async () => {
    fake = await startFake();
    const pooled = makePooledBackend(fake, 3, { refillConcurrency: 3 });
    backend = pooled.backend;
    hits = () => pooled.probe.hits("executor");
    await poolReady(backend, 3);
  });
  afterAll(async () => {
    await backend?.close();
    await fake?.stop();
  });

  it("10 runs that each write a marker in /workspace and /tmp never see another's; no pod is left", async () => {
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await backend.execute({
        language: "python",
        code: [
          "import os",
          `open('/workspace/marker-${i}', 'w').write('x')`,
          `open('/tmp/marker-${i}', 'w').write('x')`,
          "print(sorted(f for f in os.listdir('/workspace') + os.listdir('/tmp') if f.startswith('marker')))",
        ].join("\n"),
        timeoutMs: 10_000,
        maxOutputBytes: 65_536,
        files: [],
      });
      expect(r.exitCode).toBe(0);
      seen.push(r.stdout.trim());
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `['marker-${i}', 'marker-${i}']`));
    // The claim path was used (the pool has 3 and refills between runs).
    expect(hits()).toBeGreaterThanOrEqual(3);
    // Each claimed member is removed after its one run: only unclaimed members remain.
    await eventually(() => claimedExecutors(fake).length === 0, 30_000, "claimed one-shot pods removed");
    await eventually(
      () => pods(fake).every((p) => p.metadata?.labels?.[LABEL_POOL] !== undefined),
      30_000,
      "only members left",
    );
  }, 180_000);

  it("an orphaned one-shot member (its API died mid-run) is reaped like a cold executor", async () => {
    const platform = (backend as ProbedBackend).k8s;
    const now = Date.now();
    // Another replica's claim, made on a running member (the pool may be replacing some).
    let m: PlatformResource | undefined;
    const claimed = await eventually(
      async () => {
        m = (await platform.pool.listMembers()).find((r) => r.phase === "running");
        return m ? platform.pool.claimMember(m, executorClaim(now - 5000, now - 10_000)) : null;
      },
      30_000,
      "a claimed member",
    );
    expect(claimed?.name).toMatch(/^code-exec-/);
    // Listed as an executor under its executor name, not as a session.
    expect((await platform.listExecutors()).map((r) => r.name)).toContain(claimed!.name);
    expect((await backend.listSessions()).map((s) => s.id)).not.toContain(m!.name);
    const report = await backend.reap(Date.now());
    expect(report.reaped).toContainEqual({ id: claimed!.name, reason: "orphaned-executor" });
    await eventually(() => !fake.getPod(NAMESPACE, m!.name), 30_000, "orphan pod deleted");
  });
});

describe("reaping members", () => {
  let fake: FakeApiServer;
  const backends: KubernetesBackend[] = [];
  beforeAll(async () => {
    fake = await startFake();
  });
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.close();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("a restarted API adopts the members; a smaller pool reaps the extra ones; a drain removes all", async () => {
    const first = makePooledBackend(fake, 3, { refillConcurrency: 3 });
    await poolReady(first.backend, 3);
    await first.backend.close(); // a restart: the members stay
    const before = uids(memberPods(fake));
    expect(before.size).toBe(3);
    const second = makePooledBackend(fake, 1);
    backends.push(second.backend);
    await eventually(() => memberPods(fake).length === 1, 30_000, "shrunk to 1");
    // Adopted, not replaced: the one left is one of the first API's.
    expect(before.has([...uids(memberPods(fake))][0]!)).toBe(true);
    expect(second.probe.reaped.filter((r) => r === "shrink")).toHaveLength(2);
    expect(await second.backend.drainWarmPool()).toBe(1);
    await eventually(() => memberPods(fake).length === 0, 30_000, "drained");
  });

  it("the fingerprint changes with the image, pull policy, limits, runtime class and max lifetime", () => {
    const fp = (extra: Partial<KubernetesBackendOptions>) => {
      const b = new ProbedBackend(backendOptions(fake, extra));
      void b.close();
      return b.k8s.pool.fingerprint;
    };
    const base = fp({});
    expect(fp({})).toBe(base);
    for (const extra of [
      { image: "registry.example/executor:2" },
      { imagePullPolicy: "Always" as const },
      { limits: { ...limits, memoryLimitMb: 512 } },
      { runtimeClass: "gvisor" },
      { sessionMaxLifetimeSeconds: 7200 },
    ])
      expect(fp(extra)).not.toBe(base);
  });

  it("members made with other limits (another fingerprint) are replaced", async () => {
    const old = makePooledBackend(fake, 1);
    await poolReady(old.backend, 1);
    await old.backend.close();
    const oldUids = uids(memberPods(fake));
    const next = makePooledBackend(fake, 1, { limits: { ...limits, cpuLimit: 0.5 } });
    backends.push(next.backend);
    await eventually(
      () => {
        const now = memberPods(fake).filter((p) => p.status?.phase === "Running");
        return now.length === 1 && !oldUids.has(now[0]!.metadata!.uid!);
      },
      60_000,
      "replaced member",
    );
    expect(next.probe.reaped).toContain("fingerprint");
    expect(memberPods(fake)[0]!.spec!.containers[0]!.resources!.limits!.cpu).toBe("500m");
    await next.backend.drainWarmPool();
  });

  it("members near their max age are reaped and replaced", async () => {
    const aged = makePooledBackend(fake, 1, { maxAgeSeconds: 4 });
    backends.push(aged.backend);
    await poolReady(aged.backend, 1);
    const first = uids(memberPods(fake));
    await eventually(() => aged.probe.reaped.includes("max-age"), 30_000, "max-age reap");
    await eventually(
      () => memberPods(fake).some((p) => !first.has(p.metadata!.uid!) && p.status?.phase === "Running"),
      30_000,
      "a new member",
    );
    await aged.backend.drainWarmPool();
  });
});
