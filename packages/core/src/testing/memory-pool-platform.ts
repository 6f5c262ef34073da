/**
 * InMemoryPoolPlatform: a PoolPlatform held in a Map, for unit tests of the warm pool
 * (core's WarmPool) and of anything built on it. Claims are atomic like a Docker rename or a
 * Kubernetes patch with a resourceVersion precondition: of two concurrent claims of one member
 * exactly one wins, whichever WarmPool (API process) makes them. Failures and delays are
 * injectable.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { claimTarget, claimedResource, type ClaimRecord } from "../sessions/pool-platform.js";
import type { PoolMemberSpec, PoolPlatform } from "../sessions/pool-platform.js";
import type { PlatformResource } from "../sessions/platform.js";

export interface InMemoryPoolPlatformOptions {
  fingerprint?: string;
  /** Delay of every createMember. @default 0 */
  createDelayMs?: number;
  /** Delay before a claim's atomic step (lets concurrent claims interleave). @default 0 */
  claimDelayMs?: number;
}

export interface StoredMember {
  r: PlatformResource;
  record: ClaimRecord | null;
}

export class InMemoryPoolPlatform implements PoolPlatform {
  fingerprint: string;
  createDelayMs: number;
  claimDelayMs: number;
  /** Every resource made, by handle: members, and claimed members under their new name. */
  readonly resources = new Map<string, StoredMember>();
  /** createMember calls so far. */
  creates = 0;
  /** The next n createMember calls throw. */
  failCreates = 0;
  /** The next n claimMember calls throw (after their atomic step, like a failed state write). */
  failClaims = 0;

  constructor(opts: InMemoryPoolPlatformOptions = {}) {
    this.fingerprint = opts.fingerprint ?? "fp-1";
    this.createDelayMs = opts.createDelayMs ?? 0;
    this.claimDelayMs = opts.claimDelayMs ?? 0;
  }

  /** Unclaimed members (what listMembers answers). */
  members(): PlatformResource[] {
    return [...this.resources.values()].filter((s) => s.record === null).map((s) => ({ ...s.r }));
  }

  /** Claimed resources, with their records. */
  claimed(): StoredMember[] {
    return [...this.resources.values()].filter((s) => s.record !== null);
  }

  /** Adds a member as if another (or an earlier) API process had made it. */
  plant(r: Partial<PlatformResource> & { name: string; tags: PlatformResource["tags"] }): PlatformResource {
    const m: PlatformResource = { handle: randomUUID(), phase: "running", createdAt: Date.now(), ...r };
    this.resources.set(m.handle, { r: m, record: null });
    return { ...m };
  }

  async createMember(spec: PoolMemberSpec): Promise<PlatformResource> {
    this.creates++;
    if (this.createDelayMs > 0) await sleep(this.createDelayMs);
    if (this.failCreates > 0) {
      this.failCreates--;
      throw new Error("engine refused the container");
    }
    return this.plant({ name: spec.name, tags: { ...spec.labels }, createdAt: spec.createdAt });
  }

  async listMembers(): Promise<PlatformResource[]> {
    await sleep(0);
    return this.members();
  }

  async claimMember(member: PlatformResource, record: ClaimRecord): Promise<PlatformResource | null> {
    const target = claimTarget(member);
    await sleep(this.claimDelayMs);
    // The atomic step: one synchronous check-and-rename.
    const s = this.resources.get(member.handle);
    if (!s || s.record !== null || s.r.name !== member.name) return null;
    s.r = { ...s.r, name: target };
    s.record = record;
    if (this.failClaims > 0) {
      this.failClaims--;
      this.resources.delete(member.handle);
      throw new Error("storing the claim failed");
    }
    return claimedResource(member, record);
  }

  async removeMember(member: PlatformResource): Promise<"removed" | "gone"> {
    await sleep(0);
    return this.resources.delete(member.handle) ? "removed" : "gone";
  }
}
