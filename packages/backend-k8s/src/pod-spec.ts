/**
 * Pure builders for the pods this backend creates. No I/O: everything the spec depends on
 * is a parameter, so the security-relevant fields are unit-testable without a cluster.
 *
 * Sizing (see docs/kubernetes.md) — one rule on both platforms (core's assertExecutorLimits):
 * - `/workspace` and `/tmp` are `emptyDir` with `medium: Memory`: a tmpfs the kubelet sizes
 *   to `sizeLimit`, so a write past WORKSPACE_SIZE_MB fails at once with ENOSPC and the
 *   session lives (a disk-backed emptyDir accepts the write and the kubelet evicts the pod
 *   tens of seconds later). tmpfs pages are charged to the pod's memory cgroup, exactly like
 *   Docker's tmpfs: the container's memory limit is MEMORY_LIMIT_MB and the two tmpfs live
 *   inside it, so WORKSPACE_SIZE_MB + TMP_SIZE_MB may be at most ¾ of it (the rest stays for
 *   the processes; checked here, as on Docker).
 * - memory request = memory limit (memory is not compressible: overcommitting it gets pods
 *   OOM-killed or evicted under node pressure); CPU request = `cpuRequest` (default: the
 *   CPU limit, i.e. Guaranteed QoS). A lower CPU request packs more mostly-idle sessions on
 *   a node (Burstable QoS; they share CPU under contention, never memory).
 */
import type { V1OwnerReference, V1Pod, V1SecurityContext } from "@kubernetes/client-node";
import { assertExecutorLimits, type ExecutorLimits } from "@code-interpreter/core";
import {
  EXECUTOR_REAP_MARGIN_MS,
  LABEL_REAP_AFTER,
  baseLabels,
  executorCommands,
  toUnixSeconds,
  type LabelMap,
  type Lifetime,
  EXECUTOR_UID,
} from "@code-interpreter/core/backend-kit";

/** The one container in every pod; exec targets it by name. */
export const EXECUTOR_CONTAINER = "executor";
/** uid/gid of the executor image's unprivileged user (distroless "nonroot"); defined once, in core. */
export { EXECUTOR_UID };

const A = "code-interpreter.dev";
/** Annotation, unix ms: the current expiry (keepalive moves it; the label keeps the original). */
export const ANNOTATION_EXPIRES_AT = `${A}/expires-at-ms`;
/** Annotation, unix ms: the last execute/bash/file call. */
export const ANNOTATION_LAST_ACTIVE_AT = `${A}/last-active-at-ms`;
/** Annotation: ISO 8601 expiry for humans (`kubectl get pod -o yaml`); informational only. */
export const ANNOTATION_EXPIRES_AT_ISO = `${A}/expires-at`;

/**
 * Where the keeper of a session pod reads the expiry and last activity the API records: a
 * downwardAPI volume projecting the pod's own annotations (`key="value"` lines, the values
 * Go-quoted), mounted read-only. The kubelet rewrites it (an atomic `..data` symlink swap)
 * when the annotations change; the code in the pod cannot write it, so it cannot extend its
 * own life.
 */
export const KEEPER_STATE_DIR = "/run/code-interpreter/podinfo";
export const KEEPER_STATE_PATH = `${KEEPER_STATE_DIR}/annotations`;
/** The keeper's first argument: read KEEPER_STATE_PATH as a downwardAPI annotations file. */
export const KEEPER_STATE_ARG = `annotations:${KEEPER_STATE_PATH}`;
/**
 * Default extra time the keeper grants past the expiry and the idle deadline, seconds: the
 * kubelet refreshes downwardAPI files on its pod sync (about a minute, plus its cache TTL),
 * so an annotation the API patched can reach the keeper that much later. The API's reaper
 * enforces the exact times while it runs; the keeper is the backstop when none runs.
 */
export const DEFAULT_KEEPER_SLACK_SECONDS = 90;

export type ImagePullPolicy = "Always" | "IfNotPresent" | "Never";

