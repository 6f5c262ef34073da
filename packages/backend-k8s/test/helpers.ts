import { Readable } from "node:stream";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { type ExecutorLimits, type StagedFile } from "@code-interpreter/core";
import { newLifetime, newSessionId, sessionTags } from "@code-interpreter/core/backend-kit";
import { KubernetesBackend, type KubernetesBackendOptions, type SessionPodInput } from "../src/index.js";
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
