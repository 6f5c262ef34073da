/**
 * The warm pool's pure builders (pool-spec.ts): a member pod is a session pod (same hardening)
 * with its future session name, the pool label and the member's lifetime; a claim is one merge
 * patch carrying the resourceVersion, the session's labels and annotations, the keeper's new
 * lifetime and a lowered activeDeadlineSeconds.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { isSessionId } from "@code-interpreter/core";
import {
  LABEL_METADATA,
  LABEL_OWNER,
  LABEL_POOL,
  executorClaim,
  memberLabels,
  newLifetime,
  newPoolMemberName,
  sessionClaim,
  sessionFromTags,
  sessionTags,
} from "@code-interpreter/core/backend-kit";
import {
  ANNOTATION_CLAIM_ID,
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_LAST_ACTIVE_AT,
  CLAIM_ANNOTATIONS,
  KEEPER_STATE_ARG,
  LABEL_POOL_CLAIMED,
  buildMemberPod,
  buildSessionPod,
  claimPatch,
  layerName,
  memberPodName,
  podNameOf,
  splitTags,
  type PodSpecOptions,
} from "../src/index.js";
import { podSecurityViolations } from "./fake-apiserver/admission.js";
import { mergePatch } from "./fake-apiserver/server.js";
import { validateObject } from "./fake-apiserver/validate.js";
import { limits } from "./helpers.js";

const base: PodSpecOptions = {
  namespace: "sandbox",
  image: "registry.example/executor:1.2.3",
  imagePullPolicy: "Always",
  limits,
};
const now = Date.UTC(2030, 0, 1, 12, 0, 0);
const MAX_AGE_MS = 900_000;
const MAX_LIFETIME = 3600;

function member(): { name: string; pod: V1Pod } {
  const name = newPoolMemberName();
  const spec = { name, labels: memberLabels("fp-1"), createdAt: now, expiresAt: now + MAX_AGE_MS };
  const pod = buildMemberPod({
    ...base,
    spec,
    sessionMaxLifetimeSeconds: MAX_LIFETIME,
    keeperSlackSeconds: 90,
  });
  // As the apiserver answers it: version, uid, start time.
  pod.metadata = { ...pod.metadata, resourceVersion: "42", uid: "uid-1" };
  pod.status = { phase: "Running", startTime: new Date(now + 1000) };
  return { name, pod };
}

/** The object as a client sends it (status is the server's: a Date here, a string on the wire). */
function withoutStatus(pod: V1Pod): V1Pod {
  const { status: _status, ...rest } = pod;
  return rest;
}

describe("buildMemberPod", () => {
  it("is a valid pod that passes Pod Security restricted, named with its future session id", () => {
    const { name, pod } = member();
    expect(validateObject(withoutStatus(pod))).toBeNull();
    expect(podSecurityViolations(pod.spec, "restricted")).toEqual([]);
    expect(pod.metadata?.name).toBe(memberPodName(name));
    expect(isSessionId(pod.metadata?.name)).toBe(true);
    expect(pod.metadata?.labels).toEqual(memberLabels("fp-1"));
    // Not a session until claimed: no session times in its tags.
    expect(sessionFromTags(pod.metadata!.name!, pod.metadata!.labels!, null, "running")).toBeNull();
  });

  it("is hardened exactly like a cold session pod (only name, tags, keeper arguments and deadline differ)", () => {
    const { pod } = member();
    const lifetime = newLifetime(now, 600, MAX_LIFETIME, null);
    const cold = buildSessionPod({
      ...base,
      name: pod.metadata!.name!,
      lifetime,
      ...sessionTags(lifetime, { owner: null, metadata: {} }),
    });
    const strip = (p: V1Pod) => {
      const c = structuredClone(p);
      delete c.metadata;
      delete c.status;
      delete c.spec!.activeDeadlineSeconds;
      delete c.spec!.containers[0]!.command;
      return c;
    };
    expect(strip(pod)).toEqual(strip(cold));
  });

  it("runs the keeper to max age + slack, with a pod deadline that leaves room for the longest session", () => {
    const { pod } = member();
    const cmd = pod.spec!.containers[0]!.command!;
    const args = cmd.slice(cmd.indexOf(KEEPER_STATE_ARG));
    // state, hard cap (expiry + slack), expiry, idle (none), created, slack
    expect(args).toEqual([
      KEEPER_STATE_ARG,
      String(now + MAX_AGE_MS + 90_000),
      String(now + MAX_AGE_MS),
      "0",
      String(now),
      "90",
    ]);
    expect(pod.spec!.activeDeadlineSeconds).toBe(900 + 90 + MAX_LIFETIME);
  });
});

