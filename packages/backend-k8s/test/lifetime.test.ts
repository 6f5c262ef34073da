/**
 * Lifetimes on Kubernetes: the kubelet (here: the fake's) ends a session pod at
 * activeDeadlineSeconds with no API involved, and the reaper judges idle/expiry from the
 * annotations that activity and keepalive patch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackendError, SessionNotFoundError } from "@code-interpreter/core";
import {
  ANNOTATION_LAST_ACTIVE_AT,
  PodExecTransport,
  buildSessionPod,
  writeKeeperState,
  type KubernetesBackend,
} from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import {
  NAMESPACE,
  createRunningPod,
  eventually,
  makeBackend,
  sessionPodInput,
  startFake,
} from "./helpers.js";

const req = { files: [], idleTimeoutSeconds: null, metadata: {}, owner: null };

describe("session lifetimes", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  beforeAll(async () => {
    fake = await startFake();
    backend = makeBackend(fake, { sessionMaxLifetimeSeconds: 4 });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("the pod ends at its hard deadline without any API call", async () => {
    const s = await backend.createSession({ ...req, ttlSeconds: 4 });
    expect(fake.getPod(NAMESPACE, s.id).spec.activeDeadlineSeconds).toBe(4);
    fake.clearRequests();
    // Ended by the keeper at the deadline (Succeeded) or by the kubelet (DeadlineExceeded).
    // Polled (the fake's store, no HTTP): a loaded machine may take longer than a fixed sleep.
    const phase = await eventually(() => {
      const p = fake.getPod(NAMESPACE, s.id).status.phase as string;
      return ["Succeeded", "Failed"].includes(p) ? p : null;
    });
    expect(["Succeeded", "Failed"]).toContain(phase);
    expect(Date.now()).toBeGreaterThanOrEqual(s.maxExpiresAt);
    expect(fake.requests).toEqual([]);
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    // Found ended on access: removed right away, in the background (the reaper need not wait).
    const until = Date.now() + 10_000;
    while (fake.podNames().includes(s.id) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(fake.podNames()).not.toContain(s.id);
    expect((await backend.reap()).failed).toEqual([]);
  });

  it("idle sessions are reaped from the last-activity annotation; activity postpones it", async () => {
    const long = makeBackend(fake, { sessionMaxLifetimeSeconds: 3600 });
    const s = await long.createSession({ ...req, ttlSeconds: 3600, idleTimeoutSeconds: 30 });
    const t0 = Date.now();
    // 20 s later (injected clock) nothing is idle yet; 40 s later it is.
    expect((await long.reap(t0 + 20_000)).reaped).toEqual([]);
    // Activity moves last-active-at forward (merge patch), which the reaper reads.
    await long.execInSession(s.id, {
      language: "python",
      code: "1",
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
    });
    // Written off the call's latency path: wait for the patch.
    const annotation = () =>
      Number(fake.getPod(NAMESPACE, s.id).metadata.annotations[ANNOTATION_LAST_ACTIVE_AT]);
    const until = Date.now() + 5000;
    while (annotation() < t0 - 1000 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const touched = annotation();
    expect(touched).toBeGreaterThanOrEqual(t0 - 1000);
    expect((await long.reap(touched + 29_000)).reaped).toEqual([]);
    const report = await long.reap(touched + 31_000);
    expect(report.reaped).toEqual([{ id: s.id, reason: "idle" }]);
  });
});

/**
 * With `keeperEnforcesExpiry` the pod itself ends at the session's TTL and idle deadline, so
 * a session outlives its expiry by seconds, not until the max lifetime, when no API runs.
 * (The example is ttl_seconds 20; the tests use a few seconds.)
 */
describe("the keeper ends a session pod at its TTL and idle deadline with no API running", () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    fake = await startFake();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  const ended = (name: string) => {
    const phase = fake.getPod(NAMESPACE, name)?.status?.phase as string | undefined;
    return phase === "Succeeded" || phase === "Failed" ? phase : null;
  };

  it("ends at the TTL, long before the max lifetime (activeDeadlineSeconds)", async () => {
    const input = sessionPodInput(3, { maxLifetimeSeconds: 3600 });
    const pod = buildSessionPod({ ...input, keeperEnforcesExpiry: true });
    await createRunningPod(fake, pod);
    fake.clearRequests();
    const phase = await eventually(() => ended(input.name), 30_000, "pod ended");
    // The keeper exits 0 at its deadline: Succeeded, not the kubelet's DeadlineExceeded.
    expect(phase).toBe("Succeeded");
    expect(Date.now()).toBeGreaterThanOrEqual(input.lifetime.expiresAt);
    expect(Date.now()).toBeLessThan(input.lifetime.maxExpiresAt);
    expect(fake.requests).toEqual([]);
  });

  it("ends an idle session at its idle deadline", async () => {
    const input = sessionPodInput(600, { idleTimeoutSeconds: 3 });
    await createRunningPod(fake, buildSessionPod({ ...input, keeperEnforcesExpiry: true }));
    await eventually(() => ended(input.name), 30_000, "idle pod ended");
    expect(Date.now()).toBeGreaterThanOrEqual(input.lifetime.createdAt + 3000);
    expect(Date.now()).toBeLessThan(input.lifetime.expiresAt);
  });

  it("keepalive recorded in the state file moves the deadline, within the hard cap", async () => {
    const input = sessionPodInput(3, { maxLifetimeSeconds: 3600 });
    await createRunningPod(fake, buildSessionPod({ ...input, keeperEnforcesExpiry: true }));
    const extended = input.lifetime.expiresAt + 4000;
    const t = new PodExecTransport(fake.kubeConfig(NAMESPACE), NAMESPACE, input.name);
    await writeKeeperState(t, { expiresAt: extended, lastActiveAt: Date.now() });
    // Past the original TTL the pod still runs (the keeper rereads the file every <= 2 s).
    await eventually(() => Date.now() > input.lifetime.expiresAt + 2500, 10_000);
    expect(ended(input.name)).toBeNull();
    await eventually(() => ended(input.name), 30_000, "kept-alive pod ended");
    expect(Date.now()).toBeGreaterThanOrEqual(extended);
  });

  it("writing the state fails clearly in a pod without the keeper volume", async () => {
    const input = sessionPodInput(600);
    await createRunningPod(fake, buildSessionPod(input));
    const t = new PodExecTransport(fake.kubeConfig(NAMESPACE), NAMESPACE, input.name);
    const err = await writeKeeperState(t, { expiresAt: Date.now(), lastActiveAt: Date.now() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/recording the session's expiry in its pod failed \(exit 1\)/);
  });

  it("without it (the default), the keeper works to the hard deadline only", () => {
    const input = sessionPodInput(3, { maxLifetimeSeconds: 3600 });
    const cmd = buildSessionPod(input).spec!.containers[0]!.command!;
    expect(cmd.slice(-5, -2)).toEqual([
      "-",
      String(input.lifetime.maxExpiresAt),
      String(input.lifetime.maxExpiresAt),
    ]);
  });
});
