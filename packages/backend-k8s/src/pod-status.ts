/**
 * Reading a starting pod's status: whether it will never run (and why, as a core error the
 * API can answer at once) or is still on its way. Pure functions of the V1Pod, so the
 * session code's start-up poll is one call per poll.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { BackendError, type CapacityError } from "@code-interpreter/core";
import { unschedulableError } from "./k8s-errors.js";
import { EXECUTOR_CONTAINER } from "./pod-spec.js";

/** Waiting reasons that mean the image will not come (fail fast instead of waiting). */
export const IMAGE_FAILURES = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "ErrImageNeverPull",
  "InvalidImageName",
]);
/** Waiting reasons that mean the container cannot be created at all. */
export const CREATE_FAILURES = new Set([
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

/**
 * The error to answer for a pod that will not become Running, or null while it may:
 * - ended before it ran (Succeeded/Failed, e.g. Evicted) → BackendError with reason/message;
 * - Unschedulable → CapacityError (429) for "no room", BackendError otherwise (k8s-errors);
 * - an image that cannot be pulled, a container that cannot be created, a failed init
 *   container → BackendError naming it.
 * The caller deletes the pod.
 */
export function podStartError(pod: V1Pod, image: string): BackendError | CapacityError | null {
  const name = pod.metadata?.name ?? "pod";
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") {
    const reason = pod.status?.reason ? `, ${pod.status.reason}` : "";
    const message = pod.status?.message ? `: ${pod.status.message}` : "";
    return new BackendError(`pod ${name} ended before it was ready (phase ${phase}${reason}${message})`);
  }
  if (phase === "Running") return null;
  const unschedulable = unschedulableError(pod);
  if (unschedulable) return unschedulable;
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = cs.state?.waiting;
    const reason = waiting?.reason ?? "";
    const detail = waiting?.message ? `: ${waiting.message}` : "";
    if (IMAGE_FAILURES.has(reason)) {
      return new BackendError(
        `pod ${name} cannot start: image ${JSON.stringify(cs.image || image)} could not be pulled (${reason}${detail})`,
      );
    }
    if (CREATE_FAILURES.has(reason)) {
      return new BackendError(`pod ${name} cannot start: container ${cs.name} ${reason}${detail}`);
    }
    const terminated = cs.state?.terminated;
    if (terminated && terminated.exitCode !== 0 && cs.name !== EXECUTOR_CONTAINER) {
      return new BackendError(
        `pod ${name} cannot start: init container ${cs.name} failed (exit ${terminated.exitCode}${
          terminated.reason ? `, ${terminated.reason}` : ""
        })`,
      );
    }
  }
  return null;
}

/** One line on where a pending pod is (for the ready-timeout error). */
export function describePending(pod: V1Pod | null): string {
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
