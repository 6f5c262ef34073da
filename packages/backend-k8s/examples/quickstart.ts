/**
 * The README's usage example, as a file the package's tests compile and run (against the
 * fake apiserver, test/examples.test.ts). Every option has a default: the kube config from
 * $KUBECONFIG / ~/.kube/config or the in-cluster service account, namespace "default", the
 * image "code-interpreter-executor:latest", DEFAULT_EXECUTOR_LIMITS.
 */
import type { KubeConfig } from "@kubernetes/client-node";
// In your project: import { createKubernetesBackend } from "@code-interpreter/backend-k8s";
import { createKubernetesBackend } from "../src/index.js";

export async function quickstart(
  opts: { kubeConfig?: KubeConfig; namespace?: string } = {},
): Promise<string> {
  const backend = createKubernetesBackend(opts);
  try {
    await backend.ping(); // BackendUnavailableError (503) when the API server does not answer
    const s = await backend.createSession({
      files: [],
      ttlSeconds: 600,
      idleTimeoutSeconds: null,
      metadata: {},
      owner: null,
    });
    const r = await backend.execInSession(s.id, {
      language: "python",
      code: "1 + 1",
      timeoutMs: 10_000,
      maxOutputBytes: 1_000_000,
    });
    await backend.deleteSession(s.id);
    return r.stdout;
  } finally {
    await backend.close();
  }
}