export interface PodSpecOptions {
  namespace: string;
  image: string;
  imagePullPolicy: ImagePullPolicy;
  limits: ExecutorLimits;
  /** CPU request in cores (default: `limits.cpuLimit`, Guaranteed QoS); at most the limit. */
  cpuRequest?: number | undefined;
  runtimeClass?: string | undefined;
  /** Set when the pods should be garbage-collected with the API's Deployment. */
  owner?: { name: string; uid: string } | undefined;
}

export interface SessionPodInput extends PodSpecOptions {
  name: string;
  lifetime: Lifetime;
  labels: LabelMap;
  annotations: LabelMap;
  /**
   * The idle timeout the keeper enforces, seconds (core's `keeperIdleTimeoutSeconds`: the
   * session's own plus the activity-write interval). @default `lifetime.idleTimeoutSeconds`
   */
  keeperIdleTimeoutSeconds?: number | null | undefined;
  /** Extra seconds the keeper grants past expiry and idle (DEFAULT_KEEPER_SLACK_SECONDS). */
  keeperSlackSeconds?: number | undefined;
}

export interface ExecutorPodInput extends PodSpecOptions {
  name: string;
  now: number;
  /** The execution's own timeout. */
  timeoutMs: number;
  /** How long the pod may take to start (counted into its deadline). */
  podReadyTimeoutSec: number;
}

/** Kubernetes quantity for a CPU count: whole cores as "2", else millicores as "500m". */
export function cpuQuantity(cpus: number): string {
  const milli = Math.max(1, Math.round(cpus * 1000));
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

export const miQuantity = (mb: number): string => `${Math.max(1, Math.round(mb))}Mi`;

/** The restricted container security context (Pod Security Standard "restricted"). */
export function restrictedContainerSecurityContext(): V1SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: EXECUTOR_UID,
    runAsGroup: EXECUTOR_UID,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

function ownerReferences(o: PodSpecOptions): V1OwnerReference[] | undefined {
  if (!o.owner) return undefined;
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: o.owner.name,
      uid: o.owner.uid,
      // Not a controller, and no blockOwnerDeletion (that would need deployments/finalizers).
      controller: false,
      blockOwnerDeletion: false,
    },
  ];
}

function basePod(
  o: PodSpecOptions,
  name: string,
  labels: LabelMap,
  annotations: LabelMap,
  command: string[],
  activeDeadlineSeconds: number,
  keeperState = false,
): V1Pod {
  const l = o.limits;
  assertExecutorLimits(l);
  const memory = miQuantity(podMemoryLimitMb(l));
  const cpuRequest = Math.min(l.cpuLimit, o.cpuRequest ?? l.cpuLimit);
  const resources = {
    requests: { cpu: cpuQuantity(cpuRequest), memory },
    limits: { cpu: cpuQuantity(l.cpuLimit), memory },
  };
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: o.namespace,
      labels,
      annotations,
      ...(o.owner ? { ownerReferences: ownerReferences(o) } : {}),
    },
    spec: {
      restartPolicy: "Never",
      activeDeadlineSeconds,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      hostNetwork: false,
      hostPID: false,
      hostIPC: false,
      terminationGracePeriodSeconds: 2,
      ...(o.runtimeClass ? { runtimeClassName: o.runtimeClass } : {}),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: EXECUTOR_UID,
        runAsGroup: EXECUTOR_UID,
        fsGroup: EXECUTOR_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: EXECUTOR_CONTAINER,
          image: o.image,
          imagePullPolicy: o.imagePullPolicy,
          command,
          workingDir: "/workspace",
          env: [
            { name: "HOME", value: "/tmp" },
            { name: "PYTHONUNBUFFERED", value: "1" },
            { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
            { name: "MPLCONFIGDIR", value: "/tmp" },
          ],
          resources,
          securityContext: restrictedContainerSecurityContext(),
          volumeMounts: [
            { name: "workspace", mountPath: "/workspace" },
            { name: "tmp", mountPath: "/tmp" },
            ...(keeperState ? [{ name: "podinfo", mountPath: KEEPER_STATE_DIR, readOnly: true }] : []),
          ],
        },
      ],
      // medium Memory: a tmpfs of sizeLimit, so the limit holds at write time (ENOSPC).
      volumes: [
        { name: "workspace", emptyDir: { medium: "Memory", sizeLimit: miQuantity(l.workspaceSizeMb) } },
        { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: miQuantity(l.tmpSizeMb) } },
        ...(keeperState
          ? [
              {
                name: "podinfo",
                downwardAPI: {
                  defaultMode: 0o444,
                  items: [{ path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } }],
                },
              },
            ]
          : []),
      ],
    },
  };
  return pod;
}

