/**
 * The warm pool's platform extension (issue 10): what a backend implements, beside its
 * SessionPlatform, so core's WarmPool (./warm-pool.ts) can keep ready executors for it.
 * Members are hardened exactly like sessions (same spec), named `code-pool-<uuid>`, carry
 * the identity labels plus LABEL_POOL (the fingerprint). A claim atomically turns a member
 * into a session (`code-session-<same uuid>`) or a one-shot executor (`code-exec-<same
 * uuid>`) and stores the claim record with it; exactly one of two concurrent claims of one
 * member succeeds, whichever API process makes them.
 */
import { createHash } from "node:crypto";
import { LABEL_POOL, LABEL_REAP_AFTER, baseLabels, type LabelMap } from "../labels.js";
import { toUnixSeconds } from "../lifetime.js";
import { claimedName, isPoolMemberName } from "../naming.js";
import type { PlatformResource, SessionSpec } from "./platform.js";

/** What `createMember` makes: a running, idle executor that ends itself at `expiresAt`. */
export interface PoolMemberSpec {
  /** `code-pool-<uuid v4>`. */
  name: string;
  /** Identity labels (`app`, `component=session`) and LABEL_POOL = the fingerprint. */
  labels: LabelMap;
  /** Unix ms. */
  createdAt: number;
  /** Unix ms: the member's keeper ends it then unless a claim gave it a new lifetime. */
  expiresAt: number;
}

/** What the keeper of a claimed member enforces from the claim on (unix ms; idle in seconds, 0 = none). */
export interface KeeperLifetime {
  maxExpiresAt: number;
  expiresAt: number;
  idleTimeoutSeconds: number;
  createdAt: number;
}

/**
 * What a claimed member must remember, immutable after the claim: what it became, the tags it
 * would have had if created cold (session labels + annotations, or the executor's labels) and
 * the lifetime its keeper enforces. Stored by the platform with the resource (Docker: the
 * root-owned state file; Kubernetes: labels and annotations).
 */
export interface ClaimRecord {
  as: "session" | "executor";
  /** Unix ms. */
  claimedAt: number;
  tags: LabelMap;
  keeper: KeeperLifetime;
}

export interface PoolPlatform {
  /**
   * The fit of members made now: a hash of everything their spec depends on (image, limits,
   * spec version); see `poolFingerprint`. Members with another fingerprint are reaped.
   */
  readonly fingerprint: string;
  /** Creates a member and waits until it runs; removes what it made on failure. */
  createMember(spec: PoolMemberSpec): Promise<PlatformResource>;
  /** Unclaimed members (any phase, any fingerprint), tags carrying LABEL_POOL. */
  listMembers(): Promise<PlatformResource[]>;
  /**
   * Atomically takes the member (Docker: a rename to `claimTarget(member)`; Kubernetes: a
   * patch with a resourceVersion precondition) and stores `record` with it; answers
   * `claimedResource(member, record)` as lookups will see it from then on. The store may
   * finish after the answer if this process's calls see the record at once and other
   * processes' lookups wait for it (Docker does: its archive write is slow). Null when another
   * claim won (nothing changed); throws on any other failure, after removing what it took.
   */
  claimMember(member: PlatformResource, record: ClaimRecord): Promise<PlatformResource | null>;
  /** Deletes a member (or a claimed one-shot member); "gone" when it no longer existed. */
  removeMember(member: PlatformResource): Promise<"removed" | "gone">;
}

/** Bumped whenever the hardened spec changes: members made by older code are then reaped. */
export const POOL_SPEC_VERSION = "1";

/** JSON with object keys sorted at every level: equal values give equal text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** A short, label-safe hash (20 hex) of what a member is made with (image, limits, ...). */
export function poolFingerprint(parts: Record<string, unknown>): string {
  return createHash("sha256")
    .update(canonical({ specVersion: POOL_SPEC_VERSION, ...parts }))
    .digest("hex")
    .slice(0, 20);
}

/** The labels of a new member. */
export function memberLabels(fingerprint: string): LabelMap {
  return { ...baseLabels("session"), [LABEL_POOL]: fingerprint };
}

/** The claim record that turns a member into the session `spec` describes. */
export function sessionClaim(spec: SessionSpec, claimedAt: number): ClaimRecord {
  return {
    as: "session",
    claimedAt,
    tags: { ...spec.annotations, ...spec.labels },
    keeper: {
      maxExpiresAt: spec.lifetime.maxExpiresAt,
      expiresAt: spec.lifetime.expiresAt,
      idleTimeoutSeconds: spec.keeperIdleTimeoutSeconds ?? 0,
      createdAt: spec.lifetime.createdAt,
    },
  };
}

/** The claim record of a one-shot run: an executor its keeper ends at `reapAfter`. */
export function executorClaim(reapAfter: number, claimedAt: number): ClaimRecord {
  return {
    as: "executor",
    claimedAt,
    tags: { ...baseLabels("executor"), [LABEL_REAP_AFTER]: toUnixSeconds(reapAfter + 999) },
    keeper: { maxExpiresAt: reapAfter, expiresAt: reapAfter, idleTimeoutSeconds: 0, createdAt: claimedAt },
  };
}

const isMs = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Reads a stored claim record back; null for anything that is not one. */
export function parseClaimRecord(v: unknown): ClaimRecord | null {
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if ((o.as !== "session" && o.as !== "executor") || !isMs(o.claimedAt)) return null;
  if (!o.tags || typeof o.tags !== "object" || Array.isArray(o.tags)) return null;
  const tags: LabelMap = {};
  for (const [k, val] of Object.entries(o.tags as Record<string, unknown>)) {
    if (typeof val !== "string") return null;
    tags[k] = val;
  }
  const k = o.keeper as Record<string, unknown> | null | undefined;
  if (!k || typeof k !== "object") return null;
  const { maxExpiresAt, expiresAt, idleTimeoutSeconds, createdAt } = k;
  if (!isMs(maxExpiresAt) || !isMs(expiresAt) || !isMs(idleTimeoutSeconds) || !isMs(createdAt)) return null;
  return {
    as: o.as,
    claimedAt: o.claimedAt,
    tags,
    keeper: { maxExpiresAt, expiresAt, idleTimeoutSeconds, createdAt },
  };
}

/**
 * A claimed member as the session layer sees it: named by what it became (`code-session-…`
 * or `code-exec-…`, the member's uuid) with the tags of the claim (identity labels
 * included), so listing, lookup and the reaper treat it like a cold one. The handle stays.
 */
export function claimedResource(r: PlatformResource, record: ClaimRecord): PlatformResource {
  return { ...r, name: claimedName(r.name, record.as), tags: { ...record.tags } };
}

/**
 * The name an atomic rename claims a member with (Docker): always `code-session-<uuid>`,
 * whatever the claim is for. The engine resolves a rename's container before taking its lock
 * and then renames from whatever the name is by then, so only renames to one and the same
 * target are exclusive (the second fails: "same name as its current name", or 404); a
 * claimed member is therefore never renamed again. A one-shot claim keeps this name on the
 * platform and is known to the layer as `code-exec-<uuid>` (its record says "executor").
 */
export function claimTarget(member: PlatformResource): string {
  if (!isPoolMemberName(member.name)) throw new Error(`not a pool member: ${member.name}`);
  return claimedName(member.name, "session");
}
