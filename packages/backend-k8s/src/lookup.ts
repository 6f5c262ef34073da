/**
 * Pods as the session layer sees them: name, uid, labels + annotations, phase, and the
 * mutable state, which on Kubernetes is kept in annotations (merge-patched) and so comes
 * with every read of the pod.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { SessionInfo, SessionStatus } from "@code-interpreter/core";
import { sessionFromTags } from "@code-interpreter/core/backend-kit";
import type { PlatformResource, ResourcePhase, SessionState } from "@code-interpreter/core/backend-kit";
import { ANNOTATION_EXPIRES_AT, ANNOTATION_LAST_ACTIVE_AT } from "./pod-spec.js";
import { layerName } from "./pool-spec.js";

function phaseOf(pod: V1Pod): ResourcePhase {
  if (pod.metadata?.deletionTimestamp) return "removing";
  switch (pod.status?.phase) {
    case "Running":
      return "running";
    case "Succeeded":
    case "Failed":
      return "stopped";
    default:
      return "pending";
  }
}

/** The mutable state kept in annotations. */
export function stateFromAnnotations(annotations: Record<string, string> | undefined): SessionState {
  const state: SessionState = {};
  const num = (v: string | undefined) => (v && /^\d{1,15}$/.test(v) ? Number(v) : undefined);
  const e = num(annotations?.[ANNOTATION_EXPIRES_AT]);
  const l = num(annotations?.[ANNOTATION_LAST_ACTIVE_AT]);
  if (e !== undefined) state.expiresAt = e;
  if (l !== undefined) state.lastActiveAt = l;
  return state;
}

/** Labels win over annotations of the same name: identity can never come from an annotation. */
const tagsOf = (pod: V1Pod) => ({ ...(pod.metadata?.annotations ?? {}), ...(pod.metadata?.labels ?? {}) });

/** A pool member claimed for a one-shot run is known by its executor name (pool-spec.ts layerName). */
export function podResource(pod: V1Pod): PlatformResource {
  return {
    name: layerName(pod.metadata?.name ?? "", pod.metadata?.labels ?? {}),
    handle: pod.metadata?.uid ?? "",
    tags: tagsOf(pod),
    phase: phaseOf(pod),
    createdAt: pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0,
    state: stateFromAnnotations(pod.metadata?.annotations),
  };
}

const STATUS: Record<ResourcePhase, SessionStatus> = {
  pending: "pending",
  running: "running",
  stopped: "stopped",
  removing: "stopped",
};

/** SessionInfo from a pod's labels + annotations, or null when it is not a session. */
export function sessionFromPod(pod: V1Pod): SessionInfo | null {
  const r = podResource(pod);
  return sessionFromTags(r.name, r.tags, r.state ?? null, STATUS[r.phase]);
}
