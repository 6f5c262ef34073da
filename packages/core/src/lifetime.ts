/**
 * Session lifetime arithmetic, shared by every backend and the reaper. Times are unix
 * milliseconds; labels store unix seconds.
 */
import { ValidationError } from "./errors.js";

export interface Lifetime {
  createdAt: number;
  /** When the session expires unless kept alive. */
  expiresAt: number;
  /** Hard cap: createdAt + max lifetime. Nothing moves it. */
  maxExpiresAt: number;
  lastActiveAt: number;
  idleTimeoutSeconds: number | null;
}

export function resolveTtlSeconds(requested: number | undefined | null, maxLifetimeSeconds: number): number {
  if (requested === undefined || requested === null) return maxLifetimeSeconds;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new ValidationError("ttl_seconds must be a positive integer");
  }
  if (requested > maxLifetimeSeconds) {
    throw new ValidationError(
      `ttl_seconds ${requested} exceeds the maximum session lifetime of ${maxLifetimeSeconds} seconds`,
    );
  }
  return requested;
}

export function newLifetime(
  now: number,
  ttlSeconds: number,
  maxLifetimeSeconds: number,
  idleTimeoutSeconds: number | null,
): Lifetime {
  const createdAt = secondsFloor(now);
  return {
    createdAt,
    expiresAt: createdAt + ttlSeconds * 1000,
    maxExpiresAt: createdAt + maxLifetimeSeconds * 1000,
    lastActiveAt: createdAt,
    idleTimeoutSeconds,
  };
}

/** Keepalive: expiry moves to now + ttl, never earlier than it was and never past the hard cap. */
export function keepaliveExpiry(l: Lifetime, ttlSeconds: number, now: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new ValidationError("ttl_seconds must be a positive integer");
  }
  return Math.min(l.maxExpiresAt, Math.max(l.expiresAt, secondsFloor(now) + ttlSeconds * 1000));
}

/** The moment the session ends: the earliest of its expiry, its hard cap and its idle deadline. */
export function deadline(l: Lifetime): number {
  const idle = l.idleTimeoutSeconds ? l.lastActiveAt + l.idleTimeoutSeconds * 1000 : Infinity;
  return Math.min(l.expiresAt, l.maxExpiresAt, idle);
}

export function isExpired(l: Lifetime, now: number): boolean {
  return now >= deadline(l);
}

/**
 * Why the reaper removed something — one vocabulary for every backend (a metrics label):
 * - `expired`: past its expiry (ttl, or the keepalive-extended expiry)
 * - `idle`: no activity for its idle timeout
 * - `max-lifetime`: reached created-at + SESSION_MAX_LIFETIME_SECONDS
 * - `stopped`: the session's container/pod had ended (or never started) but was still there
 * - `orphaned-executor`: a one-shot executor left behind (its API process died, or it ended)
 */
export const REAP_REASONS = ["expired", "idle", "max-lifetime", "stopped", "orphaned-executor"] as const;
export type ReapReason = (typeof REAP_REASONS)[number];

/** Why a session ended, for logs. */
export function expiryReason(l: Lifetime, now: number): "expired" | "idle" | "max-lifetime" | null {
  if (now >= Math.min(l.expiresAt, l.maxExpiresAt))
    return l.maxExpiresAt <= l.expiresAt ? "max-lifetime" : "expired";
  if (l.idleTimeoutSeconds && now >= l.lastActiveAt + l.idleTimeoutSeconds * 1000) return "idle";
  return null;
}

/** Labels hold whole seconds; round times the same way everywhere so round-trips are exact. */
export function secondsFloor(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

export const toUnixSeconds = (ms: number): string => String(Math.floor(ms / 1000));
export function fromUnixSeconds(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,12}$/.test(value)) return null;
  return Number(value) * 1000;
}
