/**
 * Pure builders of the warm pool on Kubernetes (issue 10): the member pod, the claim's merge
 * patch, and the names a claimed pod is known by. No I/O (see pool.ts for the calls).
 *
 * - A member is a session pod (buildSessionPod: the same hardened spec, the same keeper and
 *   downwardAPI annotations volume) created with its future name `code-session-<uuid>` (a pod
 *   name is fixed at creation), carrying the identity labels plus LABEL_POOL = the fit
 *   fingerprint: the label says "available". Session listing selects `!LABEL_POOL`, so an
 *   unclaimed member is never anyone's session.
 * - A claim is ONE merge patch carrying `metadata.resourceVersion` (the apiserver's optimistic
 *   lock: a stale version answers 409 Conflict, so of two replicas claiming one member exactly
 *   one wins). It removes LABEL_POOL, sets LABEL_POOL_CLAIMED (session|executor), writes the
 *   claim's labels and annotations (owner, times, metadata: what a cold create would have put
 *   there, so listing and lookup work unchanged), the keeper's new lifetime as four digit-only
 *   annotations (CLAIM_ANNOTATIONS, read by the keeper from its downwardAPI file), and lowers
 *   `spec.activeDeadlineSeconds` (the kubelet's backstop) to the claim's hard cap.
 * - A member's keeper ends it at its max age plus the keeper slack when no claim reached it;
 *   its activeDeadlineSeconds starts at max age + slack + the longest session lifetime (it
 *   can only be lowered, never raised, on a running pod) and a claim lowers it.
 */
import type { V1Pod } from "@kubernetes/client-node";
import {
  LABEL_METADATA,
  LABEL_POOL,
  isExecutorName,
  type ClaimRecord,
  type LabelMap,
  type PoolMemberSpec,
} from "@code-interpreter/core/backend-kit";
import {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_EXPIRES_AT_ISO,
  ANNOTATION_LAST_ACTIVE_AT,
  DEFAULT_KEEPER_SLACK_SECONDS,
  buildSessionPod,
  type PodSpecOptions,
} from "./pod-spec.js";

const A = "code-interpreter.dev";
/** Label of a claimed member: what it became ("session" or "executor"). */
export const LABEL_POOL_CLAIMED = `${A}/pool-claimed`;
/** Annotation, unix ms: when the member was claimed. */
export const ANNOTATION_CLAIMED_AT = `${A}/claimed-at-ms`;
/** Annotation: a random id per claim attempt (tells a lost answer's claim from another's). */
export const ANNOTATION_CLAIM_ID = `${A}/claim-id`;
/**
 * The claim's keeper lifetime, as the keeper (core/python/keeper.py CLAIM_ANNOTATIONS) reads
 * it from the downwardAPI annotations file: digits only, all four or none.
 */
export const CLAIM_ANNOTATIONS = {
  maxExpiresAt: `${A}/claim-max-expires-at-ms`,
  expiresAt: `${A}/claim-expires-at-ms`,
  idleTimeoutSeconds: `${A}/claim-idle-timeout-seconds`,
  createdAt: `${A}/claim-created-at-ms`,
} as const;

const SESSION_PREFIX = "code-session-";
const EXEC_PREFIX = "code-exec-";

/** The pod name of a member: its future session id (`code-pool-<uuid>` → `code-session-<uuid>`). */
export function memberPodName(memberName: string): string {
  const m = /^code-(?:pool|session)-(.+)$/.exec(memberName);
  if (!m) throw new Error(`not a pool member name: ${JSON.stringify(memberName)}`);
  return `${SESSION_PREFIX}${m[1]}`;
}

/**
 * The name the session layer knows a pod by: a pool member claimed for a one-shot run keeps
 * its pod name `code-session-<uuid>` but is the executor `code-exec-<uuid>` (its labels say
 * component=executor and LABEL_POOL_CLAIMED=executor); every other pod, its own name.
 */
export function layerName(podName: string, labels: LabelMap): string {
  if (labels[LABEL_POOL_CLAIMED] === "executor" && podName.startsWith(SESSION_PREFIX))
    return `${EXEC_PREFIX}${podName.slice(SESSION_PREFIX.length)}`;
  return podName;
}

/** The pod a layer resource lives in (the inverse of layerName). */
export function podNameOf(r: { name: string; tags: LabelMap }): string {
  if (isExecutorName(r.name) && r.tags[LABEL_POOL_CLAIMED] === "executor")
    return `${SESSION_PREFIX}${r.name.slice(EXEC_PREFIX.length)}`;
  return r.name;
}