/**
 * The container memory limit, MiB: MEMORY_LIMIT_MB, as on Docker. The two memory-backed
 * emptyDirs live inside it (their pages are charged to the same cgroup), which is why
 * assertExecutorLimits keeps them to ¾ of it.
 */
export function podMemoryLimitMb(l: ExecutorLimits): number {
  return l.memoryLimitMb;
}

/**
 * A session pod. Its container command is the keeper (PID 1), which ends the pod at the
 * session's expiry or idle deadline, whichever comes first, never past the hard cap. It reads
 * later keepalives and activity from the pod's own annotations (the API's merge patches),
 * projected read-only at KEEPER_STATE_PATH by a downwardAPI volume, and grants
 * `keeperSlackSeconds` on top for the kubelet's refresh delay. A session created with
 * ttl_seconds 20 ends about 20 s + slack later with no API running.
 * `activeDeadlineSeconds` is the hard cap (createdAt → maxExpiresAt): the kubelet's
 * backstop if the keeper is gone. It cannot carry the TTL: Kubernetes lets a running pod's
 * activeDeadlineSeconds be lowered but never raised, so keepalive could not move it.
 */
export function buildSessionPod(input: SessionPodInput): V1Pod {
  const { lifetime } = input;
  const lifetimeSeconds = Math.max(1, Math.ceil((lifetime.maxExpiresAt - lifetime.createdAt) / 1000));
  const slack = Math.max(0, Math.floor(input.keeperSlackSeconds ?? DEFAULT_KEEPER_SLACK_SECONDS));
  const idle =
    input.keeperIdleTimeoutSeconds === undefined
      ? lifetime.idleTimeoutSeconds
      : input.keeperIdleTimeoutSeconds;
  const command = [
    ...executorCommands.keeper({
      statePath: KEEPER_STATE_ARG,
      maxExpiresAt: lifetime.maxExpiresAt,
      expiresAt: lifetime.expiresAt,
      idleTimeoutSeconds: idle,
      createdAt: lifetime.createdAt,
    }),
    String(slack),
  ];
  const annotations: LabelMap = {
    ...input.annotations,
    [ANNOTATION_EXPIRES_AT]: String(lifetime.expiresAt),
    [ANNOTATION_LAST_ACTIVE_AT]: String(lifetime.lastActiveAt),
    [ANNOTATION_EXPIRES_AT_ISO]: new Date(lifetime.expiresAt).toISOString(),
  };
  return basePod(input, input.name, { ...input.labels }, annotations, command, lifetimeSeconds, true);
}

/** When an orphaned one-shot executor (the API died mid-run) may be reaped, unix ms. */
export function executorReapAfter(now: number, timeoutMs: number, podReadyTimeoutSec: number): number {
  return now + podReadyTimeoutSec * 1000 + timeoutMs + EXECUTOR_REAP_MARGIN_MS;
}

/** A one-shot executor pod: always deleted by the API after the run; reaped if orphaned. */
export function buildExecutorPod(input: ExecutorPodInput): V1Pod {
  const reapAfter = executorReapAfter(input.now, input.timeoutMs, input.podReadyTimeoutSec);
  const command = executorCommands.keeper({
    statePath: null,
    maxExpiresAt: reapAfter,
    expiresAt: reapAfter,
    idleTimeoutSeconds: null,
    createdAt: input.now,
  });
  const labels: LabelMap = { ...baseLabels("executor"), [LABEL_REAP_AFTER]: toUnixSeconds(reapAfter) };
  const annotations: LabelMap = { [LABEL_REAP_AFTER]: new Date(reapAfter).toISOString() };
  const deadline = Math.max(1, Math.ceil((reapAfter - input.now) / 1000));
  return basePod(input, input.name, labels, annotations, command, deadline);
}
