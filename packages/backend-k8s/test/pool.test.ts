/**
 * The warm pool on Kubernetes (issue 10), on the fake apiserver whose pods are Docker
 * containers: members fill to the size, are hardened exactly like cold session pods and never
 * listed; a session create claims one (one merge patch with a resourceVersion precondition:
 * two replicas never get the same pod); the claimed pod's keeper follows the claim.
 */
import { buffer } from "node:stream/consumers";
import type { V1Pod } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  LABEL_POOL,
  memberLabels,
  sessionClaim,
  type PlatformResource,
} from "@code-interpreter/core/backend-kit";
import { newLifetime, sessionTags } from "@code-interpreter/core/backend-kit";
import {
  CLAIM_ANNOTATIONS,
  KEEPER_STATE_PATH,
  LABEL_POOL_CLAIMED,
  type KubernetesBackend,
} from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import {
  NAMESPACE,
  ProbedBackend,
  backendOptions,
  eventually,
  makePooledBackend,
  memberPods,
  poolReady,
  staged,
  startFake,
} from "./helpers.js";

const req = { files: [], idleTimeoutSeconds: null, metadata: {}, owner: null, ttlSeconds: 600 };
const pod = (fake: FakeApiServer, name: string) => fake.getPod(NAMESPACE, name) as V1Pod;

/** A pod's spec without what a member and a cold session may differ in. */
function hardening(p: V1Pod): unknown {
  const spec = structuredClone(p.spec!);
  delete spec.activeDeadlineSeconds;
  delete spec.containers[0]!.command;
  return spec;
}

