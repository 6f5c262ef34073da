/**
 * The end-to-end suite with EXECUTOR_BACKEND=kubernetes: the same HTTP tests as the Docker
 * run, against backend-k8s's fake apiserver (real HTTP + exec WebSocket, real
 * @kubernetes/client-node, pods backed by real Docker containers). The backend is built the
 * way the binary builds it — `createBackendFromConfig` from env, with KUBECONFIG pointing at
 * a kubeconfig file — so switching backends is a config change and nothing else.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Backend } from "@code-interpreter/core";
import { loadConfig } from "../../src/config.js";
import { LocalFileStore } from "@code-interpreter/files-client";
import { createBackendFromConfig } from "../../src/index.js";
import { FakeApiServer, k8sInspector, kubeconfigFor, uniqueNamespace } from "./k8s-platform.js";
import { describeApiE2E, type E2EEnv } from "./suite.js";
import { E2E_ENV, FaultyFileStore, listenApp, requireDockerEngine } from "./support.js";

function configFor(namespace: string, overrides: Record<string, string> = {}) {
  return loadConfig({
    ...E2E_ENV,
    ...overrides,
    EXECUTOR_BACKEND: "kubernetes",
    KUBERNETES_EXECUTOR_NAMESPACE: namespace,
    KUBERNETES_IMAGE_PULL_POLICY: "IfNotPresent",
    KUBERNETES_POD_READY_TIMEOUT_SEC: "30",
  });
}

/** Builds the backend exactly as the binary does, with KUBECONFIG set only for the call. */
async function backendFromKubeconfig(
  path: string,
  namespace: string,
  overrides: Record<string, string> = {},
): Promise<Backend> {
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = path;
  try {
    return await createBackendFromConfig(configFor(namespace, overrides), pino({ level: "silent" }));
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
}

async function setup(): Promise<E2EEnv> {
  await requireDockerEngine();
  const namespace = uniqueNamespace();
  const config = configFor(namespace);
  const dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-k8s-"));
  const files = new FaultyFileStore(
    new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: config.fileTtlSec }),
  );
  const fake = await new FakeApiServer().start();
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, kubeconfigFor(fake, namespace));
  const backend = await backendFromKubeconfig(kubeconfig, namespace);
  const server = await listenApp({ backend, files, config });
  const inspect = k8sInspector({ fake, namespace, image: config.executorImage });

  return {
    baseUrl: server.baseUrl,
    backendKind: "kubernetes",
    limits: { maxOutputBytes: config.maxOutputBytes, maxExecTimeoutMs: config.maxExecTimeoutMs },
    inspect,
    failFileOpen: (fileId) => files.failOpen(fileId),
    startUnreachable: async () => {
      // A kubeconfig whose server is a port where nothing listens.
      const deadConfig = join(dir, "kubeconfig-dead");
      await writeFile(deadConfig, kubeconfigFor({ url: "http://127.0.0.1:9", token: "x" }, namespace));
      const dead = await backendFromKubeconfig(deadConfig, namespace);
      return listenApp({ backend: dead, files, config });
    },
    startWith: async (overrides) => {
      const backend = await backendFromKubeconfig(kubeconfig, namespace, overrides);
      return listenApp({ backend, files, config: configFor(namespace, overrides) });
    },
    close: async () => {
      await server.close();
      await inspect.cleanup();
      await fake.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeApiE2E("kubernetes (fake apiserver, Docker-backed pods)", setup);
