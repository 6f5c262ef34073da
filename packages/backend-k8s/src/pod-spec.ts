/**
 * Pure builders for the pods this backend creates. No I/O: everything the spec depends on
 * is a parameter, so the security-relevant fields are unit-testable without a cluster.
 */
import type { V1OwnerReference, V1Pod, V1SecurityContext } from "@kubernetes/client-node";
import { type ExecutorLimits } from "@code-interpreter/core";
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

export type ImagePullPolicy = "Always" | "IfNotPresent" | "Never";

export interface PodSpecOptions {
  namespace: string;
  image: string;
  imagePullPolicy: ImagePullPolicy;
  limits: ExecutorLimits;
  runtimeClass?: string | undefined;
  /** Set when the pods should be garbage-collected with the API's Deployment. */
  owner?: { name: string; uid: string } | undefined;
  /** Adds the network-lockdown init container (needs an image with iptables, see README). */
  networkLockdown?: boolean | undefined;
  /** Image of the lockdown init container (default: the executor image). */
  networkLockdownImage?: string | undefined;
}

export interface SessionPodInput extends PodSpecOptions {
  name: string;
  lifetime: Lifetime;
  labels: LabelMap;
  annotations: LabelMap;
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

/**
 * Shell script of the lockdown init container: default-deny every chain of the pod's network
 * namespace (shared with the executor container) except loopback, for IPv4 and IPv6.
 */
export const NETWORK_LOCKDOWN_SCRIPT = [
  "set -e",
  "for t in iptables ip6tables; do",
  '  command -v "$t" >/dev/null 2>&1 || { [ "$t" = ip6tables ] && continue; echo "$t missing" >&2; exit 1; }',
  '  "$t" -P INPUT DROP; "$t" -P OUTPUT DROP; "$t" -P FORWARD DROP',
  '  "$t" -A INPUT -i lo -j ACCEPT; "$t" -A OUTPUT -o lo -j ACCEPT',
  "done",
].join("\n");

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
): V1Pod {
  const l = o.limits;
  const resources = {
    requests: { cpu: cpuQuantity(l.cpuLimit), memory: miQuantity(l.memoryLimitMb) },
    limits: { cpu: cpuQuantity(l.cpuLimit), memory: miQuantity(l.memoryLimitMb) },
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
          ],
        },
      ],
      volumes: [
        { name: "workspace", emptyDir: { sizeLimit: miQuantity(l.workspaceSizeMb) } },
        { name: "tmp", emptyDir: { sizeLimit: miQuantity(l.tmpSizeMb) } },
      ],
    },
  };
  if (o.networkLockdown) {
    pod.spec!.initContainers = [
      {
        name: "network-lockdown",
        image: o.networkLockdownImage ?? o.image,
        imagePullPolicy: o.imagePullPolicy,
        command: ["sh", "-c", NETWORK_LOCKDOWN_SCRIPT],
        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m", memory: "32Mi" } },
        // The one exception to the restricted profile: root with NET_ADMIN only, and only in
        // this short-lived init container that never runs user code.
        securityContext: {
          runAsNonRoot: false,
          runAsUser: 0,
          runAsGroup: 0,
          allowPrivilegeEscalation: false,
          privileged: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
      },
    ];
  }
  return pod;
}

/**
 * A session pod. Its container command is the keeper, which ends the pod at the hard
 * deadline (maxExpiresAt); `activeDeadlineSeconds` makes the kubelet enforce the same limit
 * even if the keeper or the API is gone. Soft expiry and idle timeouts are the reaper's job,
 * because keepalive moves them (in annotations) after the pod was created.
 */
export function buildSessionPod(input: SessionPodInput): V1Pod {
  const { lifetime } = input;
  const lifetimeSeconds = Math.max(1, Math.ceil((lifetime.maxExpiresAt - lifetime.createdAt) / 1000));
  const command = executorCommands.keeper({
    statePath: null,
    maxExpiresAt: lifetime.maxExpiresAt,
    expiresAt: lifetime.maxExpiresAt,
    idleTimeoutSeconds: null,
    createdAt: lifetime.createdAt,
  });
  const annotations: LabelMap = {
    ...input.annotations,
    [ANNOTATION_EXPIRES_AT]: String(lifetime.expiresAt),
    [ANNOTATION_LAST_ACTIVE_AT]: String(lifetime.lastActiveAt),
    [ANNOTATION_EXPIRES_AT_ISO]: new Date(lifetime.expiresAt).toISOString(),
  };
  return basePod(input, input.name, { ...input.labels }, annotations, command, lifetimeSeconds);
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