describe("claimPatch", () => {
  const lifetime = newLifetime(now + 60_000, 600, MAX_LIFETIME, 120);
  const tags = sessionTags(lifetime, { owner: "a".repeat(32), metadata: { chat: "x y" } });
  const spec = {
    id: "",
    labels: tags.labels,
    annotations: tags.annotations,
    lifetime,
    keeperIdleTimeoutSeconds: 125,
  };

  it("turns the member into exactly what a cold create tags, with the resourceVersion as precondition", () => {
    const { pod } = member();
    const patch = claimPatch(pod, sessionClaim(spec, now + 60_000), "claim-1");
    expect(patch.metadata.resourceVersion).toBe("42");
    const after = mergePatch(structuredClone(pod), patch) as V1Pod;
    expect(after.metadata!.labels).toEqual({ ...tags.labels, [LABEL_POOL_CLAIMED]: "session" });
    expect(after.metadata!.labels![LABEL_POOL]).toBeUndefined();
    expect(after.metadata!.annotations![LABEL_METADATA]).toBe(JSON.stringify({ chat: "x y" }));
    expect(after.metadata!.annotations![ANNOTATION_CLAIM_ID]).toBe("claim-1");
    const info = sessionFromTags(
      after.metadata!.name!,
      { ...after.metadata!.annotations, ...after.metadata!.labels },
      null,
      "running",
    );
    expect(info).toMatchObject({
      owner: "a".repeat(32),
      metadata: { chat: "x y" },
      idleTimeoutSeconds: 120,
    });
    expect(info?.expiresAt).toBe(Math.floor(lifetime.expiresAt / 1000) * 1000);
    // The keeper's lifetime: digits only, all four; expiry and activity start at the claim.
    const a = after.metadata!.annotations!;
    expect(a[CLAIM_ANNOTATIONS.maxExpiresAt]).toBe(String(lifetime.maxExpiresAt));
    expect(a[CLAIM_ANNOTATIONS.expiresAt]).toBe(String(lifetime.expiresAt));
    expect(a[CLAIM_ANNOTATIONS.idleTimeoutSeconds]).toBe("125");
    expect(a[CLAIM_ANNOTATIONS.createdAt]).toBe(String(lifetime.createdAt));
    expect(a[ANNOTATION_EXPIRES_AT]).toBe(String(lifetime.expiresAt));
    expect(a[ANNOTATION_LAST_ACTIVE_AT]).toBe(String(lifetime.createdAt));
    // The kubelet's backstop lowered to the session's hard cap, counted from startTime.
    expect(after.spec!.activeDeadlineSeconds).toBe(Math.ceil((lifetime.maxExpiresAt - (now + 1000)) / 1000));
    expect(validateObject(withoutStatus(after))).toBeNull();
  });

  it("never raises activeDeadlineSeconds", () => {
    const { pod } = member();
    pod.spec!.activeDeadlineSeconds = 10;
    expect(claimPatch(pod, sessionClaim(spec, now), "c").spec).toBeUndefined();
  });

  it("a one-shot claim makes an executor known as code-exec-<uuid> in the pod code-session-<uuid>", () => {
    const { pod } = member();
    const reapAfter = now + 70_000;
    const after = mergePatch(
      structuredClone(pod),
      claimPatch(pod, executorClaim(reapAfter, now), "c"),
    ) as V1Pod;
    const labels = after.metadata!.labels!;
    expect(labels.component).toBe("executor");
    expect(labels[LABEL_POOL_CLAIMED]).toBe("executor");
    const name = layerName(after.metadata!.name!, labels);
    expect(name).toBe(after.metadata!.name!.replace("code-session-", "code-exec-"));
    expect(podNameOf({ name, tags: labels })).toBe(after.metadata!.name);
    // A cold executor or a session is known by its own name.
    expect(podNameOf({ name, tags: {} })).toBe(name);
    expect(layerName(after.metadata!.name!, { component: "session" })).toBe(after.metadata!.name);
    expect(after.spec!.activeDeadlineSeconds).toBe(Math.ceil((reapAfter - (now + 1000)) / 1000));
  });
});

describe("splitTags", () => {
  it("puts caller metadata and anything that is not a label value into annotations", () => {
    expect(
      splitTags({
        app: "code-interpreter",
        [LABEL_OWNER]: "ab",
        [LABEL_METADATA]: "{}",
        x: "a b",
        y: "z".repeat(64),
      }),
    ).toEqual({
      labels: { app: "code-interpreter", [LABEL_OWNER]: "ab" },
      annotations: { [LABEL_METADATA]: "{}", x: "a b", y: "z".repeat(64) },
    });
  });
});