export interface MemberPodInput extends PodSpecOptions {
  spec: PoolMemberSpec;
  /** The longest session a claim can make (SESSION_MAX_LIFETIME_SECONDS). */
  sessionMaxLifetimeSeconds: number;
  keeperSlackSeconds?: number | undefined;
}

/** A member pod: a session pod with the member's labels and lifetime (see the file comment). */
export function buildMemberPod(input: MemberPodInput): V1Pod {
  const { spec, sessionMaxLifetimeSeconds, keeperSlackSeconds, ...podOptions } = input;
  const slack = Math.max(0, Math.floor(keeperSlackSeconds ?? DEFAULT_KEEPER_SLACK_SECONDS));
  const pod = buildSessionPod({
    ...podOptions,
    name: memberPodName(spec.name),
    lifetime: {
      createdAt: spec.createdAt,
      expiresAt: spec.expiresAt,
      // The keeper's hard cap: the max age plus the slack a claim's annotations may need to
      // reach the keeper (the kubelet's refresh), so a member claimed late is never ended.
      maxExpiresAt: spec.expiresAt + slack * 1000,
      lastActiveAt: spec.createdAt,
      idleTimeoutSeconds: null,
    },
    keeperIdleTimeoutSeconds: null,
    keeperSlackSeconds: slack,
    labels: { ...spec.labels },
    annotations: {},
  });
  const ageSeconds = Math.ceil((spec.expiresAt - spec.createdAt) / 1000);
  pod.spec!.activeDeadlineSeconds = Math.max(1, ageSeconds + slack + sessionMaxLifetimeSeconds);
  return pod;
}

/** Kubernetes label values: at most 63 characters, alphanumeric at both ends. */
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A claim's tags split like a cold create splits them: caller metadata (and any value that is
 * not a valid label value) into annotations, everything else into labels.
 */
export function splitTags(tags: LabelMap): { labels: LabelMap; annotations: LabelMap } {
  const labels: LabelMap = {};
  const annotations: LabelMap = {};
  for (const [k, v] of Object.entries(tags)) {
    if (k !== LABEL_METADATA && v.length <= 63 && LABEL_VALUE_RE.test(v)) labels[k] = v;
    else annotations[k] = v;
  }
  return { labels, annotations };
}

/** The pod's activeDeadlineSeconds for a hard end at `endMs`: counted from its startTime. */
export function deadlineSecondsFor(pod: V1Pod, endMs: number): number {
  const start = pod.status?.startTime ?? pod.metadata?.creationTimestamp;
  const base = start ? new Date(start).getTime() : endMs;
  return Math.max(1, Math.ceil((endMs - base) / 1000));
}

/** What one claim patches onto the member pod `pod` (as read, with its resourceVersion). */
export interface ClaimPatch {
  metadata: {
    resourceVersion: string;
    labels: Record<string, string | null>;
    annotations: Record<string, string>;
  };
  spec?: { activeDeadlineSeconds: number };
}

/** The merge patch of a claim (see the file comment); `claimId` marks this attempt. */
export function claimPatch(pod: V1Pod, record: ClaimRecord, claimId: string): ClaimPatch {
  const rv = pod.metadata?.resourceVersion;
  if (!rv) throw new Error("the member pod has no resourceVersion");
  const { labels, annotations } = splitTags(record.tags);
  const k = record.keeper;
  const patch: ClaimPatch = {
    metadata: {
      resourceVersion: rv,
      labels: { ...labels, [LABEL_POOL]: null, [LABEL_POOL_CLAIMED]: record.as },
      annotations: {
        ...annotations,
        [ANNOTATION_EXPIRES_AT]: String(k.expiresAt),
        [ANNOTATION_EXPIRES_AT_ISO]: new Date(k.expiresAt).toISOString(),
        [ANNOTATION_LAST_ACTIVE_AT]: String(k.createdAt),
        [CLAIM_ANNOTATIONS.maxExpiresAt]: String(k.maxExpiresAt),
        [CLAIM_ANNOTATIONS.expiresAt]: String(k.expiresAt),
        [CLAIM_ANNOTATIONS.idleTimeoutSeconds]: String(k.idleTimeoutSeconds),
        [CLAIM_ANNOTATIONS.createdAt]: String(k.createdAt),
        [ANNOTATION_CLAIMED_AT]: String(record.claimedAt),
        [ANNOTATION_CLAIM_ID]: claimId,
      },
    },
  };
  // Only ever lowered (a running pod's deadline cannot be raised).
  const ads = deadlineSecondsFor(pod, k.maxExpiresAt);
  const current = pod.spec?.activeDeadlineSeconds;
  if (current === undefined || ads < current) patch.spec = { activeDeadlineSeconds: ads };
  return patch;
}
