/**
 * The session layer's use of the warm pool (issue 10). Each member this process makes gets
 * its resident agent started and a channel to it kept open (`warm`), so a claim needs no
 * process start: a session create claims a ready member (the files are then staged into it,
 * like into a cold one; its channel is handed over to the session's calls); a one-shot run
 * claims one, runs exactly once in it over that channel (the agent's run: the same semantics
 * as a session call) and removes it off the response's critical path (tracked: close() waits
 * for it; the reaper and the member's keeper cover a process that dies). When the platform
 * has no pool, or WARM_POOL_SIZE is 0, every call answers null (cold path).
 */
import type { ExecResult, Logger, OneShotRequest, WarmPoolMonitor, WarmPoolStats } from "../backend.js";
import { AgentChannel } from "../agent/channel.js";
import { EXECUTOR_REAP_MARGIN_MS } from "../executor-scripts.js";
import { claimedName, isSessionId } from "../naming.js";
import { assertUniqueSafePaths } from "../paths.js";
import type { PlatformResource, SessionPlatform, SessionSpec } from "./platform.js";
import { executorClaim, sessionClaim } from "./pool-platform.js";
import { WarmPool, type WarmPoolEvents } from "./warm-pool.js";

export interface WarmPoolSettings {
  /** Ready members to keep (WARM_POOL_SIZE); 0 = no pool. */
  size: number;
  /** A member's keeper ends it this long after creation (WARM_POOL_MAX_AGE_SECONDS). @default 600 */
  maxAgeSeconds?: number;
  /** Cap on members + sessions (MAX_TOTAL_EXECUTORS); 0 = none. @default 0 */
  maxTotal?: number;
  /** How often members are listed (adoption, reaping). @default 5000 */
  syncIntervalMs?: number;
  /** Members made at the same time. @default 2 */
  refillConcurrency?: number;
  /** Metrics hooks. */
  events?: WarmPoolEvents;
}

export interface PooledOptions {
  logger: Logger;
  now: () => number;
  cpuSeconds: number;
  maxFileBytes: number;
}

export class Pooled {
  readonly pool: WarmPool | null;
  /** The pool as Backend.warmPool shows it; null without a pool. */
  readonly monitor: WarmPoolMonitor | null;
  private readonly background = new Set<Promise<void>>();
  private readonly listeners = new Set<WarmPoolEvents>();
  /** Open channels to the agents of members this process warmed, by container handle. */
  private readonly warmed = new Map<string, AgentChannel>();

  constructor(
    private readonly platform: SessionPlatform,
    settings: WarmPoolSettings | undefined,
    private readonly o: PooledOptions,
  ) {
    const pp = platform.pool;
    if (settings?.events) this.listeners.add(settings.events);
    const each = (f: (e: WarmPoolEvents) => void) => {
      for (const e of this.listeners) {
        try {
          f(e);
        } catch (err) {
          o.logger.warn({ err: String(err) }, "a warm pool listener failed");
        }
      }
    };
    this.pool =
      pp && settings && settings.size > 0
        ? new WarmPool(pp, {
            ...settings,
            logger: o.logger,
            now: o.now,
            countSessions: () => this.countSessionResources(),
            warm: (m) => this.warm(m),
            forget: (m) => this.release(m.handle),
            events: {
              size: (n) => each((e) => e.size?.(n)),
              claim: (outcome, kind, seconds) => each((e) => e.claim?.(outcome, kind, seconds)),
              refillFailed: (err) => each((e) => e.refillFailed?.(err)),
              reaped: (reason) => each((e) => e.reaped?.(reason)),
            },
          })
        : null;
    const pool = this.pool;
    this.monitor = pool
      ? {
          stats: (): WarmPoolStats => pool.stats(),
          observe: (events) => {
            this.listeners.add(events);
            return () => this.listeners.delete(events);
          },
          drain: () => this.drain(),
        }
      : null;
  }

  start(): void {
    this.pool?.start();
  }

  /** A claimed member as the session `spec(id)` describes, or null (no pool, or a miss). */
  async claimSession(spec: (id: string) => SessionSpec): Promise<PlatformResource | null> {
    if (!this.pool) return null;
    const at = this.o.now();
    const r = await this.pool.claim("session", (m) => sessionClaim(spec(claimedName(m.name, "session")), at));
    // The session's calls open their own channel; the agent started by warm() stays.
    if (r) this.release(r.handle);
    return r;
  }

  /** Starts the member's agent and keeps a channel to it open. */
  private async warm(m: PlatformResource): Promise<void> {
    const ch = this.channelTo(m);
    try {
      await ch.hello();
    } catch (err) {
      ch.close();
      throw err;
    }
    this.warmed.set(m.handle, ch);
  }

  private channelTo(r: PlatformResource): AgentChannel {
    return new AgentChannel(this.platform.transport(r), {
      maxFileBytes: this.o.maxFileBytes,
      cpuSeconds: this.o.cpuSeconds,
    });
  }

  private release(handle: string): void {
    this.warmed.get(handle)?.close();
    this.warmed.delete(handle);
  }

  /** The one-shot run on a claimed member, or null when no member was claimed. */
  async execute(req: OneShotRequest): Promise<ExecResult | null> {
    const pp = this.platform.pool;
    if (!this.pool || !pp) return null;
    assertUniqueSafePaths(req.files.map((f) => f.path));
    const now = this.o.now();
    const r = await this.pool.claim("executor", () =>
      executorClaim(now + req.timeoutMs + EXECUTOR_REAP_MARGIN_MS, now),
    );
    if (!r) return null;
    const ch = this.warmed.get(r.handle) ?? this.channelTo(r);
    this.warmed.delete(r.handle);
    try {
      if (req.files.length > 0) await ch.stage(req.files, this.o.maxFileBytes);
      const { files: _staged, ...run } = req;
      const { stateReset: _reset, ...result } = await ch.run(run);
      return result;
    } finally {
      // Used exactly once: removed, never returned to the pool. Off the critical path.
      ch.close();
      const p: Promise<void> = pp
        .removeMember(r)
        .then(() => undefined)
        .catch((err: unknown) =>
          this.o.logger.warn(
            { sessionId: r.name, err: String(err) },
            "removing a one-shot pool member failed",
          ),
        )
        .finally(() => this.background.delete(p));
      this.background.add(p);
    }
  }

  /** Sessions on the platform (every process's), for the pool's global cap. */
  private async countSessionResources(): Promise<number> {
    const all = await this.platform.list({});
    return all.filter((r) => isSessionId(r.name) && (r.phase === "running" || r.phase === "pending")).length;
  }

  /** Stops the pool (members stay for the next API process) and waits for removals. */
  async close(): Promise<void> {
    await this.pool?.close();
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Stops the pool and removes every member. */
  async drain(): Promise<number> {
    const n = (await this.pool?.drain()) ?? 0;
    await this.close();
    return n;
  }
}
