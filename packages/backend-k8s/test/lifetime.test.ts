/**
 * Lifetimes on Kubernetes: the kubelet (here: the fake's) ends a session pod at
 * activeDeadlineSeconds with no API involved, the reaper judges idle/expiry from the
 * annotations that activity and keepalive patch, and the keeper (the pod's PID 1) ends the
 * pod at its TTL and idle deadline from the same annotations, projected read-only into the
 * pod by a downwardAPI volume, with no API running.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionNotFoundError } from "@code-interpreter/core";
import {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_LAST_ACTIVE_AT,
  KEEPER_STATE_DIR,
  KEEPER_STATE_PATH,
  type KubernetesBackend,
} from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import { NAMESPACE, eventually, makeBackend, startFake } from "./helpers.js";

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
 * The keeper ends a session pod at its TTL and idle deadline when no API runs: each test
 * creates the session through a backend and then never calls it again (no reaper, no
 * reads), so only the pod itself can end it. keeperSlackSeconds is 1 here (default 90, for
 * a real kubelet's refresh delay of the annotations file).
 */
describe("the keeper ends a session pod at its TTL and idle deadline with no API running", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  beforeAll(async () => {
    fake = await startFake();
    backend = makeBackend(fake, { sessionMaxLifetimeSeconds: 3600, keeperSlackSeconds: 1 });
  });
  afterAll(async () => {
    await backend?.close();
    await fake?.stop();
  });

  const ended = (name: string) => {
    const phase = fake.getPod(NAMESPACE, name)?.status?.phase as string | undefined;
    return phase === "Succeeded" || phase === "Failed" ? phase : null;
  };

  it("a session with ttl_seconds 20 ends soon after 20 s, long before the max lifetime", async () => {
    const s = await backend.createSession({ ...req, ttlSeconds: 20 });
    const pod = fake.getPod(NAMESPACE, s.id);
    expect(pod.spec.activeDeadlineSeconds).toBe(3600);
    expect(pod.spec.volumes).toContainEqual(expect.objectContaining({ name: "podinfo" }));
    fake.clearRequests();
    const phase = await eventually(() => ended(s.id), 60_000, "pod ended");
    // The keeper exits 0 at its deadline: Succeeded, not the kubelet's DeadlineExceeded.
    expect(phase).toBe("Succeeded");
    expect(Date.now()).toBeGreaterThanOrEqual(s.expiresAt + 1000);
    expect(Date.now()).toBeLessThan(s.expiresAt + 15_000);
    expect(fake.requests).toEqual([]);
  }, 90_000);

  it("an idle session ends at its idle deadline (plus the activity-write and kubelet slack)", async () => {
    const s = await backend.createSession({ ...req, ttlSeconds: 600, idleTimeoutSeconds: 3 });
    await eventually(() => ended(s.id), 60_000, "idle pod ended");
    // idle 3 s + the layer's activity-write interval (1 s) + slack 1 s, from creation.
    expect(Date.now() - s.createdAt).toBeGreaterThanOrEqual(5000);
    expect(Date.now()).toBeLessThan(s.expiresAt);
  }, 90_000);

  it("a keepalive (an annotation patch) moves the deadline the keeper sees", async () => {
    const s = await backend.createSession({ ...req, ttlSeconds: 4 });
    const kept = await backend.keepalive(s.id, 12);
    expect(kept.expiresAt).toBeGreaterThan(s.expiresAt + 5000);
    expect(Number(fake.getPod(NAMESPACE, s.id).metadata.annotations[ANNOTATION_EXPIRES_AT])).toBe(
      kept.expiresAt,
    );
    // Past the original TTL + slack the pod still runs (the keeper rereads every <= 2 s).
    await eventually(() => Date.now() > s.expiresAt + 4000, 20_000);
    expect(ended(s.id)).toBeNull();
    await eventually(() => ended(s.id), 60_000, "kept-alive pod ended");
    expect(Date.now()).toBeGreaterThanOrEqual(kept.expiresAt + 1000);
  }, 90_000);

  it("the code cannot write the annotations the keeper reads", async () => {
    const s = await backend.createSession({ ...req, ttlSeconds: 600 });
    const code = [
      "import os, json",
      `d = ${JSON.stringify(KEEPER_STATE_DIR)}`,
      "out = {'read': open(" + JSON.stringify(KEEPER_STATE_PATH) + ").read()}",
      "for name, op in [",
      "    ('write', lambda: open(os.path.join(d, 'annotations'), 'w').write('x')),",
      "    ('create', lambda: open(os.path.join(d, 'mine'), 'w').write('x')),",
      "    ('swap', lambda: os.symlink('/tmp', os.path.join(d, '..data_tmp'))),",
      "    ('unlink', lambda: os.unlink(os.path.join(d, '..data'))),",
      "]:",
      "    try:",
      "        op(); out[name] = 'ok'",
      "    except OSError as e:",
      "        out[name] = e.errno",
      "print(json.dumps(out))",
    ].join("\n");
    const r = await backend.execInSession(s.id, {
      language: "python",
      code,
      timeoutMs: 10_000,
      maxOutputBytes: 10_000,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.read).toContain(`${ANNOTATION_EXPIRES_AT}="${s.expiresAt}"`);
    for (const op of ["write", "create", "swap", "unlink"]) expect(out[op], op).toBe(30); // EROFS
    await backend.deleteSession(s.id);
  });
});
