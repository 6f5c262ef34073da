/**
 * The warm pool (issue 10), written once for every backend over a PoolPlatform: keeps
 * `size` ready members, refilled in the background (a request never waits for a refill),
 * hands one out per claim (atomic on the platform: two API processes never get the same
 * member, the loser tries the next one), and reaps members that are too old, made with
 * another fingerprint (image, limits), beyond the size, beyond the global cap, or stopped.
 * A restarted API adopts the members it finds; members die on their own (their keeper) at
 * their max age when no API process is left.
 */
import { silentLogger, type Logger } from "../backend.js";
import { LABEL_POOL } from "../labels.js";
import { isPoolMemberName, isSessionId, newPoolMemberName } from "../naming.js";
import type { PlatformResource } from "./platform.js";
import { memberLabels, type ClaimRecord, type PoolPlatform } from "./pool-platform.js";
import type { ClaimKind, PoolReapReason, WarmPoolEvents, WarmPoolOptions } from "./warm-pool-options.js";

export { POOL_REAP_REASONS } from "./warm-pool-options.js";
export type { ClaimKind, PoolReapReason, WarmPoolEvents, WarmPoolOptions } from "./warm-pool-options.js";

interface Ready {
  r: PlatformResource;
  /** Unix ms this process learnt of it (a listing older than that does not drop it). */
  seenAt: number;
}

const FAILURE_BACKOFF_MAX_MS = 30_000;

/** The check before any destructive call: a member's name (ours) and the pool label. */
const isMember = (m: PlatformResource): boolean =>
  !!m.tags[LABEL_POOL] && (isPoolMemberName(m.name) || isSessionId(m.name));

