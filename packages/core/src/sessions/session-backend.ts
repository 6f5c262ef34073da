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
  WarmPoolMonitor,
  WarmPoolStats,
  WorkspaceEntry,
} from "../backend.js";
import { silentLogger } from "../backend.js";
import { BackendUnavailableError, SessionNotFoundError } from "../errors.js";
import { keepaliveExpiry, newLifetime } from "../lifetime.js";
import { newSessionId } from "../naming.js";
import { inScope, lifetimeOf, sessionFromTags, sessionTags, type SessionState } from "../session.js";
import { activityWriteIntervalMs } from "./activity.js";
import type { SessionPlatform, SessionSpec } from "./platform.js";
import { Pooled, type WarmPoolSettings } from "./pooled.js";
import { reapResources } from "./reaper.js";
import { SessionCalls } from "./session-calls.js";
import { SessionStore } from "./session-store.js";
import { validateCreateRequest, validateKeepaliveTtl } from "./validation.js";

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
  /**
   * The warm pool (issue 10), used when the platform implements `pool`: ready members are
   * claimed by session creates and one-shot runs. @default no pool (size 0)
   */
  warmPool?: WarmPoolSettings;
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
  /** Exec and file calls over each session's agent channel. */
  private readonly sessionCalls: SessionCalls;
  private readonly store: SessionStore;
  private readonly pooled: Pooled;
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
    this.sessionCalls = new SessionCalls(platform, this.store, {
      maxFileBytes: this.maxFileBytes,
      cpuSeconds: this.cpuSeconds,
      agentChannelIdleMs: opts.agentChannelIdleMs ?? 600_000,
      now: this.now,
    });
    this.pooled = new Pooled(platform, opts.warmPool, {
      logger: this.logger,
      now: this.now,
      cpuSeconds: this.cpuSeconds,
      maxFileBytes: this.maxFileBytes,
    });
    this.pooled.start();
  }

  /** The warm pool (issue 10), or null when there is none. */
  get warmPool(): WarmPoolMonitor | null {
    return this.pooled.monitor;
  }

  /** The warm pool's numbers (null without a pool): target size, ready members, members being made. */
  warmPoolStats(): WarmPoolStats | null {
    return this.pooled.monitor?.stats() ?? null;
  }

  /** Removes every warm pool member (this process's and others') and stops the pool. */
  drainWarmPool(): Promise<number> {
    return this.pooled.drain();
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
      return (await this.pooled.execute(req)) ?? (await this.platform.execute(req));
    } catch (err) {
      throw this.platform.mapError(err, "running the code");
    }
  }

  async createSession(req: CreateSessionRequest): Promise<SessionInfo> {
    this.assertOpen();
    const v = validateCreateRequest(req, this.maxLifetimeSeconds);
    const lifetime = newLifetime(this.now(), v.ttlSeconds, this.maxLifetimeSeconds, v.idleTimeoutSeconds);
    const tags = sessionTags(lifetime, { owner: req.owner, metadata: v.metadata });
    const idle = v.idleTimeoutSeconds;
    const slack = idle ? Math.ceil(activityWriteIntervalMs(idle) / 1000) : 0;
    const spec = (id: string): SessionSpec => ({
      id,
      labels: tags.labels,
      annotations: tags.annotations,
      lifetime,
      keeperIdleTimeoutSeconds: idle ? idle + slack : null,
    });
    // A ready member of the warm pool when there is one (no container start), else a cold one.
    let r = await this.pooled.claimSession(spec);
    const claimed = r !== null;
    try {
      r ??= await this.platform.create(spec(newSessionId()));
    } catch (err) {
      throw this.platform.mapError(err, "creating the session");
    }
    const id = r.name;
    try {
      // Starts the session's resident agent (and puts the files in through it). A claimed
      // member answers at once; its agent starts while the answer travels (the first call
      // waits for it if it must).
      const ch = this.sessionCalls.channel(r);
      if (req.files.length > 0) await ch.stage(req.files, this.maxFileBytes);
      else if (!claimed) await ch.hello();
      else ch.hello().catch(() => undefined);
    } catch (err) {
      this.sessionCalls.forget(id);
      await this.platform
        .remove(r)
        .catch((e: unknown) =>
          this.logger.error({ sessionId: id, err: String(e) }, "removing a half-made session failed"),
        );
      throw this.platform.mapError(err, "staging the files");
    }
    const info = sessionFromTags(id, { ...tags.annotations, ...tags.labels }, {}, "running");
    if (!info) throw this.platform.mapError(new Error("the new session's tags are unreadable"), "creating");
    this.logger.info({ sessionId: id, expiresAt: info.expiresAt, warmPool: claimed }, "session created");
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
    this.sessionCalls.forget(id);
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
    return this.sessionCalls.exec(id, req, scope);
  }

  async writeSessionFile(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    this.assertOpen();
    return this.sessionCalls.write(id, path, file, scope);
  }

  async readSessionFile(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    this.assertOpen();
    return this.sessionCalls.read(id, path, scope);
  }

  async listSessionFiles(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    this.assertOpen();
    return this.sessionCalls.list(id, scope);
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
      this.sessionCalls.forget(r.id);
    }
    return report;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.pooled.close();
      this.sessionCalls.closeAll();
      await this.store.close();
      await this.platform.close();
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------- internals

  protected assertOpen(): void {
    if (this.closing) throw new BackendUnavailableError(`the ${this.kind} backend is closed`);
  }
}
