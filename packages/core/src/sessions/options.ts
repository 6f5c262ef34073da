/**
 * The options every backend shares, with their documented defaults, resolved once: a backend's
 * options interface extends CommonBackendOptions and hands the resolved values to its
 * platform and to SessionBackend.
 */
import { silentLogger, type Logger } from "../backend.js";
import { ValidationError } from "../errors.js";
import { DEFAULT_EXECUTOR_LIMITS, type ExecutorLimits } from "../limits.js";

export interface CommonBackendOptions {
  /** Container/pod limits; missing fields take their defaults. @default DEFAULT_EXECUTOR_LIMITS */
  limits?: Partial<ExecutorLimits>;
  /** Hard cap on a session's life, seconds (SESSION_MAX_LIFETIME_SECONDS). @default 86400 */
  sessionMaxLifetimeSeconds?: number;
  /** Per-file cap for collected and written files, bytes. @default 104857600 (100 MiB) */
  maxFileBytes?: number;
  /** Any pino-compatible logger. @default a logger that drops everything */
  logger?: Logger;
  /** Clock (unix ms), injectable for tests. @default Date.now */
  now?: () => number;
  /** Parallel state reads and removals in listSessions and reap. @default 8 */
  concurrency?: number;
}

export interface ResolvedCommonOptions {
  limits: ExecutorLimits;
  sessionMaxLifetimeSeconds: number;
  maxFileBytes: number;
  logger: Logger;
  now: () => number;
  concurrency: number;
}

/** Applies the defaults and checks the values; ValidationError names the bad option. */
export function resolveCommonOptions(o: CommonBackendOptions): ResolvedCommonOptions {
  const sessionMaxLifetimeSeconds = o.sessionMaxLifetimeSeconds ?? 86_400;
  if (!Number.isInteger(sessionMaxLifetimeSeconds) || sessionMaxLifetimeSeconds < 1) {
    throw new ValidationError("sessionMaxLifetimeSeconds must be a positive integer");
  }
  const maxFileBytes = o.maxFileBytes ?? 100 * 1024 * 1024;
  if (!(maxFileBytes > 0)) throw new ValidationError("maxFileBytes must be positive");
  return {
    limits: { ...DEFAULT_EXECUTOR_LIMITS, ...o.limits },
    sessionMaxLifetimeSeconds,
    maxFileBytes,
    logger: o.logger ?? silentLogger,
    now: o.now ?? Date.now,
    concurrency: Math.max(1, o.concurrency ?? 8),
  };
}
