/**
 * The Kubernetes side of the session layer (core's SessionPlatform): pods named
 * `code-session-<uuid>`, identity and immutable times in labels, caller metadata and the
 * mutable state (expiry, last activity) in annotations changed with merge patches, exec over
 * the WebSocket exec API. Everything else about sessions is core's SessionBackend.
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import {
  SessionNotFoundError,
  type CodeInterpreterError,
  type ExecResult,
  type ExecutorLimits,
  type Logger,
  type OneShotRequest,
} from "@code-interpreter/core";
import {
  assertUniqueSafePaths,
  labelSelector,
  LABEL_OWNER,
  LABEL_POOL,
  newExecutorName,
  runCode,
  stageFiles,
  type PlatformResource,
  type SessionPlatform,
  type SessionSpec,
  type SessionState,
} from "@code-interpreter/core/backend-kit";
import { PodExecTransport } from "./exec-transport.js";
import { isConflict, isNotFound, toCoreError } from "./k8s-errors.js";
import { podResource } from "./lookup.js";
import {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_EXPIRES_AT_ISO,
  ANNOTATION_LAST_ACTIVE_AT,
  EXECUTOR_CONTAINER,
  buildExecutorPod,
  buildSessionPod,
  type PodSpecOptions,
} from "./pod-spec.js";
import type { Pods } from "./pods.js";
import { KubernetesPool } from "./pool.js";
import { podNameOf } from "./pool-spec.js";

export interface KubernetesPlatformOptions {
  kc: KubeConfig;
  core: CoreV1Api;
  pods: Pods;
  namespace: string;
  /** Pod options without the owner (looked up lazily). */
  podOptions: Omit<PodSpecOptions, "owner">;
  owner: () => Promise<{ name: string; uid: string } | undefined>;
  limits: ExecutorLimits;
  podReadyTimeoutSec: number;
  /** Extra seconds the keeper grants past expiry and idle (see pod-spec.ts). */
  keeperSlackSeconds?: number | undefined;
  maxFileBytes: number;
  now: () => number;
  /** The longest session (a pool member's pod deadline must leave room for it). */
  sessionMaxLifetimeSeconds: number;
  logger: Logger;
}

export class KubernetesPlatform implements SessionPlatform {
  readonly kind = "kubernetes";
  /** The warm pool's extension (pool.ts); used when the backend has `warmPool.size` > 0. */
  readonly pool: KubernetesPool;

  constructor(private readonly o: KubernetesPlatformOptions) {
    const p = o.podOptions;
    this.pool = new KubernetesPool({
      core: o.core,
      pods: o.pods,
      namespace: o.namespace,
      podOptions: () => this.podOptions(),
      // Everything a member's spec depends on: a change makes the pool replace its members.
      fingerprintParts: {
        namespace: o.namespace,
        image: p.image,
        imagePullPolicy: p.imagePullPolicy,
        limits: p.limits,
        cpuRequest: p.cpuRequest,
        runtimeClass: p.runtimeClass,
        keeperSlackSeconds: o.keeperSlackSeconds,
        sessionMaxLifetimeSeconds: o.sessionMaxLifetimeSeconds,
      },
      sessionMaxLifetimeSeconds: o.sessionMaxLifetimeSeconds,
      keeperSlackSeconds: o.keeperSlackSeconds,
      logger: o.logger,
    });
  }

  async ping(): Promise<void> {
    await this.o.core.listNamespacedPod({
      namespace: this.o.namespace,
      labelSelector: labelSelector("session"),
      limit: 1,
    });
  }

  private async podOptions(): Promise<PodSpecOptions> {
    return { ...this.o.podOptions, owner: await this.o.owner() };
  }

