/**
 * The session layer: the whole session algorithm, written once, over a SessionPlatform.
 * Backends extend SessionBackend with their platform (Docker containers, Kubernetes pods);
 * what a caller sees — id checks, owner scope, expiry and idle decisions, removal of dead
 * sessions found on access, per-session serialisation, activity recording, validation,
 * sorting, reap reasons, use after close(), error mapping — is decided here.
 */
import type { Readable } from "node:stream";
import type {
  Backend,
  BackendCapabilities,
  CreateSessionRequest,
  ExecRequest,
  ExecResult,
  Logger,
  OneShotRequest,
  ReapReport,
  Scope,
  SessionFile,
  SessionInfo,
  WorkspaceEntry,
} from "../backend.js";
import { silentLogger } from "../backend.js";
import {
  BackendError,
  BackendUnavailableError,
  SessionExhaustedError,
  SessionNotFoundError,
  isCodeInterpreterError,
  type CodeInterpreterError,
} from "../errors.js";
import { AgentChannelError, type AgentChannel } from "../agent/channel.js";
import { AgentChannels } from "../agent/channels.js";
import { isExpired, keepaliveExpiry, newLifetime } from "../lifetime.js";
import { isSessionId, newSessionId } from "../naming.js";
import { assertSafeWorkspacePath } from "../paths.js";
import { inScope, lifetimeOf, sessionFromTags, sessionTags, type SessionState } from "../session.js";
import { activityWriteIntervalMs } from "./activity.js";
import { exhaustionError } from "./exhaustion.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { PlatformResource, SessionPlatform } from "./platform.js";
import { reapResources } from "./reaper.js";
import { SessionStore, type Loaded } from "./session-store.js";
import { validateCreateRequest, validateFileWrite, validateKeepaliveTtl } from "./validation.js";

export interface SessionBackendOptions {
  /** Hard cap on a session's life (SESSION_MAX_LIFETIME_SECONDS). */
  sessionMaxLifetimeSeconds: number;
  /** Per-file cap for collected and written files (the file store's limit). */
  maxFileBytes: number;
  /** RLIMIT_CPU of each program, in seconds (0 = none). */
  cpuTimeLimitSec: number;
  /** @default a logger that drops everything */
  logger?: Logger;
  /** Clock (unix ms), injectable for tests. @default Date.now */
  now?: () => number;
  /** Parallel state reads and removals in listSessions and reap. @default 8 */
  concurrency?: number;
  /**
   * A session resource still pending after this long is left over from a create that died
   * (reaped as "stopped"). @default 120000
   */
  pendingGraceMs?: number;
  /**
   * A session's channel to its resident agent is closed after this long without a call (the
   * agent and its state stay; the next call opens a new channel). @default 600000
   */
  agentChannelIdleMs?: number;
}

const ALL: BackendCapabilities = {
  oneShot: true,
  sessions: true,
  sessionExec: true,
  sessionFiles: true,
  keepalive: true,
  reaper: true,
};

export class SessionBackend implements Backend {
  readonly kind: string;
  readonly capabilities: BackendCapabilities;
  protected readonly logger: Logger;
  protected readonly now: () => number;
  private readonly maxLifetimeSeconds: number;
  private readonly maxFileBytes: number;
  private readonly cpuSeconds: number;
  private readonly concurrency: number;
  private readonly pendingGraceMs: number;
  /**
   * Serialises the Python cells of one session in this API process: a second concurrent cell
   * waits for the first (the agent itself answers 409 to a second cell arriving from another
   * API process). Bash and file operations run concurrently: the agent handles them.
   */
  private readonly calls = new KeyedMutex();
  /** One channel per session to its resident agent (opened on first use). */
  private readonly channels: AgentChannels;
  /** The resource each channel was opened for (its transport). */
  private readonly resources = new Map<string, PlatformResource>();
  private readonly store: SessionStore;
  private closing: Promise<void> | null = null;

  constructor(
    protected readonly platform: SessionPlatform,
    opts: SessionBackendOptions,
  ) {
    this.kind = platform.kind;
    this.capabilities = { ...ALL, ...platform.capabilities };
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.maxLifetimeSeconds = opts.sessionMaxLifetimeSeconds;
    this.maxFileBytes = opts.maxFileBytes;
    this.cpuSeconds = opts.cpuTimeLimitSec;
    this.concurrency = Math.max(1, opts.concurrency ?? 8);
    this.pendingGraceMs = opts.pendingGraceMs ?? 120_000;
    this.store = new SessionStore(platform, this.logger, this.now, this.concurrency);
    this.channels = new AgentChannels(
      (id) => {
        const r = this.resources.get(id);
        if (!r) throw new SessionNotFoundError(id);
        return this.platform.transport(r);
      },
      {
        maxFileBytes: this.maxFileBytes,
        cpuSeconds: this.cpuSeconds,
        idleMs: opts.agentChannelIdleMs ?? 600_000,
      },
    );
  }

