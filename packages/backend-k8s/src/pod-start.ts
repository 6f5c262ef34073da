/**
 * Starting a pod: create it, poll until it runs, and on any failure delete it before the
 * error is thrown, so no failed start leaves a pod behind. The poll answers as soon as the
 * pod's status says it will never run (`podStartError`: a full node is a CapacityError
 * within a second or two, not after the ready timeout).
 */
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { BackendError, type Logger } from "@code-interpreter/core";
import { PollTimeoutError, poll } from "@code-interpreter/core/backend-kit";
import { isNotFound, toCoreError } from "./k8s-errors.js";
import { describePending, podStartError } from "./pod-status.js";

export interface StartPodOptions {
  core: CoreV1Api;
  namespace: string;
  /** How long the pod may take to run, ms. */
  timeoutMs: number;
  /** First poll interval (default 250 ms), backing off ×1.5 to 1 s. */
  pollIntervalMs?: number | undefined;
  /** The caller went away: stop waiting, delete the pod. */
  signal?: AbortSignal | undefined;
  /** Grace period of the clean-up delete (default 1 s). */
  deleteGraceSeconds?: number | undefined;
  logger?: Logger | undefined;
}

/** Creates `pod` and waits until it runs; deletes it if it does not. */
export async function startPod(pod: V1Pod, o: StartPodOptions): Promise<V1Pod> {
  const name = pod.metadata?.name ?? "";
  let created: V1Pod;
  try {
    created = await o.core.createNamespacedPod({ namespace: o.namespace, body: pod });
  } catch (err) {
    throw toCoreError(err, `create pod ${name}`);
  }
  try {
    return await waitForPodRunning(name, pod.spec?.containers[0]?.image ?? "", o);
  } catch (err) {
    await deletePodQuietly(o, name, created.metadata?.uid);
    throw err;
  }
}

/** Polls the pod until it is Running; a core error as soon as it cannot get there. */
export async function waitForPodRunning(name: string, image: string, o: StartPodOptions): Promise<V1Pod> {
  let last: V1Pod | null = null;
  try {
    return await poll(
      async () => {
        try {
          last = await o.core.readNamespacedPod({ name, namespace: o.namespace });
        } catch (err) {
          if (isNotFound(err)) throw new BackendError(`pod ${name} disappeared while starting`);
          throw toCoreError(err, `read pod ${name}`);
        }
        if (last.status?.phase === "Running") return last;
        const failed = podStartError(last, image);
        if (failed) throw failed;
        return undefined;
      },
      {
        timeoutMs: o.timeoutMs,
        intervalMs: o.pollIntervalMs ?? 250,
        backoff: 1.5,
        maxIntervalMs: 1000,
        signal: o.signal,
      },
    );
  } catch (err) {
    if (o.signal?.aborted) throw new BackendError("the request was cancelled while the pod was starting");
    if (err instanceof PollTimeoutError) {
      throw new BackendError(
        `pod ${name} was not running after ${Math.round(o.timeoutMs / 1000)}s (${last ? describePending(last) : "never read"})`,
      );
    }
    throw err;
  }
}

/** Deletes a pod with a uid precondition; never throws (404 is fine, the rest is logged). */
export async function deletePodQuietly(
  o: Pick<StartPodOptions, "core" | "namespace" | "deleteGraceSeconds" | "logger">,
  name: string,
  uid?: string,
): Promise<void> {
  const grace = o.deleteGraceSeconds ?? 1;
  try {
    await o.core.deleteNamespacedPod({
      name,
      namespace: o.namespace,
      gracePeriodSeconds: grace,
      propagationPolicy: "Background",
      body: {
        gracePeriodSeconds: grace,
        propagationPolicy: "Background",
        ...(uid ? { preconditions: { uid } } : {}),
      },
    });
  } catch (err) {
    if (!isNotFound(err)) o.logger?.warn({ pod: name, err: String(err) }, "deleting pod failed");
  }
}