describe("warm pool members", () => {
  let fake: FakeApiServer;
  const backends: KubernetesBackend[] = [];
  beforeAll(async () => {
    fake = await startFake();
  });
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.close();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("fill to the size, are hardened exactly like a cold session pod, and are never listed or counted", async () => {
    const { backend } = makePooledBackend(fake, 2);
    const cold = new ProbedBackend(backendOptions(fake));
    backends.push(backend, cold);
    await poolReady(backend, 2);
    const members = memberPods(fake);
    expect(members).toHaveLength(2);
    const s = await cold.createSession(req);
    for (const m of members) {
      expect(m.status?.phase).toBe("Running");
      expect(m.metadata?.labels).toEqual(memberLabels(backend.k8s.pool.fingerprint));
      expect(hardening(m)).toEqual(hardening(pod(fake, s.id)));
    }
    for (const b of [backend, cold]) {
      expect((await b.listSessions()).map((x) => x.id)).toEqual([s.id]);
      expect(await b.countSessions()).toBe(1);
    }
    await cold.deleteSession(s.id);
  });

  it("a session create claims a member: no pod start, the tags of a cold create, seen by every replica; the pool refills", async () => {
    const { backend, probe } = makePooledBackend(fake, 2);
    const other = new ProbedBackend(backendOptions(fake));
    backends.push(backend, other);
    await poolReady(backend, 2);
    const before = new Map(memberPods(fake).map((m) => [m.metadata!.name!, m.metadata!.uid!]));
    const owner = "0123456789abcdef0123456789abcdef";
    const s = await backend.createSession({
      ...req,
      owner,
      metadata: { chat: "c 1" },
      idleTimeoutSeconds: 300,
    });
    expect(probe.hits("session")).toBe(1);
    // The session is a member that already ran: same pod, same uid.
    expect(before.get(s.id)).toBe(pod(fake, s.id).metadata!.uid);
    const labels = pod(fake, s.id).metadata!.labels!;
    expect(labels[LABEL_POOL]).toBeUndefined();
    expect(labels[LABEL_POOL_CLAIMED]).toBe("session");
    // Another replica sees it like a cold session: owner-scoped listing, metadata, lifetime.
    const seen = await other.getSession(s.id, { owner });
    expect(seen).toMatchObject({ id: s.id, owner, metadata: { chat: "c 1" }, idleTimeoutSeconds: 300 });
    expect((await other.listSessions({ owner })).map((x) => x.id)).toEqual([s.id]);
    expect(await other.listSessions({ owner: "f".repeat(32) })).toEqual([]);
    // It runs code as the unprivileged user, and its keeper's file carries the claim.
    const r = await other.execInSession(
      s.id,
      {
        language: "bash",
        code: `id -u; cat ${KEEPER_STATE_PATH}`,
        timeoutMs: 10_000,
        maxOutputBytes: 65_536,
      },
      { owner },
    );
    expect(r.stdout.split("\n")[0]).toBe("65532");
    await eventually(
      async () => {
        const out = await backend.execInSession(s.id, {
          language: "bash",
          code: `cat ${KEEPER_STATE_PATH}`,
          timeoutMs: 10_000,
          maxOutputBytes: 65_536,
        });
        const m = new RegExp(`${CLAIM_ANNOTATIONS.expiresAt}="(\\d+)"`).exec(out.stdout);
        return m && Math.abs(Number(m[1]) - seen.expiresAt) < 1000;
      },
      20_000,
      "the claim's lifetime in the keeper's annotations file",
    );
    await poolReady(backend, 2);
    expect(memberPods(fake)).toHaveLength(2);
    expect((await backend.listSessions()).map((x) => x.id)).toEqual([s.id]);
    await backend.deleteSession(s.id);
  });

  it("files given at creation are staged into the claimed member", async () => {
    const { backend, probe } = makePooledBackend(fake, 1);
    backends.push(backend);
    await poolReady(backend, 1);
    const s = await backend.createSession({ ...req, files: [staged("data/in.txt", "hello pool")] });
    expect(probe.hits("session")).toBe(1);
    const f = await backend.readSessionFile(s.id, "data/in.txt");
    expect(f.sizeBytes).toBe(10);
    expect((await buffer(f.content)).toString()).toBe("hello pool");
    await backend.deleteSession(s.id);
  });

  it("of 20 concurrent claims of 3 members by two replicas, exactly one per member wins (the rest: 409 Conflict, or found it taken)", async () => {
    const a = new ProbedBackend(backendOptions(fake));
    const b = new ProbedBackend(backendOptions(fake));
    backends.push(a, b);
    const now = Date.now();
    const members = await Promise.all(
      [0, 1, 2].map(() =>
        a.k8s.pool.createMember({
          name: `code-pool-${crypto.randomUUID()}`,
          labels: memberLabels(a.k8s.pool.fingerprint),
          createdAt: now,
          expiresAt: now + 600_000,
        }),
      ),
    );
    const lifetime = newLifetime(Date.now(), 600, 3600, null);
    const tags = sessionTags(lifetime, { owner: null, metadata: {} });
    const spec = { id: "", ...tags, lifetime, keeperIdleTimeoutSeconds: null };
    fake.clearRequests();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? b : a).k8s.pool.claimMember(members[i % 3]!, sessionClaim(spec, Date.now())),
      ),
    );
    const won = results.filter((r): r is PlatformResource => r !== null);
    expect(won).toHaveLength(3);
    expect(new Set(won.map((r) => r.handle))).toEqual(new Set(members.map((m) => m.handle)));
    expect(fake.requests.filter((r) => r.method === "PATCH")).toHaveLength(20);
    const left = new Set((await a.k8s.pool.listMembers()).map((m) => m.handle));
    expect(members.filter((m) => left.has(m.handle))).toEqual([]);
    const listed = (await b.listSessions()).map((x) => x.id);
    for (const r of won) expect(listed).toContain(r.name);
    for (const r of won) await b.deleteSession(r.name);
  });

  it("a claim whose answer is lost removes the pod it claimed; a member gone meanwhile is a miss", async () => {
    const a = new ProbedBackend(backendOptions(fake));
    backends.push(a);
    const now = Date.now();
    const [lost, gone] = await Promise.all(
      [0, 1].map(() =>
        a.k8s.pool.createMember({
          name: `code-pool-${crypto.randomUUID()}`,
          labels: memberLabels(a.k8s.pool.fingerprint),
          createdAt: now,
          expiresAt: now + 600_000,
        }),
      ),
    );
    const lifetime = newLifetime(Date.now(), 600, 3600, null);
    const spec = {
      id: "",
      ...sessionTags(lifetime, { owner: null, metadata: {} }),
      lifetime,
      keeperIdleTimeoutSeconds: null,
    };
    // Applied by the apiserver, but the answer never arrives: a session no caller knows.
    fake.clearRequests();
    fake.loseNextPatchAnswer(NAMESPACE, lost!.name);
    await expect(a.k8s.pool.claimMember(lost!, sessionClaim(spec, Date.now()))).rejects.toThrow();
    // It was removed by the claimer, who found its own claim id on it.
    expect(fake.requests.some((r) => r.method === "DELETE" && r.path.endsWith(`/pods/${lost!.name}`))).toBe(
      true,
    );
    await eventually(
      () => !pod(fake, lost!.name) || !!pod(fake, lost!.name).metadata?.deletionTimestamp,
      30_000,
      "the lost claim's pod deleted",
    );
    expect(await a.k8s.pool.removeMember(gone!)).toBe("removed");
    expect(await a.k8s.pool.claimMember(gone!, sessionClaim(spec, Date.now()))).toBeNull();
  });

  it("two replicas doing 20 concurrent creates never hand out the same session or pod", async () => {
    const one = makePooledBackend(fake, 4, { refillConcurrency: 4 });
    const two = makePooledBackend(fake, 4, { refillConcurrency: 4 });
    backends.push(one.backend, two.backend);
    await poolReady(one.backend, 4);
    await poolReady(two.backend, 4);
    const made = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? two : one).backend.createSession(req)),
    );
    const ids = made.map((s) => s.id);
    expect(new Set(ids).size).toBe(20);
    expect(new Set(ids.map((id) => pod(fake, id).metadata!.uid)).size).toBe(20);
    expect(one.probe.hits("session") + two.probe.hits("session")).toBeGreaterThanOrEqual(4);
    await Promise.all(ids.map((id) => one.backend.deleteSession(id)));
  }, 180_000);
});