  /** The session's agent channel (a new one when the resource changed, e.g. recreated). */
  private channel(r: PlatformResource): AgentChannel {
    const known = this.resources.get(r.name);
    if (known && known.handle !== r.handle) this.channels.close(r.name);
    this.resources.set(r.name, r);
    return this.channels.get(r.name);
  }

  /**
   * The checks of a session call. While this process's channel to the session's agent is
   * open, the resource this process found when it opened it is used (its tags cannot change;
   * a removed or stopped session breaks the channel, and the next call looks it up again):
   * the hot path makes no platform request. Otherwise, the store's lookup.
   */
  private async loadForCall(id: string, scope: Scope | undefined): Promise<Loaded> {
    const r = this.resources.get(id);
    if (r && this.channels.get(id).open) {
      const info = this.store.view(r);
      if (info && inScope(info, scope) && !isExpired(lifetimeOf(info), this.now())) return { r, info };
    }
    return this.store.load(id, scope, false);
  }

  private forgetChannel(id: string): void {
    this.channels.close(id);
    this.resources.delete(id);
  }

  async ping(): Promise<void> {
    this.assertOpen();
    try {
      await this.platform.ping();
    } catch (err) {
      // Unreachable: BackendUnavailableError; reachable but refusing (credentials, RBAC): as mapped.
      throw this.platform.mapError(err, "answering a ping");
    }
  }

  async execute(req: OneShotRequest): Promise<ExecResult> {
    this.assertOpen();
    try {
      return await this.platform.execute(req);
    } catch (err) {
      throw this.platform.mapError(err, "running the code");
    }
  }

  async createSession(req: CreateSessionRequest): Promise<SessionInfo> {
    this.assertOpen();
    const v = validateCreateRequest(req, this.maxLifetimeSeconds);
    const lifetime = newLifetime(this.now(), v.ttlSeconds, this.maxLifetimeSeconds, v.idleTimeoutSeconds);
    const tags = sessionTags(lifetime, { owner: req.owner, metadata: v.metadata });
    const id = newSessionId();
    const idle = v.idleTimeoutSeconds;
    const slack = idle ? Math.ceil(activityWriteIntervalMs(idle) / 1000) : 0;
    let r: PlatformResource;
    try {
      r = await this.platform.create({
        id,
        labels: tags.labels,
        annotations: tags.annotations,
        lifetime,
        keeperIdleTimeoutSeconds: idle ? idle + slack : null,
      });
    } catch (err) {
      throw this.platform.mapError(err, "creating the session");
    }
    try {
      // Starts the session's resident agent (and puts the files in through it).
      const ch = this.channel(r);
      if (req.files.length > 0) await ch.stage(req.files, this.maxFileBytes);
      else await ch.hello();
    } catch (err) {
      this.forgetChannel(id);
      await this.platform
        .remove(r)
        .catch((e: unknown) =>
          this.logger.error({ sessionId: id, err: String(e) }, "removing a half-made session failed"),
        );
      throw this.platform.mapError(err, "staging the files");
    }
    const info = sessionFromTags(id, { ...tags.annotations, ...tags.labels }, {}, "running");
    if (!info) throw this.platform.mapError(new Error("the new session's tags are unreadable"), "creating");
    this.logger.info({ sessionId: id, expiresAt: info.expiresAt }, "session created");
    return info;
  }

  async getSession(id: string, scope?: Scope): Promise<SessionInfo> {
    this.assertOpen();
    return (await this.store.load(id, scope, true)).info;
  }

  async listSessions(scope?: Scope): Promise<SessionInfo[]> {
    this.assertOpen();
    return this.store.list(scope);
  }

  async countSessions(scope?: Scope): Promise<number> {
    return (await this.listSessions(scope)).length;
  }

  async deleteSession(id: string, scope?: Scope): Promise<void> {
    this.assertOpen();
    const r = await this.store.find(id);
    const base = this.store.view(r);
    if (!base || !inScope(base, scope) || r.phase === "removing") throw new SessionNotFoundError(id);
    // An expired or stopped session is already gone for the caller (404, like every other
    // call); its resource is removed all the same.
    const live = await this.store.isLive(r, base);
    let outcome: "removed" | "gone";
    try {
      outcome = await this.platform.remove(r);
    } catch (err) {
      throw this.platform.mapError(err, "deleting the session", id);
    }
    this.store.cache.forget(id);
    this.forgetChannel(id);
    if (outcome === "gone" || !live) throw new SessionNotFoundError(id);
    this.logger.info({ sessionId: id }, "session deleted");
  }

