/**
 * Pod plumbing: create a pod and wait until it runs (failing fast on image and container
 * errors, deleting it on any failure), delete with a uid precondition, look up the API's
 * own Deployment for ownerReferences.
 */
import { AppsV1Api, type CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { BackendError, type Logger } from "@code-interpreter/core";
import { PollTimeoutError, poll } from "@code-interpreter/core/backend-kit";
import { isNotFound, toCoreError } from "./k8s-errors.js";
import { EXECUTOR_CONTAINER } from "./pod-spec.js";

/** Waiting reasons that mean the image will not come (fail fast instead of waiting). */
const IMAGE_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"]);
/** Waiting reasons that mean the container cannot be created at all. */
const CREATE_FAILURES = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

const DELETE_GRACE_SECONDS = 1;

export interface PodsOptions {
  core: CoreV1Api;
  namespace: string;
  image: string;
  podReadyTimeoutSec: number;
  /** First wait between pod reads while it starts (backs off to 1 s). */
  pollIntervalMs: number;
  logger: Logger;
}

export class Pods {
  constructor(private readonly o: PodsOptions) {}

  /** Creates the pod and waits until it runs; on any failure the pod is deleted first. */
  async createAndStart(pod: V1Pod, signal?: AbortSignal): Promise<V1Pod> {
    const name = pod.metadata!.name!;
    let created: V1Pod;
    try {
      created = await this.o.core.createNamespacedPod({ namespace: this.o.namespace, body: pod });
    } catch (err) {
      throw toCoreError(err, `create pod ${name}`);
    }
    try {
      return await this.waitRunning(name, signal);
    } catch (err) {
      await this.deleteQuietly(name, created.metadata?.uid);
      throw err;
    }
  }

  private async waitRunning(name: string, signal?: AbortSignal): Promise<V1Pod> {
    let last: V1Pod | null = null;
    try {
      return await poll(
        async () => {
          try {
            last = await this.o.core.readNamespacedPod({ name, namespace: this.o.namespace });
          } catch (err) {
            if (isNotFound(err)) throw new BackendError(`pod ${name} disappeared while starting`);
            throw toCoreError(err, `read pod ${name}`);
          }
          return this.startedOrFailed(name, last);
        },
        {
          timeoutMs: this.o.podReadyTimeoutSec * 1000,
          intervalMs: this.o.pollIntervalMs,
          backoff: 1.5,
          maxIntervalMs: 1000,
          signal,
        },
      );
    } catch (err) {
      if (err instanceof PollTimeoutError) {
        throw new BackendError(
          `pod ${name} was not running after ${this.o.podReadyTimeoutSec}s (${describePending(last)})`,
        );
      }
      if (signal?.aborted) throw new BackendError("the request was cancelled while the pod was starting");
      throw err;
    }
  }

  /** The pod once Running; throws when it will never run; undefined while it may still start. */
  private startedOrFailed(name: string, pod: V1Pod): V1Pod | undefined {
    const phase = pod.status?.phase;
    if (phase === "Running") return pod;
    if (phase === "Succeeded" || phase === "Failed") {
      const reason = pod.status?.reason ? `, ${pod.status.reason}` : "";
      const message = pod.status?.message ? `: ${pod.status.message}` : "";
      throw new BackendError(`pod ${name} ended before it was ready (phase ${phase}${reason}${message})`);
    }
    for (const cs of [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]) {
      const waiting = cs.state?.waiting;
      const reason = waiting?.reason ?? "";
      const detail = waiting?.message ? `: ${waiting.message}` : "";
      if (IMAGE_FAILURES.has(reason)) {
        throw new BackendError(
          `pod ${name} cannot start: image ${JSON.stringify(cs.image || this.o.image)} could not be pulled (${reason}${detail})`,
        );
      }
      if (CREATE_FAILURES.has(reason)) {
        throw new BackendError(`pod ${name} cannot start: container ${cs.name} ${reason}${detail}`);
      }
      const terminated = cs.state?.terminated;
      if (terminated && terminated.exitCode !== 0 && cs.name !== EXECUTOR_CONTAINER) {
        const why = terminated.reason ? `, ${terminated.reason}` : "";
        throw new BackendError(
          `pod ${name} cannot start: init container ${cs.name} failed (exit ${terminated.exitCode}${why})`,
        );
      }
    }
    return undefined;
  }

  /** Deletes a pod; with `uid`, only exactly that pod (a precondition). */
  delete(name: string, uid?: string): Promise<V1Pod> {
    return this.o.core.deleteNamespacedPod({
      name,
      namespace: this.o.namespace,
      gracePeriodSeconds: DELETE_GRACE_SECONDS,
      propagationPolicy: "Background",
      body: {
        gracePeriodSeconds: DELETE_GRACE_SECONDS,
        propagationPolicy: "Background",
        ...(uid ? { preconditions: { uid } } : {}),
      },
    });
  }

  /** Deletes a pod; never throws, logs failures. */
  async deleteQuietly(name: string, uid?: string): Promise<void> {
    try {
      await this.delete(name, uid);
    } catch (err) {
      if (!isNotFound(err)) this.o.logger.warn({ sessionId: name, err: String(err) }, "deleting pod failed");
    }
  }
}

/** The API's Deployment (for ownerReferences), looked up once; a failure is retried next time. */
export function ownerLookup(
  kc: KubeConfig,
  namespace: string,
  name: string | undefined,
): () => Promise<{ name: string; uid: string } | undefined> {
  let cached: Promise<{ name: string; uid: string } | undefined> | null = null;
  return () => {
    if (!name) return Promise.resolve(undefined);
    cached ??= kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name, namespace })
      .then(
        (d) => {
          const uid = d.metadata?.uid;
          if (!uid) throw new BackendError(`Deployment ${name} has no uid`);
          return { name, uid };
        },
        (err: unknown) => {
          cached = null;
          if (isNotFound(err)) {
            throw new BackendError(
              `owner Deployment ${JSON.stringify(name)} not found in namespace ${namespace} (KUBERNETES_OWNER_DEPLOYMENT)`,
            );
          }
          throw toCoreError(err, `read Deployment ${name}`);
        },
      );
    return cached;
  };
}

function describePending(pod: V1Pod | null): string {
  if (!pod) return "no status";
  const parts = [`phase ${pod.status?.phase ?? "unknown"}`];
  for (const c of pod.status?.conditions ?? []) {
    if (c.status === "False" && (c.reason || c.message)) {
      parts.push(`${c.type} ${c.reason ?? ""}${c.message ? `: ${c.message}` : ""}`.trim());
    }
  }
  for (const cs of pod.status?.containerStatuses ?? []) {
    const w = cs.state?.waiting;
    if (w?.reason) parts.push(`${cs.name} waiting: ${w.reason}${w.message ? ` (${w.message})` : ""}`);
  }
  return parts.join("; ");
}
