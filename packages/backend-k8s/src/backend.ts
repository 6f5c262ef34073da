/**
 * The Kubernetes backend: sessions and one-shot runs as hardened pods, driven through the
 * Kubernetes API with @kubernetes/client-node 1.x. All session state lives on the pod
 * (labels for identity and immutable times, annotations for expiry and last activity), so
 * any API replica, or a restarted one, sees the same sessions.
 */
import type { Readable } from "node:stream";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import {
  BackendError,
  LABEL_OWNER,
  LABEL_REAP_AFTER,
  PayloadTooLargeError,
  SessionNotFoundError,
  ValidationError,
  assertSafeWorkspacePath,
  expiryReason,
  fromUnixSeconds,
  inScope,
  isExecutorName,
  isExpired,
  isSessionId,
  keepaliveExpiry,
  labelSelector,
  lifetimeOf,
  listWorkspace,
  newExecutorName,
  newLifetime,
  newSessionId,
  readWorkspaceFile,
  runCode,
  sessionFromTags,
  sessionTags,
  silentLogger,
  stageFiles,
  hasComponentLabels,
  type Backend,
  type BackendCapabilities,
  type CreateSessionRequest,
  type ExecRequest,
  type ExecResult,
  type ExecutorLimits,
  type Logger,
  type OneShotRequest,
  type ReapReport,
  type Scope,
  type SessionFile,
  type SessionInfo,
  type SessionState,
  type SessionStatus,
  type StagedFile,
  type WorkspaceEntry,
} from "@code-interpreter/core";
import { PodExecTransport } from "./exec-transport.js";
import { isConflict, isNotFound, toCoreError } from "./k8s-errors.js";
import {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_EXPIRES_AT_ISO,
  ANNOTATION_LAST_ACTIVE_AT,
  EXECUTOR_CONTAINER,
  buildExecutorPod,
  buildSessionPod,
  type ImagePullPolicy,
  type PodSpecOptions,
} from "./pod-spec.js";

export interface KubernetesBackendOptions {
  /** Defaults to `loadFromDefault()`: $KUBECONFIG / ~/.kube/config, or the in-cluster service account. */
  kubeConfig?: KubeConfig;
  namespace: string;
  image: string;
  imagePullPolicy: ImagePullPolicy;
  podReadyTimeoutSec: number;
  limits: ExecutorLimits;
  sessionMaxLifetimeSeconds: number;
  maxFileBytes: number;
  /** Name of the API's own Deployment (same namespace): pods get an ownerReference to it. */
  ownerDeployment?: string;
  /** Adds the network-lockdown init container (see README: needs iptables and NET_ADMIN). */
  networkLockdown?: boolean;
  /** Image of the lockdown init container; defaults to `image`. */
  networkLockdownImage?: string;
  runtimeClass?: string;
  logger?: Logger;
  now?: () => number;
  /** Poll interval while waiting for a pod to run (default 250 ms, backing off to 1 s). */
  pollIntervalMs?: number;
}

/** Waiting reasons that mean the image will not come (fail fast instead of waiting). */
const IMAGE_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"]);
/** Waiting reasons that mean the container cannot be created at all. */
const CREATE_FAILURES = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

const DELETE_GRACE_SECONDS = 1;

export class KubernetesBackend implements Backend {
  readonly kind = "kubernetes";
  readonly capabilities: BackendCapabilities = {
    oneShot: true,
    sessions: true,
    sessionExec: true,
    sessionFiles: true,
    keepalive: true,
    reaper: true,
  };

  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private readonly now: () => number;
  private ownerRef: Promise<{ name: string; uid: string } | undefined> | null = null;

  constructor(private readonly opts: KubernetesBackendOptions) {
    if (!opts.kubeConfig) {
      const kc = new KubeConfig();
      kc.loadFromDefault();
      this.kc = kc;
    } else {
      this.kc = opts.kubeConfig;
    }
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
  }

  private get ns(): string {
    return this.opts.namespace;
  }

  async ping(): Promise<void> {
    try {
      await this.core.listNamespacedPod({
        namespace: this.ns,
        labelSelector: labelSelector("session"),
        limit: 1,
      });
    } catch (err) {
      throw toCoreError(err, "list pods");
    }
  }

  // ---------------------------------------------------------------- pod plumbing

