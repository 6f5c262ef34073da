/**
 * DockerBackend: the executor backend on a Docker engine.
 *
 * - Sessions are containers named `code-session-<uuid>` with the labels
 *   `app=code-interpreter,component=session` plus the immutable lifetime facts. The mutable part
 *   (last activity, keepalive-extended expiry) lives in the container's root-owned
 *   /run/code-interpreter/state.json. Every API process on the engine sees the same sessions.
 * - PID 1 of every container is core's keeper: it reaps zombies and exits at the session's
 *   deadline (or a one-shot executor's reap-after), so a container ends itself even when no API
 *   process runs. AutoRemove then deletes it.
 * - Execution semantics (timeouts, kills, output limits, staging, collection) come from core's
 *   exec-runner on top of DockerExecTransport.
 */
import type { Readable } from "node:stream";
import Dockerode from "dockerode";
import {
  BackendError,
  BackendUnavailableError,
  EXECUTOR_REAP_MARGIN_MS,
  LABEL_OWNER,
  LABEL_REAP_AFTER,
  PayloadTooLargeError,
  STATE_FILE,
  SessionNotFoundError,
  ValidationError,
  assertSafeWorkspacePath,
  assertUniqueSafePaths,
  baseLabels,
  dockerLabelFilter,
  execCapture,
  executorCommands,
  expiryReason,
  fromUnixSeconds,
  hasComponentLabels,
  inScope,
  isExecutorName,
  isExpired,
  isSessionId,
  keepaliveExpiry,
  lifetimeOf,
  listWorkspace,
  newExecutorName,
  newLifetime,
  newSessionId,
  parseSessionState,
  readWorkspaceFile,
  resolveTtlSeconds,
  runCode,
  sessionFromTags,
  sessionTags,
  silentLogger,
  stageFiles,
  toUnixSeconds,
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
  type WorkspaceEntry,
} from "@code-interpreter/core";
import { containerTemplate, createOptions, type ContainerTemplate } from "./container-spec.js";
import {
  isConnectionError,
  isNotFound,
  isNotRunning,
  isRemovalInProgress,
  mapDockerError,
  mapSessionError,
} from "./errors.js";
import { KeyedMutex, mapLimit } from "./mutex.js";
import { DockerExecTransport } from "./transport.js";

export interface DockerBackendOptions {
  /** A ready client; when absent one is created for `socketPath` (or DOCKER_HOST / the default socket). */
  docker?: Dockerode;
  socketPath?: string;
  /** Executor image, e.g. "code-interpreter-executor:latest". Never pulled. */
  image: string;
  limits: ExecutorLimits;
  /** Hard cap on a session's life (SESSION_MAX_LIFETIME_SECONDS). */
  sessionMaxLifetimeSeconds: number;
  /** Per-file cap for collected and written files (the file store's limit). */
  maxFileBytes: number;
  logger?: Logger;
  /** Clock (unix ms); injectable for tests. */
  now?: () => number;
  /** Upper bound for one control call to the engine (inspect, create, remove, ...). Default 30 s. */
  apiTimeoutMs?: number;
  /** Parallel state reads / removals in listSessions and reap. Default 8. */
  concurrency?: number;
}

interface LoadedSession {
  info: SessionInfo;
  labels: Record<string, string>;
  containerId: string;
  transport: DockerExecTransport;
}

type RemoveOutcome = "removed" | "gone" | "in-progress";

/** A session container still in "created" state younger than this is being set up by someone. */
const CREATED_GRACE_MS = 120_000;
/** How long to wait for a removal someone else started (AutoRemove, another reaper). */
const REMOVAL_WAIT_MS = 10_000;
const STATE_MAX_BYTES = 64 * 1024;
/** Re-checks (200 ms apart) before a failed state read counts as a real failure. */
const STILL_RUNNING_CHECKS = 5;

interface PingWithOptions {
  ping(opts: { abortSignal?: AbortSignal }): Promise<unknown>;
}

export class DockerBackend implements Backend {
  readonly kind = "docker";
  readonly capabilities: BackendCapabilities = {
    oneShot: true,
    sessions: true,
    sessionExec: true,
    sessionFiles: true,
    keepalive: true,
    reaper: true,
  };

  private readonly docker: Dockerode;
  private readonly image: string;
  private readonly limits: ExecutorLimits;
  private readonly maxLifetimeSeconds: number;
  private readonly maxFileBytes: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly apiTimeoutMs: number;
  private readonly concurrency: number;
  private readonly template: ContainerTemplate;
  private readonly mutex = new KeyedMutex();
  private readonly background = new Set<Promise<void>>();
  private closed = false;

