/**
 * Claimed warm-pool members on Docker (issue 10). Labels cannot change, so a member claimed
 * as a session keeps its member labels; what it became (owner, metadata, lifetime: the tags a
 * cold session has as labels) is its claim record, stored once in its root-owned state file.
 * Lookups and listings resolve a claimed container to the resource the session layer expects
 * (`claimedResource`): the record is read once per container with the archive API (no process
 * runs in the container) and cached by container id — it never changes after the claim, and a
 * new API process reads it the same way.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import {
  LABEL_POOL,
  claimedResource,
  type ClaimRecord,
  type PlatformResource,
} from "@code-interpreter/core/backend-kit";
import { isSessionId } from "@code-interpreter/core";
import { isNotFound } from "./errors.js";
import { readStateRecord } from "./state.js";

/** How often a lookup waiting for a claim record reads the state file again. */
const RECORD_POLL_MS = 50;

/** Records kept; beyond it the oldest are dropped (read again when needed). */
const MAX_CACHED = 10_000;

export class ClaimCache {
  private readonly records = new Map<string, ClaimRecord>();

  constructor(
    private readonly docker: Dockerode,
    private readonly signal: () => AbortSignal,
  ) {}

  /** True for a container that was a pool member and has been claimed (renamed). */
  static isClaimed(r: PlatformResource): boolean {
    return !!r.tags[LABEL_POOL] && isSessionId(r.name);
  }

  remember(handle: string, record: ClaimRecord): void {
    this.records.delete(handle);
    this.records.set(handle, record);
    if (this.records.size > MAX_CACHED) {
      const oldest = this.records.keys().next().value;
      if (oldest !== undefined) this.records.delete(oldest);
    }
  }

  forget(handle: string): void {
    this.records.delete(handle);
  }

  /**
   * The resource as the layer sees it: a claimed member with its claim's name and tags; a
   * claimed member whose record is not written yet (a claim in flight) or unreadable stays as
   * it is (its tags are no session's: not found, not listed, left to its keeper).
   */
  async resolve(r: PlatformResource, waitMs = 0): Promise<PlatformResource> {
    if (!ClaimCache.isClaimed(r)) return r;
    const until = Date.now() + waitMs;
    let record = await this.record(r);
    while (!record && Date.now() < until) {
      await sleep(RECORD_POLL_MS);
      record = await this.record(r);
    }
    return record ? claimedResource(r, record) : r;
  }

  private async record(r: PlatformResource): Promise<ClaimRecord | null> {
    const hit = this.records.get(r.handle);
    if (hit) return hit;
    if (r.phase === "removing") return null;
    try {
      const { claim } = await readStateRecord(this.docker.getContainer(r.handle), this.signal());
      if (claim) this.remember(r.handle, claim);
      return claim;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}
