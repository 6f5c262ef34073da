/**
 * Session records on backend resources: what goes into labels/annotations at creation, and
 * how a SessionInfo is read back from them plus the mutable state record.
 */
import { createHash } from "node:crypto";
import type { Scope, SessionInfo, SessionStatus } from "./backend.js";
import {
  LABEL_CREATED_AT,
  LABEL_EXPIRES_AT,
  LABEL_IDLE_TIMEOUT,
  LABEL_MAX_EXPIRES_AT,
  LABEL_METADATA,
  LABEL_OWNER,
  baseLabels,
  hasComponentLabels,
  type LabelMap,
} from "./labels.js";
import { fromUnixSeconds, toUnixSeconds, type Lifetime } from "./lifetime.js";
import { isSessionId } from "./naming.js";

/** Mutable session state (unix ms), kept beside the resource because labels cannot change. */
export interface SessionState {
  expiresAt?: number;
  lastActiveAt?: number;
}

export interface SessionTags {
  /** Selectable, short values: identity, owner and times. */
  labels: LabelMap;
  /** Free-form values (metadata JSON). Docker stores these as labels too. */
  annotations: LabelMap;
}

export function sessionTags(
  lifetime: Lifetime,
  opts: { owner: string | null; metadata: Record<string, string> },
): SessionTags {
  const labels: LabelMap = {
    ...baseLabels("session"),
    [LABEL_CREATED_AT]: toUnixSeconds(lifetime.createdAt),
    [LABEL_EXPIRES_AT]: toUnixSeconds(lifetime.expiresAt),
    [LABEL_MAX_EXPIRES_AT]: toUnixSeconds(lifetime.maxExpiresAt),
  };
  if (lifetime.idleTimeoutSeconds) labels[LABEL_IDLE_TIMEOUT] = String(lifetime.idleTimeoutSeconds);
  if (opts.owner) labels[LABEL_OWNER] = opts.owner;
  return { labels, annotations: { [LABEL_METADATA]: JSON.stringify(opts.metadata) } };
}

/**
 * Reads a session back from its resource. Returns null when the resource is not a session
 * (wrong name, missing identity labels, unreadable times): callers treat that as not found.
 */
export function sessionFromTags(
  name: string,
  tags: LabelMap,
  state: SessionState | null,
  status: SessionStatus,
): SessionInfo | null {
  if (!isSessionId(name) || !hasComponentLabels(tags, "session")) return null;
  const createdAt = fromUnixSeconds(tags[LABEL_CREATED_AT]);
  const labelExpiresAt = fromUnixSeconds(tags[LABEL_EXPIRES_AT]);
  const maxExpiresAt = fromUnixSeconds(tags[LABEL_MAX_EXPIRES_AT]);
  if (createdAt === null || labelExpiresAt === null || maxExpiresAt === null) return null;
  const idle = tags[LABEL_IDLE_TIMEOUT] ? Number(tags[LABEL_IDLE_TIMEOUT]) : null;
  let metadata: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(tags[LABEL_METADATA] ?? "{}");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      metadata = Object.fromEntries(
        Object.entries(parsed as Record<string, unknown>).filter(
          (e): e is [string, string] => typeof e[1] === "string",
        ),
      );
    }
  } catch {
    metadata = {};
  }
  const expiresAt = Math.min(maxExpiresAt, Math.max(labelExpiresAt, state?.expiresAt ?? 0));
  const lastActiveAt = Math.max(createdAt, state?.lastActiveAt ?? 0);
  return {
    id: name,
    status,
    createdAt,
    expiresAt,
    maxExpiresAt,
    lastActiveAt,
    idleTimeoutSeconds: idle && Number.isInteger(idle) && idle > 0 ? idle : null,
    metadata,
    owner: tags[LABEL_OWNER] ?? null,
  };
}

export function lifetimeOf(s: SessionInfo): Lifetime {
  return {
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
    maxExpiresAt: s.maxExpiresAt,
    lastActiveAt: s.lastActiveAt,
    idleTimeoutSeconds: s.idleTimeoutSeconds,
  };
}

/** Parses a state record (JSON with unix-ms numbers); anything unreadable is treated as empty. */
export function parseSessionState(text: string | undefined | null): SessionState {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== "object") return {};
    const o = v as Record<string, unknown>;
    const out: SessionState = {};
    if (typeof o.expiresAt === "number" && Number.isFinite(o.expiresAt)) out.expiresAt = o.expiresAt;
    if (typeof o.lastActiveAt === "number" && Number.isFinite(o.lastActiveAt))
      out.lastActiveAt = o.lastActiveAt;
    return out;
  } catch {
    return {};
  }
}

/** True when the scope may see the session (no owner in scope = any). */
export function inScope(s: Pick<SessionInfo, "owner">, scope: Scope | undefined): boolean {
  if (!scope || scope.owner === undefined) return true;
  return (s.owner ?? null) === (scope.owner ?? null);
}

/** The owner tag for an API key: a label-safe hash, so keys never appear on resources. */
export function ownerTag(apiKey: string): string {
  return createHash("sha256").update(apiKey).digest("hex").slice(0, 32);
}