  constructor(opts: DockerBackendOptions) {
    if (!opts.image || typeof opts.image !== "string") throw new ValidationError("image is required");
    if (!Number.isInteger(opts.sessionMaxLifetimeSeconds) || opts.sessionMaxLifetimeSeconds < 1) {
      throw new ValidationError("sessionMaxLifetimeSeconds must be a positive integer");
    }
    if (!(opts.maxFileBytes > 0)) throw new ValidationError("maxFileBytes must be positive");
    this.docker = opts.docker ?? new Dockerode(opts.socketPath ? { socketPath: opts.socketPath } : undefined);
    this.image = opts.image;
    this.limits = { ...opts.limits };
    this.maxLifetimeSeconds = opts.sessionMaxLifetimeSeconds;
    this.maxFileBytes = opts.maxFileBytes;
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.apiTimeoutMs = opts.apiTimeoutMs ?? 30_000;
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    // Precomputed once: per container only name, labels and the keeper's argv differ.
    this.template = containerTemplate(this.image, this.limits);
  }

  // ---------------------------------------------------------------- health

  async ping(): Promise<void> {
    this.assertOpen();
    try {
      await (this.docker as unknown as PingWithOptions).ping({ abortSignal: this.signal() });
    } catch (err) {
      const mapped = mapDockerError(err, "answering a ping", this.image);
      if (mapped instanceof BackendUnavailableError) throw mapped;
      throw new BackendUnavailableError(mapped.message, { cause: err });
    }
  }

  // ---------------------------------------------------------------- one-shot

  async execute(req: OneShotRequest): Promise<ExecResult> {
    this.assertOpen();
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const name = newExecutorName();
    const now = this.now();
    const reapAfter = now + req.timeoutMs + EXECUTOR_REAP_MARGIN_MS;
    const labels = { ...baseLabels("executor"), [LABEL_REAP_AFTER]: toUnixSeconds(reapAfter + 999) };
    const cmd = executorCommands.keeper({
      statePath: null,
      maxExpiresAt: reapAfter,
      expiresAt: reapAfter,
      idleTimeoutSeconds: null,
      createdAt: now,
    });
    try {
      const container = await this.docker.createContainer(
        createOptions(this.template, name, labels, cmd, this.signal()),
      );
      await container.start({ abortSignal: this.signal() });
      const transport = this.transport(container.id);
      await stageFiles(transport, req.files, { maxFileBytes: this.maxFileBytes });
      return await runCode(transport, req, {
        cpuSeconds: this.limits.cpuTimeLimitSec,
        maxFileBytes: this.maxFileBytes,
        kill: async () => {
          await this.removeAndWait(container.id);
        },
      });
    } catch (err) {
      throw mapDockerError(err, "running the code", this.image);
    } finally {
      await this.removeAndWait(name).catch((err: unknown) =>
        this.logger.warn({ container: name, err: String(err) }, "removing a one-shot executor failed"),
      );
    }
  }

  // ---------------------------------------------------------------- sessions

  async createSession(req: CreateSessionRequest): Promise<SessionInfo> {
    this.assertOpen();
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const ttl = resolveTtlSeconds(req.ttlSeconds, this.maxLifetimeSeconds);
    const idle = req.idleTimeoutSeconds;
    if (idle !== null && (!Number.isInteger(idle) || idle < 1)) {
      throw new ValidationError("idle_timeout_seconds must be a positive integer");
    }
    const lifetime = newLifetime(this.now(), ttl, this.maxLifetimeSeconds, idle);
    const tags = sessionTags(lifetime, { owner: req.owner, metadata: req.metadata });
    // Docker has no annotations: the metadata JSON is a label too.
    const labels = { ...tags.labels, ...tags.annotations };
    const id = newSessionId();
    const cmd = executorCommands.keeper({
      statePath: STATE_FILE,
      maxExpiresAt: lifetime.maxExpiresAt,
      expiresAt: lifetime.expiresAt,
      idleTimeoutSeconds: lifetime.idleTimeoutSeconds,
      createdAt: lifetime.createdAt,
    });
    try {
      const container = await this.docker.createContainer(
        createOptions(this.template, id, labels, cmd, this.signal()),
      );
      await container.start({ abortSignal: this.signal() });
      await stageFiles(this.transport(container.id), req.files);
    } catch (err) {
      // By name: also covers a create that reached the engine but whose answer was lost.
      await this.removeAndWait(id).catch((e: unknown) =>
        this.logger.error({ sessionId: id, err: String(e) }, "removing a half-made session failed"),
      );
      throw mapDockerError(err, "creating the session container", this.image);
    }
    const info = sessionFromTags(id, labels, {}, "running");
    if (!info) throw new BackendError("internal error: the new session's labels are unreadable");
    this.logger.info({ sessionId: id, expiresAt: info.expiresAt }, "session created");
    return info;
  }