  private async podOptions(): Promise<PodSpecOptions> {
    return {
      namespace: this.ns,
      image: this.opts.image,
      imagePullPolicy: this.opts.imagePullPolicy,
      limits: this.opts.limits,
      runtimeClass: this.opts.runtimeClass,
      networkLockdown: this.opts.networkLockdown,
      networkLockdownImage: this.opts.networkLockdownImage,
      owner: await this.owner(),
    };
  }

  /** The API's Deployment (for ownerReferences), looked up once; a failure is retried next time. */
  private owner(): Promise<{ name: string; uid: string } | undefined> {
    const name = this.opts.ownerDeployment;
    if (!name) return Promise.resolve(undefined);
    if (!this.ownerRef) {
      const apps = this.kc.makeApiClient(AppsV1Api);
      this.ownerRef = apps.readNamespacedDeployment({ name, namespace: this.ns }).then(
        (d) => {
          const uid = d.metadata?.uid;
          if (!uid) throw new BackendError(`Deployment ${name} has no uid`);
          return { name, uid };
        },
        (err: unknown) => {
          this.ownerRef = null;
          if (isNotFound(err)) {
            throw new BackendError(
              `owner Deployment ${JSON.stringify(name)} not found in namespace ${this.ns} (KUBERNETES_OWNER_DEPLOYMENT)`,
            );
          }
          throw toCoreError(err, `read Deployment ${name}`);
        },
      );
    }
    return this.ownerRef;
  }

  private transport(pod: string): PodExecTransport {
    return new PodExecTransport(this.kc, this.ns, pod, EXECUTOR_CONTAINER);
  }

  /**
   * Creates the pod and waits until it runs. On any failure (invalid spec, image pull error,
   * timeout, abort) the pod is deleted before the error is thrown.
   */
  private async createAndStart(pod: V1Pod, signal?: AbortSignal): Promise<V1Pod> {
    const name = pod.metadata!.name!;
    let created: V1Pod;
    try {
      created = await this.core.createNamespacedPod({ namespace: this.ns, body: pod });
    } catch (err) {
      throw toCoreError(err, `create pod ${name}`);
    }
    try {
      return await this.waitRunning(name, signal);
    } catch (err) {
      await this.deletePodQuietly(name, created.metadata?.uid);
      throw err;
    }
  }

  private async waitRunning(name: string, signal?: AbortSignal): Promise<V1Pod> {
    const timeoutMs = this.opts.podReadyTimeoutSec * 1000;
    const started = Date.now();
    let interval = this.opts.pollIntervalMs ?? 250;
    let last: V1Pod | null = null;
    for (;;) {
      if (signal?.aborted) throw new BackendError("the request was cancelled while the pod was starting");
      try {
        last = await this.core.readNamespacedPod({ name, namespace: this.ns });
      } catch (err) {
        if (isNotFound(err)) throw new BackendError(`pod ${name} disappeared while starting`);
        throw toCoreError(err, `read pod ${name}`);
      }
      const phase = last.status?.phase;
      if (phase === "Running") return last;
      if (phase === "Succeeded" || phase === "Failed") {
        throw new BackendError(
          `pod ${name} ended before it was ready (phase ${phase}${last.status?.reason ? `, ${last.status.reason}` : ""}${
            last.status?.message ? `: ${last.status.message}` : ""
          })`,
        );
      }
      for (const cs of [
        ...(last.status?.initContainerStatuses ?? []),
        ...(last.status?.containerStatuses ?? []),
      ]) {
        const waiting = cs.state?.waiting;
        const reason = waiting?.reason ?? "";
        if (IMAGE_FAILURES.has(reason)) {
          throw new BackendError(
            `pod ${name} cannot start: image ${JSON.stringify(cs.image || this.opts.image)} could not be pulled (${reason}${
              waiting?.message ? `: ${waiting.message}` : ""
            })`,
          );
        }
        if (CREATE_FAILURES.has(reason)) {
          throw new BackendError(
            `pod ${name} cannot start: container ${cs.name} ${reason}${waiting?.message ? `: ${waiting.message}` : ""}`,
          );
        }
        const terminated = cs.state?.terminated;
        if (terminated && terminated.exitCode !== 0 && cs.name !== EXECUTOR_CONTAINER) {
          throw new BackendError(
            `pod ${name} cannot start: init container ${cs.name} failed (exit ${terminated.exitCode}${
              terminated.reason ? `, ${terminated.reason}` : ""
            })`,
          );
        }
      }
      if (Date.now() - started >= timeoutMs) {
        throw new BackendError(
          `pod ${name} was not running after ${this.opts.podReadyTimeoutSec}s (${describePending(last)})`,
        );
      }
      await sleep(Math.min(interval, Math.max(10, timeoutMs - (Date.now() - started))), signal);
      interval = Math.min(1000, Math.round(interval * 1.5));
    }
  }

