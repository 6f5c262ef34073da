import { Readable } from "node:stream";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { type ExecutorLimits, type StagedFile } from "@code-interpreter/core";
import { LABEL_POOL, newLifetime, newSessionId, sessionTags } from "@code-interpreter/core/backend-kit";
import {
  KubernetesBackend,
  type KubernetesBackendOptions,
  type KubernetesPlatform,
  type SessionPodInput,
} from "../src/index.js";
import { FakeApiServer, type FakeApiServerOptions } from "./fake-apiserver/server.js";

export const IMAGE = process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest";
export const NAMESPACE = "code-interpreter-test";

export const limits: ExecutorLimits = {
  memoryLimitMb: 256,
  cpuLimit: 1,
  cpuTimeLimitSec: 10,
  pidsLimit: 128,
  workspaceSizeMb: 64,
  tmpSizeMb: 16,
};

export function backendOptions(
  fake: FakeApiServer,
  extra: Partial<KubernetesBackendOptions> = {},
): KubernetesBackendOptions {
  return {
    kubeConfig: fake.kubeConfig(NAMESPACE),
    namespace: NAMESPACE,
    image: IMAGE,
    imagePullPolicy: "IfNotPresent",
    podReadyTimeoutSec: 30,
    limits,
    sessionMaxLifetimeSeconds: 3600,
    maxFileBytes: 10 * 1024 * 1024,
    pollIntervalMs: 100,
    ...extra,
  };
}

export async function startFake(opts?: FakeApiServerOptions): Promise<FakeApiServer> {
  return new FakeApiServer(opts).start();
}

export function makeBackend(
  fake: FakeApiServer,
  extra: Partial<KubernetesBackendOptions> = {},
): KubernetesBackend {
  return new KubernetesBackend(backendOptions(fake, extra));
}

export function staged(path: string, content: string | Buffer): StagedFile {
  const buf = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return { path, size: buf.length, open: () => Promise.resolve(Readable.from([buf])) };
}

/**
 * Polls until `check` is true (or returns a value), for at most `ms`: tests wait for what
 * they need instead of sleeping a fixed time that a loaded machine may overrun.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  ms = 30_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== null && v !== undefined && v !== false) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Session pod input for tests that build pods themselves (not through the backend). */
export function sessionPodInput(
  ttlSeconds: number,
  opts: { maxLifetimeSeconds?: number; idleTimeoutSeconds?: number | null; now?: number } = {},
): SessionPodInput {
  const lifetime = newLifetime(
    opts.now ?? Date.now(),
    ttlSeconds,
    opts.maxLifetimeSeconds ?? 3600,
    opts.idleTimeoutSeconds ?? null,
  );
  const tags = sessionTags(lifetime, { owner: null, metadata: {} });
  return {
    namespace: NAMESPACE,
    image: IMAGE,
    imagePullPolicy: "IfNotPresent",
    limits,
    name: newSessionId(),
    lifetime,
    ...tags,
  };
}

/** Creates a pod through the real client and waits (polling the fake's store) until it runs. */
export async function createRunningPod(fake: FakeApiServer, pod: V1Pod, ns = NAMESPACE): Promise<V1Pod> {
  const core = fake.kubeConfig(ns).makeApiClient(CoreV1Api);
  await core.createNamespacedPod({ namespace: ns, body: pod });
  const name = pod.metadata!.name!;
  await eventually(() => fake.getPod(ns, name)?.status?.phase === "Running", 30_000, `pod ${name} running`);
  return fake.getPod(ns, name) as V1Pod;
}

/** A backend whose platform the test can reach (pool-level calls, as another replica would make them). */
export class ProbedBackend extends KubernetesBackend {
  get k8s(): KubernetesPlatform {
    return this.platform as KubernetesPlatform;
  }
}

/** What a pooled backend's pool reported: claims ("hit:session", "miss:executor", ...) and reaps. */
export interface PoolProbe {
  claims: string[];
  reaped: string[];
  hits(kind?: "session" | "executor"): number;
}

/** A backend with a warm pool of `size` (fast sync for tests), and a probe of what its pool did. */
export function makePooledBackend(
  fake: FakeApiServer,
  size: number,
  extra: Partial<KubernetesBackendOptions> & { maxAgeSeconds?: number; refillConcurrency?: number } = {},
): { backend: ProbedBackend; probe: PoolProbe } {
  const claims: string[] = [];
  const reaped: string[] = [];
  const { maxAgeSeconds, refillConcurrency, ...rest } = extra;
  const backend = new ProbedBackend(
    backendOptions(fake, {
      warmPool: {
        size,
        syncIntervalMs: 300,
        ...(maxAgeSeconds ? { maxAgeSeconds } : {}),
        ...(refillConcurrency ? { refillConcurrency } : {}),
        events: {
          claim: (outcome, kind) => claims.push(`${outcome}:${kind}`),
          reaped: (reason) => reaped.push(reason),
        },
      },
      ...rest,
    }),
  );
  const probe: PoolProbe = {
    claims,
    reaped,
    hits: (kind) => claims.filter((c) => c === `hit:${kind ?? "session"}`).length,
  };
  return { backend, probe };
}

/** Waits until the backend's pool knows `n` ready members. */
export async function poolReady(backend: KubernetesBackend, n: number, ms = 60_000): Promise<void> {
  await eventually(() => (backend.warmPoolStats()?.ready ?? 0) >= n, ms, `${n} ready pool members`);
}

/** The fake's unclaimed member pods (LABEL_POOL present), running or not. */
export function memberPods(fake: FakeApiServer): V1Pod[] {
  return fake
    .podNames(NAMESPACE)
    .map((n) => fake.getPod(NAMESPACE, n) as V1Pod)
    .filter((p) => p?.metadata?.labels?.[LABEL_POOL] !== undefined && !p.metadata?.deletionTimestamp);
}