  async getSession(id: string, scope?: Scope): Promise<SessionInfo> {
    this.assertOpen();
    return (await this.loadSession(id, scope)).info;
  }

  async listSessions(scope?: Scope): Promise<SessionInfo[]> {
    this.assertOpen();
    const candidates = await this.runningSessions(scope);
    const now = this.now();
    const infos = await mapLimit(candidates, this.concurrency, async (c) => {
      try {
        const state = await this.readState(this.transport(c.id));
        return sessionFromTags(c.name, c.labels, state, "running");
      } catch (err) {
        if (isConnectionError(err)) throw mapDockerError(err, "listing sessions");
        this.logger.debug(
          { sessionId: c.name, err: String(err) },
          "skipping a session whose state is unreadable",
        );
        return null;
      }
    });
    return infos
      .filter((s): s is SessionInfo => s !== null && !isExpired(lifetimeOf(s), now))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /**
   * How many live sessions `scope` has — what MAX_SESSIONS counts (listSessions' length, except
   * that a session whose state cannot be read still counts while its labels say it lives). The labels alone
   * give a session's earliest possible deadline, so its state is read only when the labels say
   * it has expired (a keepalive may have extended it): admission stays cheap however many
   * sessions there are, instead of one exec per session for every create.
   */
  async countSessions(scope?: Scope): Promise<number> {
    this.assertOpen();
    const now = this.now();
    const unsure: Array<{ id: string; name: string; labels: Record<string, string> }> = [];
    let live = 0;
    for (const c of await this.runningSessions(scope)) {
      if (isExpired(lifetimeOf(c.base), now)) unsure.push(c);
      else live += 1;
    }
    const checked = await mapLimit(unsure, this.concurrency, async (c) => {
      try {
        const info = sessionFromTags(c.name, c.labels, await this.readState(this.transport(c.id)), "running");
        return info !== null && !isExpired(lifetimeOf(info), now);
      } catch (err) {
        if (isConnectionError(err)) throw mapDockerError(err, "counting sessions");
        return false;
      }
    });
    return live + checked.filter(Boolean).length;
  }

  /** Running containers that are sessions of `scope`, with what their labels say. */
  private async runningSessions(
    scope: Scope | undefined,
  ): Promise<Array<{ id: string; name: string; labels: Record<string, string>; base: SessionInfo }>> {
    const extra: Record<string, string> =
      typeof scope?.owner === "string" ? { [LABEL_OWNER]: scope.owner } : {};
    const list = await this.listByLabel("session", extra, false);
    return list.flatMap((c) => {
      const name = containerName(c);
      if (!name || !isSessionId(name) || c.State !== "running") return [];
      const labels = c.Labels ?? {};
      const base = sessionFromTags(name, labels, null, "running");
      if (!base || !inScope(base, scope)) return [];
      return [{ id: c.Id, name, labels, base }];
    });
  }

  async deleteSession(id: string, scope?: Scope): Promise<void> {
    this.assertOpen();
    if (!isSessionId(id)) throw new SessionNotFoundError(id);
    const inspect = await this.inspectSession(id);
    const labels = inspect.Config?.Labels ?? {};
    if (!hasComponentLabels(labels, "session")) throw new SessionNotFoundError(id);
    if (!inScope({ owner: labels[LABEL_OWNER] ?? null }, scope)) throw new SessionNotFoundError(id);
    // An expired or stopped session is already gone for the caller (404, like every other
    // call); its container is removed all the same.
    const live = await this.isLive(inspect, id, labels);
    let outcome: RemoveOutcome;
    try {
      outcome = await this.forceRemove(inspect.Id);
    } catch (err) {
      throw mapSessionError(err, id, "deleting the session");
    }
    if (outcome === "gone" || !live) throw new SessionNotFoundError(id);
    this.logger.info({ sessionId: id }, "session deleted");
  }

  async keepalive(id: string, ttlSeconds: number, scope?: Scope): Promise<SessionInfo> {
    this.assertOpen();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new ValidationError("ttl_seconds must be a positive integer");
    }
    const s = await this.loadSession(id, scope);
    const expiresAt = keepaliveExpiry(lifetimeOf(s.info), ttlSeconds, this.now());
    try {
      const r = await execCapture(s.transport, executorCommands.state("extend", expiresAt), {
        user: "root",
        maxBytes: STATE_MAX_BYTES,
      });
      if (r.exitCode !== 0) {
        throw new BackendError(`extending the session failed: ${r.stderr.toString().trim().slice(0, 300)}`);
      }
      const info = sessionFromTags(id, s.labels, parseSessionState(r.stdout.toString()), "running");
      if (!info) throw new SessionNotFoundError(id);
      return info;
    } catch (err) {
      throw mapSessionError(err, id, "extending the session");
    }
  }

