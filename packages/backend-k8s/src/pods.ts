/**
 * Pod plumbing of the backend: start a pod (pod-start.ts: create, wait until it runs, fail
 * fast on capacity, image and container errors, delete it on any failure), delete with a uid
 * precondition, look up the API's own Deployment for ownerReferences.
 */
import { AppsV1Api, type CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { BackendError, type Logger } from "@code-interpreter/core";
import { isNotFound, toCoreError } from "./k8s-errors.js";
import { deletePodQuietly, startPod } from "./pod-start.js";

const DELETE_GRACE_SECONDS = 1;

export interface PodsOptions {
  core: CoreV1Api;
  namespace: string;
  podReadyTimeoutSec: number;
  /** First wait between pod reads while it starts (backs off to 1 s). */
  pollIntervalMs: number;
  logger: Logger;
}

export class Pods {
  constructor(private readonly o: PodsOptions) {}

  /**
   * Creates the pod and waits until it runs; on any failure the pod is deleted first. A pod
   * the scheduler cannot place for lack of room is a CapacityError (429) within a poll or two.
   */
  createAndStart(pod: V1Pod, signal?: AbortSignal): Promise<V1Pod> {
    return startPod(pod, {
      core: this.o.core,
      namespace: this.o.namespace,
      timeoutMs: this.o.podReadyTimeoutSec * 1000,
      pollIntervalMs: this.o.pollIntervalMs,
      signal,
      deleteGraceSeconds: DELETE_GRACE_SECONDS,
      logger: this.o.logger,
    });
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
  deleteQuietly(name: string, uid?: string): Promise<void> {
    return deletePodQuietly(
      {
        core: this.o.core,
        namespace: this.o.namespace,
        deleteGraceSeconds: DELETE_GRACE_SECONDS,
        logger: this.o.logger,
      },
      name,
      uid,
    );
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
