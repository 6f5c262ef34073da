/**
 * Validation of session requests, with one set of messages for every backend. The REST
 * layer checks shapes first (zod); these checks are what a library caller gets too.
 */
import type { CreateSessionRequest } from "../backend.js";
import { PayloadTooLargeError, ValidationError } from "../errors.js";
import { validateMetadata } from "../labels.js";
import { resolveTtlSeconds } from "../lifetime.js";
import { assertSafeWorkspacePath, assertUniqueSafePaths } from "../paths.js";

/** "ttl_seconds must be a positive integer" / "... exceeds the maximum session lifetime of N seconds". */
export function validateTtl(ttlSeconds: unknown, maxLifetimeSeconds: number): number {
  if (typeof ttlSeconds !== "number") throw new ValidationError("ttl_seconds must be a positive integer");
  return resolveTtlSeconds(ttlSeconds, maxLifetimeSeconds);
}

/** Keepalive may ask for more than the cap (it is capped, not refused), but must be a positive integer. */
export function validateKeepaliveTtl(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== "number" || !Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new ValidationError("ttl_seconds must be a positive integer");
  }
  return ttlSeconds;
}

export function validateIdleTimeout(idle: unknown): number | null {
  if (idle === null || idle === undefined) return null;
  if (typeof idle !== "number" || !Number.isInteger(idle) || idle < 1) {
    throw new ValidationError("idle_timeout_seconds must be a positive integer");
  }
  return idle;
}

/** The whole create request: ttl, idle timeout, metadata and the staged files' paths. */
export function validateCreateRequest(
  req: CreateSessionRequest,
  maxLifetimeSeconds: number,
): { ttlSeconds: number; idleTimeoutSeconds: number | null; metadata: Record<string, string> } {
  const ttlSeconds = validateTtl(req.ttlSeconds, maxLifetimeSeconds);
  const idleTimeoutSeconds = validateIdleTimeout(req.idleTimeoutSeconds);
  const metadata = validateMetadata(req.metadata);
  assertUniqueSafePaths(req.files.map((f) => f.path));
  return { ttlSeconds, idleTimeoutSeconds, metadata };
}

/** A file written into a workspace: safe path, whole size within the per-file limit. */
export function validateFileWrite(path: string, size: number, maxFileBytes: number): void {
  assertSafeWorkspacePath(path);
  if (!Number.isInteger(size) || size < 0) throw new ValidationError("size must be a whole number");
  if (size > maxFileBytes) {
    throw new PayloadTooLargeError(`the file is larger than the limit of ${maxFileBytes} bytes`);
  }
}