export class WarmPool {
  readonly size: number;
  private readonly maxAgeMs: number;
  private readonly marginMs: number;
  private readonly maxTotal: number;
  private readonly concurrency: number;
  private readonly syncIntervalMs: number;
  private readonly pendingGraceMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly events: WarmPoolEvents;
  private readonly ready = new Map<string, Ready>();
  private readonly background = new Set<Promise<unknown>>();
  /** Members this process took from its ready set, by name → take number: a listing older than the take must not adopt or reap them (a claimed session). */
  private readonly taken = new Map<string, number>();
  /** Members this process is making (created, being warmed): never adopted by a listing. */
  private readonly making = new Set<string>();
  private takes = 0;
  private creating = 0;
  private failures = 0;
  private backoffUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly platform: PoolPlatform,
    private readonly opts: WarmPoolOptions,
  ) {
    if (!Number.isInteger(opts.size) || opts.size < 0) throw new Error("size must be an integer >= 0");
    this.size = opts.size;
    this.maxAgeMs = (opts.maxAgeSeconds ?? 600) * 1000;
    if (!(this.maxAgeMs > 0)) throw new Error("maxAgeSeconds must be positive");
    this.marginMs = opts.claimMarginMs ?? Math.min(60_000, this.maxAgeMs / 4);
    this.maxTotal = opts.maxTotal ?? 0;
    this.concurrency = Math.max(1, opts.refillConcurrency ?? 2);
    this.syncIntervalMs = opts.syncIntervalMs ?? 5000;
    this.pendingGraceMs = opts.pendingGraceMs ?? 120_000;
    this.logger = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.events = opts.events ?? {};
  }

  /** Adopts the members on the platform and starts filling and syncing in the background. */
  start(): void {
    if (this.closed || this.size === 0 || this.timer) return;
    this.track(this.sync());
    this.timer = setInterval(() => this.track(this.sync()), this.syncIntervalMs);
    this.timer.unref();
  }

  /** Ready members this process knows of, and members being made by it. */
  stats(): { size: number; ready: number; creating: number } {
    return { size: this.size, ready: this.ready.size, creating: this.creating };
  }

  /**
   * Claims a ready member with `record(member)`; null (a miss) when none is left or every
   * one was taken by another process. Never waits for a refill; starts one.
   */
  async claim(
    kind: ClaimKind,
    record: (member: PlatformResource) => ClaimRecord,
  ): Promise<PlatformResource | null> {
    if (this.closed || this.size === 0) return null;
    const started = performance.now();
    try {
      for (let m = this.take(); m; m = this.take()) {
        let claimed: PlatformResource | null;
        try {
          claimed = await this.platform.claimMember(m, record(m));
        } catch (err) {
          this.opts.forget?.(m);
          this.logger.warn({ member: m.name, err: String(err) }, "claiming a warm pool member failed");
          continue;
        }
        if (claimed) {
          this.events.claim?.("hit", kind, (performance.now() - started) / 1000);
          return claimed;
        }
        this.opts.forget?.(m);
        this.logger.debug({ member: m.name }, "warm pool member taken by another process");
      }
      this.events.claim?.("miss", kind, (performance.now() - started) / 1000);
      return null;
    } finally {
      this.events.size?.(this.ready.size);
      this.refill();
    }
  }

  /** Stops refilling and syncing; members stay for the next API process to adopt. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** close(), then removes every member on the platform (this process's and any other's). */
  async drain(): Promise<number> {
    await this.close();
    this.ready.clear();
    const members = await this.platform.listMembers();
    const outcomes = await Promise.allSettled(
      members.filter(isMember).map((m) => this.platform.removeMember(m)),
    );
    return outcomes.filter((o) => o.status === "fulfilled" && o.value === "removed").length;
  }

  /** One pass: list the platform's members, reap what must go, adopt the rest, refill. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  // ---------------------------------------------------------------- internals

  private async syncOnce(): Promise<void> {
    if (this.closed) return;
    const listedAt = this.now();
    const takesBefore = this.takes;
    let members: PlatformResource[];
    try {
      members = await this.platform.listMembers();
    } catch (err) {
      this.logger.warn({ err: String(err) }, "listing warm pool members failed");
      return;
    }
    const now = this.now();
    const keep: PlatformResource[] = [];
    for (const m of members) {
      if (!isMember(m) || m.phase === "removing" || (this.taken.get(m.name) ?? 0) > takesBefore) continue;
      if (this.making.has(m.name)) continue; // counted in `creating`; offered once warm
      if (m.phase === "stopped") this.reap(m, "stopped");
      else if (m.phase === "pending") {
        if (now - m.createdAt >= this.pendingGraceMs) this.reap(m, "stopped");
      } else if (m.tags[LABEL_POOL] !== this.platform.fingerprint) this.reap(m, "fingerprint");
      else if (this.tooOld(m, now)) this.reap(m, "max-age");
      else keep.push(m);
    }
    keep.sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
    let allowed = this.size;
    if (this.maxTotal > 0) allowed = Math.min(allowed, Math.max(0, this.maxTotal - (await this.sessions())));
    // Beyond the size (it shrank, or two processes filled at once) or the cap: the oldest go.
    const excess = keep.length - allowed;
    const reason: PoolReapReason = allowed < this.size ? "cap" : "shrink";
    for (const m of keep.splice(0, Math.max(0, excess))) this.reap(m, reason);
    const listed = new Set(keep.map((m) => m.name));
    for (const [name, e] of this.ready) {
      if (listed.has(name) || e.seenAt > listedAt) continue;
      this.ready.delete(name);
      this.opts.forget?.(e.r);
    }
    for (const m of keep) if (!this.ready.has(m.name)) this.ready.set(m.name, { r: m, seenAt: now });
    for (const [name, n] of this.taken) if (n <= takesBefore) this.taken.delete(name);
    this.events.size?.(this.ready.size);
    this.refill();
  }

  private tooOld(m: PlatformResource, now: number): boolean {
    return now >= m.createdAt + this.maxAgeMs - this.marginMs;
  }

  /** The oldest ready member that still has life enough; too old ones are reaped on the way. */
  private take(): PlatformResource | null {
    const now = this.now();
    for (const [name, e] of this.ready) {
      this.ready.delete(name);
      this.taken.set(name, ++this.takes);
      if (!this.tooOld(e.r, now)) return e.r;
      this.reap(e.r, "max-age");
    }
    return null;
  }

  private async sessions(): Promise<number> {
    try {
      return (await this.opts.countSessions?.()) ?? 0;
    } catch (err) {
      this.logger.warn({ err: String(err) }, "counting sessions for the warm pool cap failed");
      return Number.POSITIVE_INFINITY;
    }
  }

  /** Starts making members up to the size (never more than `concurrency` at once). */
  private refill(): void {
    if (this.closed || this.now() < this.backoffUntil) return;
    const want = this.size - this.ready.size - this.creating;
    const slots = Math.min(want, this.concurrency - this.creating);
    if (slots <= 0) return;
    this.creating += slots;
    this.track(this.make(slots));
  }

  private async make(n: number): Promise<void> {
    let admit = n;
    if (this.maxTotal > 0) {
      const room = this.maxTotal - (await this.sessions()) - this.ready.size - (this.creating - n);
      admit = Math.max(0, Math.min(n, room));
    }
    this.creating -= n - admit;
    await Promise.all(Array.from({ length: admit }, () => this.makeOne()));
    if (admit > 0) this.refill();
  }

  private async makeOne(): Promise<void> {
    const createdAt = this.now();
    const spec = {
      name: newPoolMemberName(),
      labels: memberLabels(this.platform.fingerprint),
      createdAt,
      expiresAt: createdAt + this.maxAgeMs,
    };
    this.making.add(spec.name);
    try {
      let m: PlatformResource;
      try {
        m = await this.platform.createMember(spec);
      } catch (err) {
        this.failures++;
        this.backoffUntil = this.now() + Math.min(FAILURE_BACKOFF_MAX_MS, 500 * 2 ** this.failures);
        this.logger.info({ member: spec.name, err: String(err) }, "warm pool refill failed");
        this.events.refillFailed?.(err);
        return;
      }
      try {
        await this.opts.warm?.(m);
      } catch (err) {
        this.logger.info(
          { member: m.name, err: String(err) },
          "warm pool refill failed (warming the member)",
        );
        this.events.refillFailed?.(err);
        this.reap(m, "warm-failed");
        return;
      }
      this.failures = 0;
      // Made while closing: left for the next API process to adopt (its keeper ends it at max age).
      if (!this.closed) this.ready.set(m.name, { r: m, seenAt: this.now() });
      this.events.size?.(this.ready.size);
    } finally {
      this.making.delete(spec.name);
      this.creating--;
    }
  }

  private reap(m: PlatformResource, reason: PoolReapReason): void {
    this.ready.delete(m.name);
    this.opts.forget?.(m);
    this.track(
      this.platform.removeMember(m).then(
        (outcome) => {
          if (outcome !== "removed") return;
          this.events.reaped?.(reason);
          this.logger.info({ member: m.name, reason }, "reaped warm pool member");
        },
        (err: unknown) =>
          this.logger.warn({ member: m.name, err: String(err) }, "removing a pool member failed"),
      ),
    );
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.logger.warn({ err: String(err) }, "warm pool task failed"));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }
}
