/**
 * The warm pool's platform extension on Kubernetes (core's PoolPlatform; issue 10): member
 * pods made, listed, claimed and removed through the API. The pod spec and the claim's patch
 * are built in pool-spec.ts; core's WarmPool decides when.
 */
import { randomUUID } from "node:crypto";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import {
  LABEL_POOL,
  labelSelector,
  poolFingerprint,
  type ClaimRecord,
  type PlatformResource,
  type PoolMemberSpec,
  type PoolPlatform,
} from "@code-interpreter/core/backend-kit";
import type { Logger } from "@code-interpreter/core";
import { isConflict, isNotFound, toCoreError } from "./k8s-errors.js";
import { podResource } from "./lookup.js";
import type { PodSpecOptions } from "./pod-spec.js";
import type { Pods } from "./pods.js";
import { ANNOTATION_CLAIM_ID, buildMemberPod, claimPatch, podNameOf } from "./pool-spec.js";

export interface KubernetesPoolOptions {
  core: CoreV1Api;
  pods: Pods;
  namespace: string;
  /** The pod options of every member (the owner included). */
  podOptions: () => Promise<PodSpecOptions>;
  /** What the fingerprint covers (image, pull policy, limits, runtime class, ...): see pool-spec.ts. */
  fingerprintParts: Record<string, unknown>;
  sessionMaxLifetimeSeconds: number;
  keeperSlackSeconds?: number | undefined;
  logger: Logger;
}

/** The label selector of unclaimed members: session identity labels and LABEL_POOL present. */
export const MEMBER_SELECTOR = `${labelSelector("session")},${LABEL_POOL}`;

export class KubernetesPool implements PoolPlatform {
  readonly fingerprint: string;

  constructor(private readonly o: KubernetesPoolOptions) {
    this.fingerprint = poolFingerprint({ platform: "kubernetes", ...o.fingerprintParts });
  }

  async createMember(spec: PoolMemberSpec): Promise<PlatformResource> {
    const pod = buildMemberPod({
      ...(await this.o.podOptions()),
      spec,
      sessionMaxLifetimeSeconds: this.o.sessionMaxLifetimeSeconds,
      keeperSlackSeconds: this.o.keeperSlackSeconds,
    });
    return podResource(await this.o.pods.createAndStart(pod));
  }

  async listMembers(): Promise<PlatformResource[]> {
    const list = await this.o.core.listNamespacedPod({
      namespace: this.o.namespace,
      labelSelector: MEMBER_SELECTOR,
    });
    return list.items.map(podResource);
  }

  /**
   * Reads the member (its current resourceVersion), then one merge patch with that version:
   * 409 (another replica's claim, or any other change since the read) or 404 → null.
   */
  async claimMember(member: PlatformResource, record: ClaimRecord): Promise<PlatformResource | null> {
    const name = podNameOf(member);
    let pod: V1Pod;
    try {
      pod = await this.o.core.readNamespacedPod({ name, namespace: this.o.namespace });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw toCoreError(err, `read pool member ${name}`);
    }
    const m = pod.metadata;
    if (
      !m?.labels?.[LABEL_POOL] ||
      m.uid !== member.handle ||
      m.deletionTimestamp ||
      pod.status?.phase !== "Running"
    )
      return null;
    const claimId = randomUUID();
    try {
      const claimed = await this.o.core.patchNamespacedPod(
        { name, namespace: this.o.namespace, body: claimPatch(pod, record, claimId) },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      return podResource(claimed);
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return null;
      await this.removeIfOurs(name, claimId);
      throw toCoreError(err, `claim pool member ${name}`);
    }
  }

  /**
   * After a claim whose answer was lost (a deadline, a dropped connection), the patch may
   * have been applied: the pod is then a session no caller knows. It is removed when it
   * carries this attempt's claim id (never another replica's claim).
   */
  private async removeIfOurs(name: string, claimId: string): Promise<void> {
    try {
      const pod = await this.o.core.readNamespacedPod({ name, namespace: this.o.namespace });
      if (pod.metadata?.annotations?.[ANNOTATION_CLAIM_ID] === claimId)
        await this.o.pods.deleteQuietly(name, pod.metadata.uid);
    } catch (err) {
      if (!isNotFound(err))
        this.o.logger.warn(
          { pod: name, err: String(err) },
          "checking a pool member after a failed claim failed (its keeper ends it)",
        );
    }
  }

  /** "gone" for a member already terminating (someone else's delete, or an earlier reap). */
  async removeMember(member: PlatformResource): Promise<"removed" | "gone"> {
    if (member.phase === "removing") return "gone";
    try {
      // The uid precondition deletes exactly the member that was listed.
      await this.o.pods.delete(podNameOf(member), member.handle || undefined);
      return "removed";
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return "gone";
      throw err;
    }
  }
}