  /** Deletes a pod (with a uid precondition when known); never throws, logs failures. */
  private async deletePodQuietly(name: string, uid?: string): Promise<void> {
    try {
      await this.deletePod(name, uid);
    } catch (err) {
      if (!isNotFound(err)) this.log.warn({ pod: name, err: String(err) }, "deleting pod failed");
    }
  }

  private deletePod(name: string, uid?: string): Promise<V1Pod> {
    return this.core.deleteNamespacedPod({
      name,
      namespace: this.ns,
      gracePeriodSeconds: DELETE_GRACE_SECONDS,
      propagationPolicy: "Background",
      body: {
        gracePeriodSeconds: DELETE_GRACE_SECONDS,
        propagationPolicy: "Background",
        ...(uid ? { preconditions: { uid } } : {}),
      },
    });
  }

  // ---------------------------------------------------------------- sessions

  /** Reads a session pod; SessionNotFoundError for anything that is not a live session of the scope. */
  private async sessionPod(id: string, scope?: Scope): Promise<{ pod: V1Pod; info: SessionInfo }> {
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    let pod: V1Pod;
    try {
      pod = await this.core.readNamespacedPod({ name: id, namespace: this.ns });
    } catch (err) {
      if (isNotFound(err)) throw new SessionNotFoundError(id);
      throw toCoreError(err, `read pod ${id}`);
    }
    const info = sessionFromPod(pod);
    if (!info || !inScope(info, scope) || isGone(pod) || isExpired(lifetimeOf(info), this.now())) {
      throw new SessionNotFoundError(id);
    }
    return { pod, info };
  }