describe("a claimed pod's keeper, with no API running", () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    fake = await startFake();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  const ended = (name: string) => {
    const phase = pod(fake, name)?.status?.phase;
    return phase === "Succeeded" || phase === "Failed" ? phase : null;
  };

  it("a claimed session outlives the member's max age and ends at its own TTL; unclaimed members end at max age", async () => {
    // Max age 10 s (claims stop 2.5 s before it), slack 3 s: the member's keeper ends it at
    // 13 s unless it sees the claim's annotations first (re-rendered 200 ms after the patch).
    const { backend, probe } = makePooledBackend(fake, 1, { maxAgeSeconds: 10, keeperSlackSeconds: 3 });
    await poolReady(backend, 1);
    const member = memberPods(fake)[0];
    if (!member) throw new Error(`no member pod: ${JSON.stringify(fake.podNames())}`);
    const memberEnd = new Date(member.metadata!.creationTimestamp!).getTime() + 13_000;
    const s = await backend.createSession({ ...req, ttlSeconds: 16 });
    expect(probe.hits("session")).toBe(1);
    expect(s.id).toBe(member.metadata!.name);
    const refill = (
      await eventually(
        () => memberPods(fake).find((p) => p.status?.phase === "Running"),
        60_000,
        "a refilled member",
      )
    ).metadata!.name!;
    await backend.close(); // no API from here on: the keepers decide
    await eventually(() => Date.now() > memberEnd + 3000, 30_000);
    expect(ended(s.id)).toBeNull();
    // The kubelet's backstop was lowered from the member's (max age + slack + 3600 s) to the
    // session's hard cap (3600 s from the claim, counted from the pod's start).
    const ads = pod(fake, s.id).spec!.activeDeadlineSeconds!;
    expect(ads).toBeGreaterThanOrEqual(3600);
    expect(ads).toBeLessThan(10 + 3 + 3600);
    const phase = await eventually(() => ended(s.id), 60_000, "claimed session ended");
    expect(phase).toBe("Succeeded");
    expect(Date.now()).toBeGreaterThanOrEqual(s.expiresAt + 3000);
    expect(Date.now()).toBeLessThan(s.expiresAt + 20_000);
    // The refilled member, never claimed, ended on its own at its max age + slack.
    expect(await eventually(() => ended(refill), 30_000, "unclaimed member ended")).toBe("Succeeded");
  }, 120_000);
});