  async execute(req: OneShotRequest): Promise<ExecResult> {
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const name = newExecutorName();
    const pod = buildExecutorPod({
      ...(await this.podOptions()),
      name,
      now: this.o.now(),
      timeoutMs: req.timeoutMs,
      podReadyTimeoutSec: this.o.podReadyTimeoutSec,
    });
    const running = await this.o.pods.createAndStart(pod, req.signal);
    try {
      const t = new PodExecTransport(this.o.kc, this.o.namespace, name, EXECUTOR_CONTAINER);
      await stageFiles(t, req.files, { maxFileBytes: this.o.maxFileBytes });
      return await runCode(t, req, {
        cpuSeconds: this.o.limits.cpuTimeLimitSec,
        maxFileBytes: this.o.maxFileBytes,
      });
    } catch (err) {
      throw toCoreError(err, `run code in ${name}`);
    } finally {
      await this.o.pods.deleteQuietly(name, running.metadata?.uid);
    }
  }

  async create(spec: SessionSpec): Promise<PlatformResource> {
    const pod = buildSessionPod({
      ...(await this.podOptions()),
      name: spec.id,
      lifetime: spec.lifetime,
      keeperIdleTimeoutSeconds: spec.keeperIdleTimeoutSeconds,
      keeperSlackSeconds: this.o.keeperSlackSeconds,
      labels: spec.labels,
      annotations: spec.annotations,
    });
    return podResource(await this.o.pods.createAndStart(pod));
  }

  async find(id: string): Promise<PlatformResource | null> {
    try {
      return podResource(await this.o.core.readNamespacedPod({ name: id, namespace: this.o.namespace }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Sessions: never an unclaimed pool member (`!LABEL_POOL`; a claim removes the label). */
  list(filter: { owner?: string }): Promise<PlatformResource[]> {
    const extra: Record<string, string> = filter.owner === undefined ? {} : { [LABEL_OWNER]: filter.owner };
    return this.listPods(`${labelSelector("session", extra)},!${LABEL_POOL}`);
  }

  /** One-shot executors: cold ones and pool members claimed for a run (component=executor). */
  listExecutors(): Promise<PlatformResource[]> {
    return this.listPods(labelSelector("executor"));
  }

  private async listPods(selector: string) {
    const list = await this.o.core.listNamespacedPod({
      namespace: this.o.namespace,
      labelSelector: selector,
    });
    return list.items.map(podResource);
  }

  async remove(r: PlatformResource): Promise<"removed" | "gone"> {
    try {
      // The uid precondition deletes exactly the pod whose labels were checked.
      await this.o.pods.delete(podNameOf(r), r.handle || undefined);
      return "removed";
    } catch (err) {
      // 404: someone else (another replica, the kubelet) got there first; 409: replaced.
      if (isNotFound(err) || isConflict(err)) return "gone";
      throw err;
    }
  }

  transport(r: PlatformResource): PodExecTransport {
    return new PodExecTransport(this.o.kc, this.o.namespace, podNameOf(r), EXECUTOR_CONTAINER);
  }

  async readState(r: PlatformResource): Promise<SessionState> {
    const pod = await this.o.core.readNamespacedPod({ name: podNameOf(r), namespace: this.o.namespace });
    return podResource(pod).state ?? {};
  }

  /** A merge patch of only the given annotations: a keepalive and an activity record never overwrite each other. */
  async writeState(r: PlatformResource, patch: SessionState): Promise<void> {
    const annotations: Record<string, string> = {};
    if (patch.expiresAt !== undefined) {
      annotations[ANNOTATION_EXPIRES_AT] = String(patch.expiresAt);
      annotations[ANNOTATION_EXPIRES_AT_ISO] = new Date(patch.expiresAt).toISOString();
    }
    if (patch.lastActiveAt !== undefined) annotations[ANNOTATION_LAST_ACTIVE_AT] = String(patch.lastActiveAt);
    await this.o.core.patchNamespacedPod(
      { name: podNameOf(r), namespace: this.o.namespace, body: { metadata: { annotations } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  mapError(err: unknown, what: string, sessionId?: string): CodeInterpreterError {
    if (sessionId !== undefined && isNotFound(err)) return new SessionNotFoundError(sessionId);
    // The layer names operations with a gerund ("creating the session"); k8s-errors says "failed to <what>".
    return toCoreError(err, `finish ${what}`) as CodeInterpreterError;
  }

  async close(): Promise<void> {
    // No timers or pooled connections of our own; client-node's agents close with the process.
  }
}
