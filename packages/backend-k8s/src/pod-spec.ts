/**
 * Pure builders for the pods this backend creates. No I/O: everything the spec depends on
 * is a parameter, so the security-relevant fields are unit-testable without a cluster.
 *
 * Sizing (see docs/kubernetes.md):
 * - `/workspace` and `/tmp` are `emptyDir` with `medium: Memory`: a tmpfs the kubelet sizes
 *   to `sizeLimit`, so a write past WORKSPACE_SIZE_MB fails at once with ENOSPC and the
 *   session lives (a disk-backed emptyDir accepts the write and the kubelet evicts the pod
 *   tens of seconds later). tmpfs pages are charged to the pod's memory cgroup, so the
 *   container's memory limit is MEMORY_LIMIT_MB + WORKSPACE_SIZE_MB + TMP_SIZE_MB: the
 *   program keeps its MEMORY_LIMIT_MB however full the disks are.
 * - memory request = memory limit (memory is not compressible: overcommitting it gets pods
 *   OOM-killed or evicted under node pressure); CPU request = `cpuRequest` (default: the
 *   CPU limit, i.e. Guaranteed QoS). A lower CPU request packs more mostly-idle sessions on
 *   a node (Burstable QoS; they share CPU under contention, never memory).
 */
import type { V1OwnerReference, V1Pod, V1SecurityContext } from "@kubernetes/client-node";
import { BackendError, type ExecutorLimits } from "@code-interpreter/core";
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

/** Where the keeper of a session pod reads the expiry and last activity the API records. */
export const KEEPER_STATE_DIR = "/run/code-interpreter";
export const KEEPER_STATE_PATH = `${KEEPER_STATE_DIR}/keeper.json`;

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
  /**
   * Removed: the lockdown init container (root + NET_ADMIN) is rejected by a namespace that
   * enforces Pod Security "restricted" and needs an image with iptables. Network isolation
   * is the NetworkPolicy's job (deploy/, docs/kubernetes.md). `true` fails pod creation.
   * @deprecated
   */
  networkLockdown?: boolean | undefined;
  /** @deprecated ignored (see `networkLockdown`). */
  networkLockdownImage?: string | undefined;
}

export interface SessionPodInput extends PodSpecOptions {
  name: string;
  lifetime: Lifetime;
  labels: LabelMap;
  annotations: LabelMap;
  /**
   * true: the keeper ends the pod at the session's expiry and idle deadline, reading later
   * keepalives and activity from KEEPER_STATE_PATH, which the session code must write
   * (`keeperStateCommand`) on every keepalive and activity. false (default, until that is
   * wired): the keeper works to the hard deadline only and the API's reaper enforces
   * expiry and idle.
   */
  keeperEnforcesExpiry?: boolean | undefined;
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
  if (o.networkLockdown) {
    // A server misconfiguration, not the caller's mistake: 500, and no pod is created.
    throw new BackendError(
      "KUBERNETES_NETWORK_LOCKDOWN was removed: its root NET_ADMIN init container is rejected by Pod Security " +
        '"restricted"; rely on the deny-all NetworkPolicy (docs/kubernetes.md)',
    );
  }
  const l = o.limits;
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
            ...(keeperState ? [{ name: "keeper", mountPath: KEEPER_STATE_DIR }] : []),
          ],
        },
      ],
      // medium Memory: a tmpfs of sizeLimit, so the limit holds at write time (ENOSPC).
      volumes: [
        { name: "workspace", emptyDir: { medium: "Memory", sizeLimit: miQuantity(l.workspaceSizeMb) } },
        { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: miQuantity(l.tmpSizeMb) } },
        ...(keeperState ? [{ name: "keeper", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }] : []),
      ],
    },
  };
  return pod;
}

/**
 * The container memory limit, MiB: the program's MEMORY_LIMIT_MB plus the two memory-backed
 * emptyDirs, whose pages count against the same cgroup.
 */
export function podMemoryLimitMb(l: ExecutorLimits): number {
  return l.memoryLimitMb + l.workspaceSizeMb + l.tmpSizeMb;
}

/**
 * A session pod. Its container command is the keeper (PID 1), which ends the pod:
 * - with `keeperEnforcesExpiry`: at the session's expiry or idle deadline, whichever comes
 *   first, moved by keepalive/activity through KEEPER_STATE_PATH, never past the hard cap;
 *   a session created with ttl_seconds 20 ends about 20 s later with no API running;
 * - without: at the hard deadline (maxExpiresAt) only.
 * `activeDeadlineSeconds` is the hard cap (createdAt → maxExpiresAt): the kubelet's
 * backstop if the keeper is gone. It cannot carry the TTL: Kubernetes lets a running pod's
 * activeDeadlineSeconds be lowered but never raised, so keepalive could not move it.
 */
export function buildSessionPod(input: SessionPodInput): V1Pod {
  const { lifetime } = input;
  const lifetimeSeconds = Math.max(1, Math.ceil((lifetime.maxExpiresAt - lifetime.createdAt) / 1000));
  const keeperState = input.keeperEnforcesExpiry === true;
  const command = executorCommands.keeper(
    keeperState
      ? {
          statePath: KEEPER_STATE_PATH,
          maxExpiresAt: lifetime.maxExpiresAt,
          expiresAt: lifetime.expiresAt,
          idleTimeoutSeconds: lifetime.idleTimeoutSeconds,
          createdAt: lifetime.createdAt,
        }
      : {
          statePath: null,
          maxExpiresAt: lifetime.maxExpiresAt,
          expiresAt: lifetime.maxExpiresAt,
          idleTimeoutSeconds: null,
          createdAt: lifetime.createdAt,
        },
  );
  const annotations: LabelMap = {
    ...input.annotations,
    [ANNOTATION_EXPIRES_AT]: String(lifetime.expiresAt),
    [ANNOTATION_LAST_ACTIVE_AT]: String(lifetime.lastActiveAt),
    [ANNOTATION_EXPIRES_AT_ISO]: new Date(lifetime.expiresAt).toISOString(),
  };
  return basePod(input, input.name, { ...input.labels }, annotations, command, lifetimeSeconds, keeperState);
}

/** What the keeper reads from KEEPER_STATE_PATH (unix ms; the same shape as on Docker). */
export interface KeeperState {
  expiresAt: number;
  lastActiveAt: number;
}

/**
 * The command that records a session's expiry and last activity for its keeper (run it in
 * the pod through the exec transport on every keepalive and activity). It writes a temp file
 * (unique per writer) and renames it, so the keeper never reads half a file and concurrent
 * writers do not collide. Write the latest values: the keeper takes the larger expiry but
 * the last written activity.
 */
export function keeperStateCommand(state: KeeperState): string[] {
  const json = JSON.stringify({
    expiresAt: Math.floor(state.expiresAt),
    lastActiveAt: Math.floor(state.lastActiveAt),
  });
  return [
    "python3",
    "-c",
    "import os, sys\np = sys.argv[1]\nt = '%s.%d.tmp' % (p, os.getpid())\nwith open(t, 'w') as f:\n    f.write(sys.argv[2])\nos.replace(t, p)",
    KEEPER_STATE_PATH,
    json,
  ];
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
