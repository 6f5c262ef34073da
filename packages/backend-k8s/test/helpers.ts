import { Readable } from "node:stream";
import type { ExecutorLimits, StagedFile } from "@code-interpreter/core";
import { KubernetesBackend, type KubernetesBackendOptions } from "../src/index.js";
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
