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
} from "@code-interpreter/core/backend-kit";
import { KubernetesPlatform } from "./platform.js";
import { Pods, ownerLookup } from "./pods.js";
import type { ImagePullPolicy } from "./pod-spec.js";

export interface KubernetesBackendOptions extends CommonBackendOptions {
  /** @default `loadFromDefault()`: $KUBECONFIG / ~/.kube/config, or the in-cluster service account */
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
  /** Adds the network-lockdown init container (see README: needs iptables and NET_ADMIN). @default false */
  networkLockdown?: boolean;
  /** Image of the lockdown init container. @default `image` */
  networkLockdownImage?: string;
  /** RuntimeClass of the pods (e.g. gVisor). @default none */
  runtimeClass?: string;
  /** First poll interval while waiting for a pod to run (backs off to 1 s). @default 250 */
  pollIntervalMs?: number;
}

export class KubernetesBackend extends SessionBackend {
  constructor(opts: KubernetesBackendOptions = {}) {
    const kc = opts.kubeConfig ?? defaultKubeConfig();
    const namespace = opts.namespace ?? "default";
    const image = opts.image ?? "code-interpreter-executor:latest";
    const common = resolveCommonOptions(opts);
    const { limits, logger, now, maxFileBytes } = common;
    const podReadyTimeoutSec = opts.podReadyTimeoutSec ?? 60;
    const core = kc.makeApiClient(CoreV1Api);
    const pods = new Pods({
      core,
      namespace,
      image,
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
        networkLockdown: opts.networkLockdown,
        networkLockdownImage: opts.networkLockdownImage,
      },
      owner: ownerLookup(kc, namespace, opts.ownerDeployment),
      limits,
      podReadyTimeoutSec,
      maxFileBytes,
      now,
    });
    super(platform, {
      ...common,
      cpuTimeLimitSec: limits.cpuTimeLimitSec,
      // A pod may legitimately be pending while a create waits for it.
      pendingGraceMs: Math.max(120_000, podReadyTimeoutSec * 1000 + 60_000),
    });
  }
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
