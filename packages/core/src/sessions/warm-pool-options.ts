/** The warm pool's options, metrics hooks and vocabulary (./warm-pool.ts is the pool itself). */
import type { Logger } from "../backend.js";
import type { PlatformResource } from "./platform.js";

/** Why a member was removed (a metrics label). */
export const POOL_REAP_REASONS = [
  "max-age",
  "fingerprint",
  "shrink",
  "cap",
  "stopped",
  "warm-failed",
] as const;
export type PoolReapReason = (typeof POOL_REAP_REASONS)[number];

export type ClaimKind = "session" | "executor";

/** Hooks for metrics; each is called synchronously and must not throw. */
export interface WarmPoolEvents {
  /** Ready members this process knows of, after every change. */
  size?(ready: number): void;
  /** One claim: "hit" (a member was used) or "miss" (none left or all taken), and its duration. */
  claim?(outcome: "hit" | "miss", kind: ClaimKind, seconds: number): void;
  /** A member could not be made (also logged at info). */
  refillFailed?(err: unknown): void;
  /** A member was removed by the pool. */
  reaped?(reason: PoolReapReason): void;
}

export interface WarmPoolOptions {
  /** Target number of ready members (WARM_POOL_SIZE); 0 disables the pool. */
  size: number;
  /** A member's keeper ends it this long after its creation (WARM_POOL_MAX_AGE_SECONDS). @default 600 */
  maxAgeSeconds?: number;
  /**
   * Cap on members + sessions (MAX_TOTAL_EXECUTORS): no member is made, and members are
   * reaped, while sessions + members would exceed it. 0 = no cap. @default 0
   */
  maxTotal?: number;
  /** Sessions on the platform (every API process's), for `maxTotal`. @default () => 0 */
  countSessions?: () => Promise<number>;
  /** Members made at the same time. @default 2 */
  refillConcurrency?: number;
  /** How often the platform's members are listed (adoption, other processes' claims, reaping). @default 5000 */
  syncIntervalMs?: number;
  /**
   * A member with less than this left before its max age is not claimed (its keeper reads a
   * claim's new lifetime only every few seconds) and is reaped. @default min(60 s, max age / 4)
   */
  claimMarginMs?: number;
  /** A pending member older than this is left over from a create that died. @default 120000 */
  pendingGraceMs?: number;
  /** Run on each new member before it is offered (e.g. start its agent); a failure removes it. */
  warm?: (member: PlatformResource) => Promise<void>;
  /**
   * Called when a member leaves this process's ready set without being claimed by it (reaped,
   * claimed by another process, gone): release what `warm` kept for it.
   */
  forget?: (member: PlatformResource) => void;
  /** @default a logger that drops everything */
  logger?: Logger;
  /** @default Date.now */
  now?: () => number;
  events?: WarmPoolEvents;
}
