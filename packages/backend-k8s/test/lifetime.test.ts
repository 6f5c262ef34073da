/**
 * Lifetimes on Kubernetes: the kubelet (here: the fake's) ends a session pod at
 * activeDeadlineSeconds with no API involved, and the reaper judges idle/expiry from the
 * annotations that activity and keepalive patch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionNotFoundError } from "@code-interpreter/core";
import { ANNOTATION_LAST_ACTIVE_AT, type KubernetesBackend } from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import { NAMESPACE, makeBackend, startFake } from "./helpers.js";

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
    await new Promise((r) => setTimeout(r, Math.max(0, s.maxExpiresAt - Date.now()) + 2500));
    expect(fake.requests).toEqual([]);
    // Ended by the keeper at the deadline (Succeeded) or by the kubelet (DeadlineExceeded).
    expect(["Succeeded", "Failed"]).toContain(fake.getPod(NAMESPACE, s.id).status.phase);
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