  async execInSession(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult> {
    this.assertOpen();
    if (!isSessionId(id)) throw new SessionNotFoundError(id);
    return this.mutex.run(id, async () => {
      const s = await this.loadSession(id, scope, { needState: false });
      let touched: Promise<void> = Promise.resolve();
      try {
        const result = await runCode(s.transport, req, {
          cpuSeconds: this.limits.cpuTimeLimitSec,
          maxFileBytes: this.maxFileBytes,
          onStarted: () => {
            touched = this.touch(s);
          },
        });
        await touched;
        return result;
      } catch (err) {
        throw mapSessionError(err, id, "running code in the session");
      }
    });
  }

  async writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    this.assertOpen();
    assertSafeWorkspacePath(path);
    if (!Number.isInteger(file.size) || file.size < 0)
      throw new ValidationError("size must be a whole number");
    if (file.size > this.maxFileBytes) {
      throw new PayloadTooLargeError(`the file is larger than the limit of ${this.maxFileBytes} bytes`);
    }
    if (!isSessionId(id)) throw new SessionNotFoundError(id);
    return this.mutex.run(id, async () => {
      const s = await this.loadSession(id, scope, { needState: false });
      try {
        await Promise.all([
          stageFiles(s.transport, [{ path, size: file.size, open: () => Promise.resolve(file.content) }]),
          this.touch(s),
        ]);
      } catch (err) {
        throw mapSessionError(err, id, "writing the file");
      }
      return { path, kind: "file" as const, sizeBytes: file.size };
    });
  }

