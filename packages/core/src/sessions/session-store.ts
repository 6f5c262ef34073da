/**
 * How the session layer finds sessions and knows their state: lookup with the checks every
 * call makes (strict id, identity tags, owner scope, phase, expiry), the state this process
 * holds (cache + activity, see activity.ts), listing, and removal of dead sessions found on
 * access. Used by SessionBackend; no platform-specific code.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger, Scope, SessionInfo, SessionStatus } from "../backend.js";
import { BackendUnavailableError, SessionNotFoundError } from "../errors.js";
import { expiryReason, isExpired, type ReapReason } from "../lifetime.js";
import { isSessionId } from "../naming.js";
import { inScope, lifetimeOf, sessionFromTags, type SessionState } from "../session.js";
import { StateCache, activityWriteIntervalMs, mergeState } from "./activity.js";
import { KeyedMutex, mapLimit } from "./keyed-mutex.js";
import type { PlatformResource, SessionPlatform } from "./platform.js";

/** How many times (200 ms apart) a failed read re-checks that its resource still runs. */
const STILL_RUNNING_CHECKS = 5;

export interface Loaded {
  r: PlatformResource;
  info: SessionInfo;
}

const STATUS: Record<PlatformResource["phase"], SessionStatus> = {
  pending: "pending",
  running: "running",
  stopped: "stopped",
  removing: "stopped",
};

export class SessionStore {
  readonly cache: StateCache;
  /** Serialises state writes of one session (read-modify-write on some platforms). */
  readonly stateWrites = new KeyedMutex();
  private readonly background = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly platform: SessionPlatform,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly concurrency: number,
  ) {
    this.cache = new StateCache(logger, now);
  }

  /** A session's info from its tags, the given state and what this process knows. */
  view(r: PlatformResource, state?: SessionState): SessionInfo | null {
    const merged = mergeState(mergeState(r.state, state), this.cache.get(r.name));
    return sessionFromTags(r.name, r.tags, merged, STATUS[r.phase]);
  }

  async readState(r: PlatformResource): Promise<SessionState> {
    if (r.state) return this.cache.stored(r.name, r.state);
    return this.cache.stored(r.name, await this.platform.readState(r));
  }

  /** The resource of a valid session id, or SessionNotFoundError. */
  async find(id: string): Promise<PlatformResource> {
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    let r: PlatformResource | null;
    try {
      r = await this.platform.find(id);
    } catch (err) {
      throw this.platform.mapError(err, "looking up the session", id);
    }
    if (!r || r.name !== id) {
      this.cache.forget(id);
      throw new SessionNotFoundError(id);
    }
    return r;
  }

  /**
   * The checks every session call makes: strict id, identity tags, owner, running, not
   * expired. The stored state only moves deadlines later, so it is read only when `needState`
   * (the caller shows it) or when the session looks expired without it.
   */
  async load(id: string, scope: Scope | undefined, needState: boolean): Promise<Loaded> {
    const r = await this.find(id);
    let info = this.view(r);
    if (!info || !inScope(info, scope)) throw new SessionNotFoundError(id);
    if (r.phase === "stopped") this.removeInBackground(r, "stopped");
    if (r.phase === "stopped" || r.phase === "removing") throw new SessionNotFoundError(id);
    if (r.state === undefined && (needState || isExpired(lifetimeOf(info), this.now()))) {
      try {
        info = this.view(r, await this.readState(r));
      } catch (err) {
        const mapped = this.platform.mapError(err, "reading the session state", id);
        // Removed or ended meanwhile (a delete, the keeper, another reaper): gone for the caller.
        if (!(mapped instanceof BackendUnavailableError) && !(await this.stillRunning(id))) {
          throw new SessionNotFoundError(id);
        }
        throw mapped;
      }
      if (!info) throw new SessionNotFoundError(id);
    }
    const now = this.now();
    if (isExpired(lifetimeOf(info), now)) {
      this.removeInBackground(r, expiryReason(lifetimeOf(info), now) ?? "expired");
      throw new SessionNotFoundError(id);
    }
    return { r, info };
  }

  /**
   * From the platform's listing plus the state this process holds; the stored state is read
   * only for sessions that look expired without it (a keepalive may have extended them).
   */
  async list(scope: Scope | undefined): Promise<SessionInfo[]> {
    let found: PlatformResource[];
    try {
      found = await this.platform.list(typeof scope?.owner === "string" ? { owner: scope.owner } : {});
    } catch (err) {
      throw this.platform.mapError(err, "listing sessions");
    }
    const now = this.now();
    const infos = await mapLimit(found, this.concurrency, async (r) => {
      // Pending: a create still in flight (counted by its caller), not usable yet.
      if (r.phase !== "running") return null;
      let info = this.view(r);
      if (!info || !inScope(info, scope)) return null;
      if (isExpired(lifetimeOf(info), now) && r.state === undefined) {
        try {
          info = this.view(r, await this.readState(r));
        } catch (err) {
          const mapped = this.platform.mapError(err, "listing sessions", r.name);
          if (mapped instanceof BackendUnavailableError) throw mapped;
          this.logger.debug({ sessionId: r.name, err: mapped.message }, "skipping an unreadable session");
          return null;
        }
      }
      return info && !isExpired(lifetimeOf(info), now) ? info : null;
    });
    return infos
      .filter((s): s is SessionInfo => s !== null)
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /**
   * False when the resource is gone or no longer running. A container being removed can
   * still report "running" for a moment, so a running answer is asked again a few times.
   */
  async stillRunning(id: string): Promise<boolean> {
    for (let i = 0; i < STILL_RUNNING_CHECKS; i++) {
      if (i > 0) await sleep(200);
      const r = await this.platform.find(id).catch(() => undefined);
      if (r === undefined) return true; // unknown: let the caller report the original error
      if (r === null || r.phase !== "running") return false;
    }
    return true;
  }

  /** For deleteSession: false when stopped or expired; unreadable state counts as live. */
  async isLive(r: PlatformResource, base: SessionInfo): Promise<boolean> {
    if (r.phase !== "running" && r.phase !== "pending") return false;
    if (!isExpired(lifetimeOf(base), this.now())) return true;
    if (r.state !== undefined) return false;
    const state = await this.readState(r).catch(() => undefined);
    if (!state) return true;
    const info = this.view(r, state);
    return !!info && !isExpired(lifetimeOf(info), this.now());
  }

  /** Records activity in memory; the platform hears of it debounced, off the latency path. */
  touch(s: Loaded): void {
    const id = s.r.name;
    this.cache.touch(id, activityWriteIntervalMs(s.info.idleTimeoutSeconds), (at) =>
      this.stateWrites.run(id, () => this.platform.writeState(s.r, { lastActiveAt: at })),
    );
  }

  removeInBackground(r: PlatformResource, reason: ReapReason): void {
    if (this.closed) return;
    this.cache.forget(r.name);
    const p: Promise<void> = this.platform
      .remove(r)
      .then((outcome) => {
        if (outcome === "removed") this.logger.info({ sessionId: r.name, reason }, "reaped session");
      })
      .catch((err: unknown) =>
        this.logger.warn({ sessionId: r.name, err: String(err) }, "background removal failed"),
      )
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  /** Waits for background removals, writes pending activity, starts nothing new. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.background]);
    await this.cache.close();
  }
}
