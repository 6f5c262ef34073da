/**
 * The Kubernetes backend: core's session layer (SessionBackend) on pods driven through the
 * Kubernetes API with @kubernetes/client-node 1.x (KubernetesPlatform). All session state
 * lives on the pod (labels for identity and immutable times, annotations for expiry and last
 * activity), so any API replica, or a restarted one, sees the same sessions.
 */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import {
  SessionBackend,
  resolveCommonOptions,
  type CommonBackendOptions,
  type WarmPoolSettings,
} from "@code-interpreter/core/backend-kit";
import { DEFAULT_K8S_REQUEST_TIMEOUT_MS, DeadlineKubeConfig } from "./deadline.js";
import { KubernetesPlatform } from "./platform.js";
import { Pods, ownerLookup } from "./pods.js";
import type { ImagePullPolicy } from "./pod-spec.js";

export interface KubernetesBackendOptions extends CommonBackendOptions {
  /**
   * @default `loadFromDefault()`: $KUBECONFIG / ~/.kube/config, or the in-cluster service
   * account. Any KubeConfig is used through a DeadlineKubeConfig copy (same clusters, users
   * and contexts), so every request has a deadline (`requestTimeoutMs`).
   */
  kubeConfig?: KubeConfig;
  /** Namespace of the executor pods. @default "default" */
  namespace?: string;
  /** Executor image. @default "code-interpreter-executor:latest" */
  image?: string;
  /** @default "IfNotPresent" */
  imagePullPolicy?: ImagePullPolicy;
  /** How long a pod may take to run, seconds. @default 60 */
  podReadyTimeoutSec?: number;
  /** Name of the API's own Deployment (same namespace): pods get an ownerReference to it. @default none */
  ownerDeployment?: string;
  /**
   * Deadline of every call to the Kubernetes API, ms: a hung apiserver makes the call fail
   * with BackendUnavailableError (503) after this long. A `kubeConfig` that is already a
   * DeadlineKubeConfig keeps its own deadlines. @default 10000
   */
  requestTimeoutMs?: number;
  /** RuntimeClass of the pods (e.g. gVisor). @default none */
  runtimeClass?: string;
  /**
   * Extra seconds a session pod's keeper grants past the session's expiry and idle deadline
   * before it ends the pod with no API running: the kubelet refreshes the pod's projected
   * annotations (keepalive, activity) only on its sync period. The API's reaper enforces the
   * exact times while it runs. @default 90 (DEFAULT_KEEPER_SLACK_SECONDS)
   */
  keeperSlackSeconds?: number;
  /** First poll interval while waiting for a pod to run (backs off to 1 s). @default 250 */
  pollIntervalMs?: number;
  /**
   * The warm pool (issue 10): `size` ready member pods, hardened exactly like sessions, that
   * session creates and one-shot runs claim instead of starting a pod (see docs/kubernetes.md).
   * A member's keeper ends it `maxAgeSeconds` (default 900) plus `keeperSlackSeconds` after
   * its creation when no API claims or reaps it first. @default no pool (size 0)
   */
  warmPool?: WarmPoolSettings;
}

export class KubernetesBackend extends SessionBackend {
  constructor(opts: KubernetesBackendOptions = {}) {
    const kc = withDeadlines(opts.kubeConfig ?? defaultKubeConfig(), opts.requestTimeoutMs);
    const namespace = opts.namespace ?? "default";
    const image = opts.image ?? "code-interpreter-executor:latest";
    const common = resolveCommonOptions(opts);
    const { limits, logger, now, maxFileBytes } = common;
    const podReadyTimeoutSec = opts.podReadyTimeoutSec ?? 60;
    const core = kc.makeApiClient(CoreV1Api);
    const pods = new Pods({
      core,
      namespace,
      podReadyTimeoutSec,
      pollIntervalMs: opts.pollIntervalMs ?? 250,
      logger,
    });
    const platform = new KubernetesPlatform({
      kc,
      core,
      pods,
      namespace,
      podOptions: {
        namespace,
        image,
        imagePullPolicy: opts.imagePullPolicy ?? "IfNotPresent",
        limits,
        runtimeClass: opts.runtimeClass,
      },
      owner: ownerLookup(kc, namespace, opts.ownerDeployment),
      limits,
      podReadyTimeoutSec,
      keeperSlackSeconds: opts.keeperSlackSeconds,
      maxFileBytes,
      now,
      sessionMaxLifetimeSeconds: common.sessionMaxLifetimeSeconds,
      logger,
    });
    super(platform, {
      ...common,
      cpuTimeLimitSec: limits.cpuTimeLimitSec,
      // A pod may legitimately be pending while a create waits for it.
      pendingGraceMs: Math.max(120_000, podReadyTimeoutSec * 1000 + 60_000),
      ...(opts.warmPool ? { warmPool: opts.warmPool } : {}),
    });
  }
}

/** The KubeConfig with a deadline on every request (a DeadlineKubeConfig is kept as it is). */
function withDeadlines(kc: KubeConfig, requestTimeoutMs: number | undefined): DeadlineKubeConfig {
  if (kc instanceof DeadlineKubeConfig) return kc;
  return DeadlineKubeConfig.from(kc, {
    requestTimeoutMs: requestTimeoutMs ?? DEFAULT_K8S_REQUEST_TIMEOUT_MS,
  });
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** Creates the backend (loading the kube config from the environment when none is given). */
export function createKubernetesBackend(opts: KubernetesBackendOptions = {}): KubernetesBackend {
  return new KubernetesBackend(opts);
}