  async keepalive(id: string, ttlSeconds: number, scope?: Scope): Promise<SessionInfo> {
    this.assertOpen();
    validateKeepaliveTtl(ttlSeconds);
    const { r, info } = await this.store.load(id, scope, true);
    const now = this.now();
    const patch: SessionState = {
      expiresAt: keepaliveExpiry(lifetimeOf(info), ttlSeconds, now),
      lastActiveAt: Math.max(now, info.lastActiveAt),
    };
    try {
      await this.store.stateWrites.run(id, () => this.platform.writeState(r, patch));
    } catch (err) {
      throw this.platform.mapError(err, "extending the session", id);
    }
    const updated = this.store.view(r, this.store.cache.stored(id, patch));
    if (!updated) throw new SessionNotFoundError(id);
    return updated;
  }

  async execInSession(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult> {
    this.assertOpen();
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    const go = async (): Promise<ExecResult> => {
      const s = await this.loadForCall(id, scope);
      try {
        const ch = this.channel(s.r);
        this.store.touch(s);
        const { resetState, ...run } = req;
        const reset = resetState ? await ch.reset() : null;
        const result = await ch.run(run);
        // The program never ran (no exit status, no timeout): was there no process slot for it?
        const neverRan = result.exitCode === null && !result.timedOut && !result.stateReset;
        const exhausted = exhaustionError(id, result) ?? (neverRan ? await this.probe(s.r, id) : null);
        if (exhausted) throw exhausted;
        return { ...result, stateReset: result.stateReset ?? reset ?? null };
      } catch (err) {
        throw await this.fail(err, s.r, id, "running code in the session");
      }
    };
    // Python cells of one session run one after another; bash commands run side by side.
    return req.language === "python" || req.resetState ? this.calls.run(id, go) : go();
  }

  async writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    this.assertOpen();
    validateFileWrite(path, file.size, this.maxFileBytes);
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).write(path, file, this.maxFileBytes);
    } catch (err) {
      throw await this.fail(err, s.r, id, "writing the file");
    }
  }

  async readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    this.assertOpen();
    assertSafeWorkspacePath(path);
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).read(path, this.maxFileBytes);
    } catch (err) {
      throw await this.fail(err, s.r, id, "reading the file");
    }
  }

  async listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    this.assertOpen();
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).list();
    } catch (err) {
      throw await this.fail(err, s.r, id, "listing the workspace");
    }
  }

  async reap(now: number = this.now()): Promise<ReapReport> {
    this.assertOpen();
    const report = await reapResources(
      {
        platform: this.platform,
        logger: this.logger,
        concurrency: this.concurrency,
        pendingGraceMs: this.pendingGraceMs,
        view: (r, state) => this.store.view(r, state),
        readState: (r) => this.store.readState(r),
        stillRunning: (id) => this.store.stillRunning(id),
      },
      now,
    );
    for (const r of report.reaped) {
      this.store.cache.forget(r.id);
      this.forgetChannel(r.id);
    }
    return report;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.channels.closeAll();
      this.resources.clear();
      await this.store.close();
      await this.platform.close();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- internals

  protected assertOpen(): void {
    if (this.closing) throw new BackendUnavailableError(`the ${this.kind} backend is closed`);
  }

  private async fail(
    err: unknown,
    r: PlatformResource,
    id: string,
    what: string,
  ): Promise<CodeInterpreterError> {
    const exhausted = exhaustionError(id, err);
    if (exhausted) return exhausted;
    if (isCodeInterpreterError(err) && err.status < 500) return err;
    const probed = await this.probe(r, id);
    if (probed) return probed;
    if (err instanceof AgentChannelError) {
      // Gone with its container? Then the session is gone.
      const still = await this.platform.find(id).catch(() => r);
      if (!still || still.phase !== "running") return new SessionNotFoundError(id);
      return new BackendError(
        `${what}: the session's agent was lost (${err.message}). The code may have killed it or used up ` +
          `the session's memory or processes; its Python state is gone. The next call starts a fresh ` +
          `agent and its result says so (state_reset).`,
        { cause: err },
      );
    }
    if (isCodeInterpreterError(err)) return err;
    return this.platform.mapError(err, what, id);
  }

  /** Asks the platform (when it can tell) whether the session's process limit is used up. */
  private async probe(r: PlatformResource, id: string): Promise<SessionExhaustedError | null> {
    if (!this.platform.processSlotsExhausted) return null;
    const full = await this.platform.processSlotsExhausted(r).catch(() => false);
    return full ? new SessionExhaustedError(id) : null;
  }
}
