/**
 * The Kubernetes side of the e2e env: backend-k8s's wire-level fake apiserver (real HTTP, the
 * real exec WebSocket protocol, pods validated against the Kubernetes schemas, each pod backed
 * by a real Docker container), and an inspector that looks at the fake's pods and at the
 * containers behind them, never through the backend under test.
 *
 * The fake is a test fixture of the backend-k8s package (not published): it is imported by
 * path, as the one place where the API's tests reach into a sibling package's tests.
 */
import { randomUUID } from "node:crypto";
import Dockerode from "dockerode";
import { dockerExec } from "./docker-platform.js";
import type { PlatformInspector } from "./suite.js";
import { FakeApiServer } from "../../../../packages/backend-k8s/test/fake-apiserver/server.js";

export { FakeApiServer };

interface PodView {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string };
}

export interface K8sInspector extends PlatformInspector {
  cleanup(): Promise<void>;
}

/**
 * `namespace` is the namespace the backend creates pods in. The inspector reads pods from the
 * fake's store (what a `kubectl get pod` would show) and runs commands in the Docker container
 * behind a pod (what `kubectl exec` reaches, with a user override for checks as root).
 */
export function k8sInspector(opts: { fake: FakeApiServer; namespace: string; image: string }): K8sInspector {
  const { fake, namespace, image } = opts;
  const docker = new Dockerode();
  const unrelated: string[] = [];

  const pod = (name: string): PodView | undefined => fake.getPod(namespace, name) as PodView | undefined;

  async function containerOf(name: string): Promise<Dockerode.Container> {
    const list = await docker.listContainers({
      all: true,
      filters: { label: [`fake-k8s-run=${fake.runId}`, `fake-k8s-pod=${namespace}.${name}`] },
    });
    const first = list[0];
    if (!first) throw new Error(`pod ${name} has no container`);
    return docker.getContainer(first.Id);
  }

  return {
    async containerExists(name) {
      return pod(name) !== undefined;
    },

    async isRunning(name) {
      const p = pod(name);
      return p?.status?.phase === "Running" && !p.metadata?.deletionTimestamp;
    },

    async labels(name) {
      const p = pod(name);
      if (!p) throw new Error(`pod ${name} does not exist`);
      return { ...(p.metadata?.labels ?? {}) };
    },

    async exec(name, cmd, execOpts = {}) {
      return dockerExec(docker, await containerOf(name), cmd, execOpts.user);
    },

    createdNames() {
      // Every pod the fake accepted in this namespace, minus the ones the inspector made itself.
      const prefix = `${namespace}/`;
      return fake.created
        .filter((k) => k.startsWith(prefix))
        .map((k) => k.slice(prefix.length))
        .filter((n) => !unrelated.includes(n));
    },

    async listLabelled(component) {
      return fake.podNames(namespace).filter((n) => {
        const l = pod(n)?.metadata?.labels ?? {};
        return l.app === "code-interpreter" && l.component === component;
      });
    },

    async startUnrelated(name) {
      // Through the API like any other client: the fake validates it and backs it with a container.
      unrelated.push(name);
      const res = await fetch(`${fake.url}/api/v1/namespaces/${namespace}/pods`, {
        method: "POST",
        headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name, labels: { "code-interpreter-e2e": "unrelated" } },
          spec: {
            restartPolicy: "Never",
            securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
            containers: [
              {
                name: "main",
                image,
                imagePullPolicy: "IfNotPresent",
                command: ["sleep", "600"],
                securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
              },
            ],
          },
        }),
      });
      if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.status} ${await res.text()}`);
      const deadline = Date.now() + 30_000;
      while (pod(name)?.status?.phase !== "Running") {
        if (Date.now() > deadline) throw new Error(`pod ${name} did not start`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },

    async hardening(name) {
      // What the fake kubelet made of the pod's securityContext, read off the container.
      const info = await (await containerOf(name)).inspect();
      return {
        user: info.Config?.User ?? "",
        networkNone: info.HostConfig?.NetworkMode === "none",
        readOnlyRoot: info.HostConfig?.ReadonlyRootfs === true,
      };
    },

    async cleanup() {
      await Promise.all(
        unrelated.map((n) =>
          fetch(`${fake.url}/api/v1/namespaces/${namespace}/pods/${n}?gracePeriodSeconds=0`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${fake.token}` },
          }).catch(() => undefined),
        ),
      );
    },
  };
}

/** A kubeconfig file body (YAML is a JSON superset) for the fake: what KUBECONFIG points at. */
export function kubeconfigFor(server: { url: string; token: string }, namespace: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "fake", cluster: { server: server.url, "insecure-skip-tls-verify": true } }],
    users: [{ name: "fake-user", user: { token: server.token } }],
    contexts: [{ name: "fake", context: { cluster: "fake", user: "fake-user", namespace } }],
    "current-context": "fake",
  });
}

export const uniqueNamespace = () => `ci-e2e-${randomUUID().slice(0, 8)}`;