  async readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    this.assertOpen();
    assertSafeWorkspacePath(path);
    const s = await this.loadSession(id, scope, { needState: false });
    try {
      const [file] = await Promise.all([
        readWorkspaceFile(s.transport, path, { maxBytes: this.maxFileBytes }),
        this.touch(s),
      ]);
      return file;
    } catch (err) {
      throw mapSessionError(err, id, "reading the file");
    }
  }

  async listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    this.assertOpen();
    const s = await this.loadSession(id, scope, { needState: false });
    try {
      const [entries] = await Promise.all([listWorkspace(s.transport), this.touch(s)]);
      return entries;
    } catch (err) {
      throw mapSessionError(err, id, "listing the workspace");
    }
  }

  // ---------------------------------------------------------------- reaper

  async reap(now: number = this.now()): Promise<ReapReport> {
    this.assertOpen();
    const report: ReapReport = { reaped: [], failed: [] };
    const [sessions, executors] = await Promise.all([
      this.listByLabel("session", {}, true),
      this.listByLabel("executor", {}, true),
    ]);

    type Job = { id: string; name: string; reason: string };
    const jobs: Job[] = [];

    const decisions = await mapLimit(sessions, this.concurrency, async (c): Promise<Job | null> => {
      const name = containerName(c);
      const labels = c.Labels ?? {};
      if (!name || !isSessionId(name) || !hasComponentLabels(labels, "session")) return null;
      if (c.State === "removing") return null;
      if (c.State !== "running") {
        // A young "created" container is another process's createSession in flight.
        if (c.State === "created" && now - c.Created * 1000 < CREATED_GRACE_MS) return null;
        return { id: c.Id, name, reason: "stopped" };
      }
      const base = sessionFromTags(name, labels, null, "running");
      if (!base) {
        this.logger.warn(
          { sessionId: name },
          "reaper: session labels are unreadable; leaving it to its keeper",
        );
        return null;
      }
      let state: SessionState | null;
      try {
        state = await this.readState(this.transport(c.Id));
      } catch (err) {
        // Ending by itself, or another reaper is removing it right now: not a failure.
        if (isNotFound(err) || isNotRunning(err) || !(await this.stillRunning(c.Id))) return null;
        report.failed.push({ id: name, error: mapDockerError(err, "reading session state").message });
        return null;
      }
      const info = sessionFromTags(name, labels, state, "running");
      if (!info || !isExpired(lifetimeOf(info), now)) return null;
      return { id: c.Id, name, reason: expiryReason(lifetimeOf(info), now) ?? "expired" };
    });
    for (const d of decisions) if (d) jobs.push(d);

    for (const c of executors) {
      const name = containerName(c);
      const labels = c.Labels ?? {};
      if (!name || !isExecutorName(name) || !hasComponentLabels(labels, "executor")) continue;
      if (c.State === "removing") continue;
      const reapAfter = fromUnixSeconds(labels[LABEL_REAP_AFTER]);
      if (reapAfter === null || now < reapAfter) continue;
      jobs.push({ id: c.Id, name, reason: "orphaned-executor" });
    }

    await mapLimit(jobs, this.concurrency, async (job) => {
      try {
        const outcome = await this.forceRemove(job.id);
        if (outcome !== "removed") return; // another reaper or AutoRemove is faster
        report.reaped.push({ id: job.name, reason: job.reason });
        this.logger.info({ container: job.name, reason: job.reason }, "reaped container");
      } catch (err) {
        const error = mapDockerError(err, "removing a container").message;
        report.failed.push({ id: job.name, error });
        this.logger.warn({ container: job.name, reason: job.reason, error }, "reaping a container failed");
      }
    });
    return report;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.background]);
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new BackendUnavailableError("the Docker backend is closed");
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.apiTimeoutMs);
  }

  private transport(containerId: string): DockerExecTransport {
    return new DockerExecTransport(this.docker.getContainer(containerId), {
      apiTimeoutMs: this.apiTimeoutMs,
    });
  }

  private async listByLabel(
    component: "session" | "executor",
    extra: Record<string, string>,
    all: boolean,
  ): Promise<Dockerode.ContainerInfo[]> {
    try {
      return await this.docker.listContainers({
        all,
        filters: dockerLabelFilter(component, extra),
        abortSignal: this.signal(),
      });
    } catch (err) {
      throw mapDockerError(err, `listing ${component} containers`);
    }
  }

  private async inspectSession(id: string): Promise<Dockerode.ContainerInspectInfo> {
    let inspect: Dockerode.ContainerInspectInfo;
    try {
      inspect = await this.docker.getContainer(id).inspect({ abortSignal: this.signal() });
    } catch (err) {
      throw mapSessionError(err, id, "inspecting the session");
    }
    // getContainer also resolves id prefixes; only the exact name counts.
    if (inspect.Name.replace(/^\//, "") !== id) throw new SessionNotFoundError(id);
    return inspect;
  }

  /**
   * The checks every session call makes: strict id, the container's name and identity labels,
   * the owner, running, the state record, not expired. Anything else is "not found".
   */
  /**
   * Inspects a session and checks it is ours, in scope, running and not expired. The state file
   * can only move deadlines later (keepalive, activity), so when the labels alone say the
   * session is alive it is alive: `needState: false` (exec and file calls) then skips reading
   * the state; `info` then carries the label view of expiry and activity.
   */
  private async loadSession(
    id: string,
    scope: Scope | undefined,
    opts: { needState: boolean } = { needState: true },
  ): Promise<LoadedSession> {
    if (!isSessionId(id)) throw new SessionNotFoundError(id);
    const inspect = await this.inspectSession(id);
    const labels = inspect.Config?.Labels ?? {};
    const base = sessionFromTags(id, labels, null, "running");
    if (!base || !inScope(base, scope)) throw new SessionNotFoundError(id);
    if (!inspect.State?.Running) {
      if (inspect.State?.Status === "exited" || inspect.State?.Status === "dead") {
        this.inBackground(() => this.reapOne(inspect.Id, id, "stopped"));
      }
      throw new SessionNotFoundError(id);
    }
    const transport = this.transport(inspect.Id);
    if (!opts.needState && !isExpired(lifetimeOf(base), this.now())) {
      return { info: base, labels, containerId: inspect.Id, transport };
    }
    let state: SessionState;
    try {
      state = await this.readState(transport);
    } catch (err) {
      if (!isConnectionError(err) && !(await this.stillRunning(inspect.Id)))
        throw new SessionNotFoundError(id);
      throw mapSessionError(err, id, "reading the session state");
    }
    const info = sessionFromTags(id, labels, state, "running");
    if (!info) throw new SessionNotFoundError(id);
    const now = this.now();
    if (isExpired(lifetimeOf(info), now)) {
      this.inBackground(() => this.reapOne(inspect.Id, id, expiryReason(lifetimeOf(info), now) ?? "expired"));
      throw new SessionNotFoundError(id);
    }
    return { info, labels, containerId: inspect.Id, transport };
  }

  /**
   * For deleteSession: false when the session is stopped or expired. The labels alone give the
   * earliest possible deadline (the state record only moves it later), so the state is read
   * only for a session past that. When it cannot be read, the session counts as live.
   */
  private async isLive(
    inspect: Dockerode.ContainerInspectInfo,
    id: string,
    labels: Record<string, string>,
  ): Promise<boolean> {
    if (!inspect.State?.Running) return false;
    const base = sessionFromTags(id, labels, null, "running");
    const now = this.now();
    if (!base || !isExpired(lifetimeOf(base), now)) return true;
    try {
      const info = sessionFromTags(id, labels, await this.readState(this.transport(inspect.Id)), "running");
      return !info || !isExpired(lifetimeOf(info), now);
    } catch (err) {
      return isConnectionError(err) || (await this.stillRunning(inspect.Id));
    }
  }

  private async readState(t: DockerExecTransport): Promise<SessionState> {
    const r = await execCapture(t, executorCommands.state("read"), {
      user: "root",
      maxBytes: STATE_MAX_BYTES,
    });
    if (r.exitCode !== 0) {
      throw new BackendError(
        `reading the session state failed (exit ${r.exitCode}): ${r.stderr.toString().trim().slice(0, 300)}`,
      );
    }
    return parseSessionState(r.stdout.toString());
  }

  /**
   * False when the container is gone or stopping (e.g. removed by another process meanwhile).
   * A container being killed still reports Running for a moment (Running wins over
   * "removing" in its status), so a running answer is re-checked for a short while.
   */
  private async stillRunning(containerId: string): Promise<boolean> {
    for (let i = 0; ; i++) {
      try {
        const info = await this.docker.getContainer(containerId).inspect({ abortSignal: this.signal() });
        if (info.State?.Running !== true || info.State.Dead) return false;
      } catch (err) {
        if (isNotFound(err)) return false;
        return true; // unknown: let the caller report the original error
      }
      if (i >= STILL_RUNNING_CHECKS) return true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Records activity; never fails the call it accompanies. */
  private async touch(s: LoadedSession): Promise<void> {
    try {
      const r = await execCapture(s.transport, executorCommands.state("touch"), {
        user: "root",
        maxBytes: STATE_MAX_BYTES,
      });
      if (r.exitCode !== 0) throw new Error(r.stderr.toString().trim().slice(0, 300));
    } catch (err) {
      this.logger.warn({ sessionId: s.info.id, err: String(err) }, "recording session activity failed");
    }
  }

  private async reapOne(containerId: string, name: string, reason: string): Promise<void> {
    const outcome = await this.forceRemove(containerId);
    if (outcome !== "gone") this.logger.info({ container: name, reason }, "reaped container");
  }

  private inBackground(fn: () => Promise<void>): void {
    const p: Promise<void> = fn()
      .catch((err: unknown) => this.logger.warn({ err: String(err) }, "background cleanup failed"))
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  /** Force-removes a container; 404 = already gone, 409 "in progress" = someone else removes it. */
  private async forceRemove(ref: string): Promise<RemoveOutcome> {
    try {
      await this.docker.getContainer(ref).remove({ force: true, v: true, abortSignal: this.signal() });
      return "removed";
    } catch (err) {
      if (isNotFound(err)) return "gone";
      if (isRemovalInProgress(err)) return "in-progress";
      throw err;
    }
  }

  /** Force-removes and, when another removal is under way, waits until the container is gone. */
  private async removeAndWait(ref: string): Promise<void> {
    const outcome = await this.forceRemove(ref);
    if (outcome !== "in-progress") return;
    const until = Date.now() + REMOVAL_WAIT_MS;
    while (Date.now() < until) {
      try {
        await this.docker.getContainer(ref).inspect({ abortSignal: this.signal() });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function containerName(c: Dockerode.ContainerInfo): string | null {
  const n = c.Names?.[0];
  return n ? n.replace(/^\//, "") : null;
}

export function createDockerBackend(opts: DockerBackendOptions): DockerBackend {
  return new DockerBackend(opts);
}