  async createSession(req: CreateSessionRequest): Promise<SessionInfo> {
    const max = this.opts.sessionMaxLifetimeSeconds;
    if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 1 || req.ttlSeconds > max) {
      throw new ValidationError(`ttl_seconds must be an integer between 1 and ${max}`);
    }
    for (const f of req.files) assertSafeWorkspacePath(f.path, "files[].path");
    const lifetime = newLifetime(this.now(), req.ttlSeconds, max, req.idleTimeoutSeconds);
    const id = newSessionId();
    const tags = sessionTags(lifetime, { owner: req.owner, metadata: req.metadata });
    const pod = buildSessionPod({
      ...(await this.podOptions()),
      name: id,
      lifetime,
      labels: tags.labels,
      annotations: tags.annotations,
    });
    const running = await this.createAndStart(pod);
    try {
      await stageFiles(this.transport(id), req.files);
    } catch (err) {
      await this.deletePodQuietly(id, running.metadata?.uid);
      throw toCoreError(err, `stage files into ${id}`);
    }
    this.log.info({ session: id, files: req.files.length }, "session created");
    const info = sessionFromPod(running);
    if (!info) throw new BackendError(`session pod ${id} lost its labels`);
    return info;
  }

  async getSession(id: string, scope?: Scope): Promise<SessionInfo> {
    return (await this.sessionPod(id, scope)).info;
  }

  async listSessions(scope?: Scope): Promise<SessionInfo[]> {
    const extra: Record<string, string> =
      typeof scope?.owner === "string" ? { [LABEL_OWNER]: scope.owner } : {};
    let pods: V1Pod[];
    try {
      pods = (
        await this.core.listNamespacedPod({
          namespace: this.ns,
          labelSelector: labelSelector("session", extra),
        })
      ).items;
    } catch (err) {
      throw toCoreError(err, "list pods");
    }
    const now = this.now();
    return pods
      .filter((p) => !isGone(p))
      .map(sessionFromPod)
      .filter((s): s is SessionInfo => !!s && inScope(s, scope) && !isExpired(lifetimeOf(s), now))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async countSessions(scope?: Scope): Promise<number> {
    return (await this.listSessions(scope)).length;
  }

  async deleteSession(id: string, scope?: Scope): Promise<void> {
    // Prefix check first: nothing that is not a session id ever reaches the API.
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    let pod: V1Pod;
    try {
      pod = await this.core.readNamespacedPod({ name: id, namespace: this.ns });
    } catch (err) {
      if (isNotFound(err)) throw new SessionNotFoundError(id);
      throw toCoreError(err, `read pod ${id}`);
    }
    const info = sessionFromPod(pod);
    if (!info || !inScope(info, scope) || pod.metadata?.deletionTimestamp) throw new SessionNotFoundError(id);
    // An expired or ended session is already gone for callers (404), but its pod goes now too.
    const gone = isGone(pod) || isExpired(lifetimeOf(info), this.now());
    try {
      // The uid precondition makes sure we delete exactly the pod whose labels we checked.
      await this.deletePod(id, pod.metadata?.uid);
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) throw new SessionNotFoundError(id);
      throw toCoreError(err, `delete pod ${id}`);
    }
    if (gone) throw new SessionNotFoundError(id);
    this.log.info({ session: id }, "session deleted");
  }

  async keepalive(id: string, ttlSeconds: number, scope?: Scope): Promise<SessionInfo> {
    const { info } = await this.sessionPod(id, scope);
    const now = this.now();
    const expiresAt = keepaliveExpiry(lifetimeOf(info), ttlSeconds, now);
    const pod = await this.patchAnnotations(id, {
      [ANNOTATION_EXPIRES_AT]: String(expiresAt),
      [ANNOTATION_EXPIRES_AT_ISO]: new Date(expiresAt).toISOString(),
      [ANNOTATION_LAST_ACTIVE_AT]: String(Math.max(now, info.lastActiveAt)),
    });
    const updated = sessionFromPod(pod);
    if (!updated) throw new SessionNotFoundError(id);
    return updated;
  }

  /** Merge-patches annotations (mutable on Kubernetes, unlike Docker labels). */
  private async patchAnnotations(id: string, annotations: Record<string, string>): Promise<V1Pod> {
    try {
      return await this.core.patchNamespacedPod(
        { name: id, namespace: this.ns, body: { metadata: { annotations } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (isNotFound(err)) throw new SessionNotFoundError(id);
      throw toCoreError(err, `patch pod ${id}`);
    }
  }

  /** Records activity; failures are logged, never fail the call that was active. */
  private async touch(id: string): Promise<void> {
    try {
      await this.patchAnnotations(id, { [ANNOTATION_LAST_ACTIVE_AT]: String(this.now()) });
    } catch (err) {
      this.log.warn({ session: id, err: String(err) }, "recording session activity failed");
    }
  }

  async execInSession(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult> {
    await this.sessionPod(id, scope);
    let touched: Promise<void> | undefined;
    try {
      return await runCode(this.transport(id), req, {
        cpuSeconds: this.opts.limits.cpuTimeLimitSec,
        maxFileBytes: this.opts.maxFileBytes,
        onStarted: () => {
          touched = this.touch(id);
        },
      });
    } catch (err) {
      throw toCoreError(err, `run code in ${id}`);
    } finally {
      await touched;
    }
  }

  async writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    assertSafeWorkspacePath(path);
    if (file.size > this.opts.maxFileBytes) {
      throw new PayloadTooLargeError(`file is larger than ${this.opts.maxFileBytes} bytes`);
    }
    await this.sessionPod(id, scope);
    const staged: StagedFile = { path, size: file.size, open: () => Promise.resolve(file.content) };
    try {
      await stageFiles(this.transport(id), [staged]);
    } catch (err) {
      throw toCoreError(err, `write ${path} in ${id}`);
    }
    await this.touch(id);
    return { path, kind: "file", sizeBytes: file.size };
  }

  async readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    assertSafeWorkspacePath(path);
    await this.sessionPod(id, scope);
    const file = await readWorkspaceFile(this.transport(id), path).catch((err: unknown) => {
      throw toCoreError(err, `read ${path} in ${id}`);
    });
    await this.touch(id);
    return file;
  }

  async listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    await this.sessionPod(id, scope);
    const entries = await listWorkspace(this.transport(id)).catch((err: unknown) => {
      throw toCoreError(err, `list files in ${id}`);
    });
    await this.touch(id);
    return entries;
  }

  // ---------------------------------------------------------------- one-shot

  async execute(req: OneShotRequest): Promise<ExecResult> {
    for (const f of req.files) assertSafeWorkspacePath(f.path, "files[].path");
    const name = newExecutorName();
    const pod = buildExecutorPod({
      ...(await this.podOptions()),
      name,
      now: this.now(),
      timeoutMs: req.timeoutMs,
      podReadyTimeoutSec: this.opts.podReadyTimeoutSec,
    });
    const running = await this.createAndStart(pod, req.signal);
    try {
      const t = this.transport(name);
      await stageFiles(t, req.files);
      return await runCode(t, req, {
        cpuSeconds: this.opts.limits.cpuTimeLimitSec,
        maxFileBytes: this.opts.maxFileBytes,
      });
    } catch (err) {
      throw toCoreError(err, `run code in ${name}`);
    } finally {
      await this.deletePodQuietly(name, running.metadata?.uid);
    }
  }

  // ---------------------------------------------------------------- reaper

  async reap(now: number = this.now()): Promise<ReapReport> {
    const report: ReapReport = { reaped: [], failed: [] };
    const candidates: Array<{ name: string; uid?: string; reason: string }> = [];
    let sessions: V1Pod[];
    let executors: V1Pod[];
    try {
      [sessions, executors] = await Promise.all([
        this.core
          .listNamespacedPod({ namespace: this.ns, labelSelector: labelSelector("session") })
          .then((l) => l.items),
        this.core
          .listNamespacedPod({ namespace: this.ns, labelSelector: labelSelector("executor") })
          .then((l) => l.items),
      ]);
    } catch (err) {
      throw toCoreError(err, "list pods");
    }
    for (const pod of sessions) {
      const name = pod.metadata?.name;
      if (!isSessionId(name) || pod.metadata?.deletionTimestamp) continue;
      const info = sessionFromPod(pod);
      if (!info) continue; // not ours to judge: wrong labels or unreadable times
      const phase = pod.status?.phase;
      const reason =
        expiryReason(lifetimeOf(info), now) ??
        (phase === "Succeeded" || phase === "Failed" ? `pod-${phase.toLowerCase()}` : null);
      if (reason) candidates.push({ name, uid: pod.metadata?.uid, reason });
    }
    for (const pod of executors) {
      const name = pod.metadata?.name;
      if (!isExecutorName(name) || pod.metadata?.deletionTimestamp) continue;
      if (!hasComponentLabels(pod.metadata?.labels, "executor")) continue;
      const reapAfter = fromUnixSeconds(pod.metadata?.labels?.[LABEL_REAP_AFTER]);
      const phase = pod.status?.phase;
      if (reapAfter !== null && now >= reapAfter)
        candidates.push({ name, uid: pod.metadata?.uid, reason: "orphaned" });
      else if (phase === "Succeeded" || phase === "Failed")
        candidates.push({ name, uid: pod.metadata?.uid, reason: "ended" });
    }
    for (const c of candidates) {
      try {
        await this.deletePod(c.name, c.uid);
        report.reaped.push({ id: c.name, reason: c.reason as ReapReport["reaped"][number]["reason"] });
      } catch (err) {
        // 404: someone else (another replica, the kubelet) got there first; 409: replaced.
        if (isNotFound(err) || isConflict(err)) continue;
        report.failed.push({ id: c.name, error: toCoreError(err, `delete pod ${c.name}`).message });
      }
    }
    if (report.reaped.length || report.failed.length) this.log.info({ ...report }, "reaped pods");
    return report;
  }

  async close(): Promise<void> {
    // No timers or pooled connections of our own; client-node's agents close with the process.
  }
}

// ---------------------------------------------------------------- helpers

function podStatus(pod: V1Pod): SessionStatus {
  switch (pod.status?.phase) {
    case "Pending":
      return "pending";
    case "Running":
      return "running";
    default:
      return "stopped";
  }
}

/** Pods that are being deleted or have ended are gone as far as callers are concerned. */
function isGone(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return !!pod.metadata?.deletionTimestamp || phase === "Succeeded" || phase === "Failed";
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

/** SessionInfo from a pod's labels + annotations, or null when it is not a session. */
export function sessionFromPod(pod: V1Pod): SessionInfo | null {
  const name = pod.metadata?.name ?? "";
  const tags = { ...(pod.metadata?.annotations ?? {}), ...(pod.metadata?.labels ?? {}) };
  return sessionFromTags(name, tags, stateFromAnnotations(pod.metadata?.annotations), podStatus(pod));
}

function describePending(pod: V1Pod | null): string {
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Creates the backend (loading the kube config from the environment when none is given). */
export function createKubernetesBackend(opts: KubernetesBackendOptions): KubernetesBackend {
  return new KubernetesBackend(opts);
}
