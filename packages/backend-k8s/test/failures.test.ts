/**
 * Failure handling against the fake apiserver: pods that never start, image pull errors,
 * unschedulable pods, delete races and failures during reaping, an unreachable API, and the
 * session-prefix check that must keep non-session names away from the API entirely.
 */
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  BackendError,
  BackendUnavailableError,
  CapacityError,
  SessionNotFoundError,
} from "@code-interpreter/core";
import { newExecutorName, newSessionId } from "@code-interpreter/core/backend-kit";
import { buildExecutorPod, buildSessionPod, type KubernetesBackend } from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import {
  IMAGE,
  NAMESPACE,
  backendOptions,
  eventually,
  limits,
  makeBackend,
  sessionPodInput,
  startFake,
} from "./helpers.js";
import { KubernetesBackend as Backend } from "../src/index.js";

const sessionReq = { files: [], ttlSeconds: 600, idleTimeoutSeconds: null, metadata: {}, owner: null };

/** An expired session pod object (as a crashed API would leave behind). */
function expiredSessionPod(createdAgoMs = 120_000) {
  return buildSessionPod(sessionPodInput(60, { now: Date.now() - createdAgoMs }));
}

describe("pod start failures", () => {
  let fake: FakeApiServer;
  afterEach(async () => {
    await fake?.stop();
  });

  it("a pod stuck Pending past the timeout gives a clear error and is deleted", async () => {
    fake = await startFake({ behavior: () => "pending" });
    const backend = makeBackend(fake, { podReadyTimeoutSec: 1 });
    const started = Date.now();
    const err = await backend.createSession(sessionReq).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/was not running after 1s \(phase Pending/);
    expect(Date.now() - started).toBeLessThan(5000);
    const name = /pod (code-session-[0-9a-f-]+)/.exec((err as Error).message)![1]!;
    expect(fake.requests.some((r) => r.method === "DELETE" && r.path.endsWith(`/pods/${name}`))).toBe(true);
    await eventually(() => fake.podNames().length === 0);
  });

  it("an unschedulable pod answers CapacityError (429) within seconds, not at the ready timeout, and is deleted", async () => {
    fake = await startFake({ behavior: () => "unschedulable" });
    const backend = makeBackend(fake, { podReadyTimeoutSec: 60 });
    let started = Date.now();
    const err = await backend.createSession(sessionReq).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toContain("capacity reached");
    expect((err as Error).message).toContain("0/3 nodes are available: 3 Insufficient memory");
    expect(Date.now() - started).toBeLessThan(5000);
    await eventually(() => fake.podNames().length === 0);

    // One-shot runs answer the same way and leave no pod either.
    started = Date.now();
    const err2 = await backend.execute({ ...oneShot("print(1)"), files: [] }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(CapacityError);
    expect(Date.now() - started).toBeLessThan(5000);
    await eventually(() => fake.podNames().length === 0);
  });

  it("a full node (CPU requests): the next session is a 429 within seconds, and room frees with a delete", async () => {
    fake = await startFake({ node: { cpu: "2" } });
    const backend = makeBackend(fake, { podReadyTimeoutSec: 60 });
    const a = await backend.createSession(sessionReq);
    await backend.createSession(sessionReq);
    const started = Date.now();
    const err = await backend.createSession(sessionReq).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as Error).message).toContain("Insufficient cpu");
    expect(Date.now() - started).toBeLessThan(5000);
    await eventually(() => fake.podNames().length === 2);
    await backend.deleteSession(a.id);
    await eventually(() => !fake.podNames().includes(a.id));
    expect((await backend.createSession(sessionReq)).status).toBe("running");
    await backend.close();
  });

  it("an image that cannot be pulled fails fast with an error naming the image, and the pod is deleted", async () => {
    fake = await startFake();
    const image = "registry.invalid/no-such-executor:9.9";
    const backend = makeBackend(fake, { image, podReadyTimeoutSec: 30 });
    const started = Date.now();
    const err = await backend.createSession(sessionReq).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toContain(`image "${image}" could not be pulled`);
    expect((err as Error).message).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await eventually(() => fake.podNames().length === 0);

    // One-shot runs clean up the same way.
    const err2 = await backend.execute({ ...oneShot("print(1)"), files: [] }).catch((e: unknown) => e);
    expect((err2 as Error).message).toContain(image);
    await eventually(() => fake.podNames().length === 0);
  });

  it("imagePullPolicy Never with a missing image reports ErrImageNeverPull", async () => {
    fake = await startFake();
    const backend = makeBackend(fake, { image: "not-present-locally:1", imagePullPolicy: "Never" });
    await expect(backend.createSession(sessionReq)).rejects.toThrow(/ErrImageNeverPull/);
  });

  it("a simulated pull error on an existing image behaves the same", async () => {
    fake = await startFake({ behavior: () => "image-pull-error" });
    const backend = makeBackend(fake);
    await expect(backend.createSession(sessionReq)).rejects.toThrow(
      new RegExp(`image "${IMAGE}" could not be pulled`),
    );
    await eventually(() => fake.podNames().length === 0);
  });
});

function oneShot(code: string) {
  return { language: "python" as const, code, timeoutMs: 10_000, maxOutputBytes: 10_000 };
}

describe("reaper, deletes and the prefix check", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  beforeAll(async () => {
    fake = await startFake();
    backend = makeBackend(fake);
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("tolerates a 404 race while reaping and keeps going after a 500", async () => {
    const pods = [expiredSessionPod(), expiredSessionPod(), expiredSessionPod(), expiredSessionPod()];
    for (const p of pods) fake.injectPod(p);
    const [raced, failing, ok1, ok2] = pods.map((p) => p.metadata!.name!) as [string, string, string, string];
    fake.failNextDelete(NAMESPACE, raced, "404-race");
    fake.failNextDelete(NAMESPACE, failing, "500");

    const report = await backend.reap();
    expect(report.reaped.map((r) => r.id).sort()).toEqual([ok1, ok2].sort());
    expect(report.reaped.every((r) => r.reason === "expired")).toBe(true);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]!.id).toBe(failing);
    expect(report.failed[0]!.error).toMatch(/HTTP 500/);
    // The next round deletes the one that failed.
    const again = await backend.reap();
    expect(again.reaped.map((r) => r.id)).toEqual([failing]);
    await eventually(() => fake.podNames().length === 0);
  });

  it("reaps orphaned one-shot executors but not fresh ones, and never touches foreign pods", async () => {
    const now = Date.now();
    const old = buildExecutorPod({
      namespace: NAMESPACE,
      image: IMAGE,
      imagePullPolicy: "IfNotPresent",
      limits,
      name: newExecutorName(),
      now: now - 3_600_000,
      timeoutMs: 1000,
      podReadyTimeoutSec: 60,
    });
    const fresh = buildExecutorPod({
      namespace: NAMESPACE,
      image: IMAGE,
      imagePullPolicy: "IfNotPresent",
      limits,
      name: newExecutorName(),
      now,
      timeoutMs: 1000,
      podReadyTimeoutSec: 60,
    });
    const foreign = expiredSessionPod();
    foreign.metadata!.name = "my-database-0"; // session labels, but not a session name
    const unlabeled = expiredSessionPod();
    unlabeled.metadata!.labels = { app: "something-else" };
    for (const p of [old, fresh, foreign, unlabeled]) fake.injectPod(p);
    const report = await backend.reap();
    expect(report.reaped).toEqual([{ id: old.metadata!.name, reason: "orphaned-executor" }]);
    expect(fake.podNames().sort()).toEqual(
      [fresh.metadata!.name!, "my-database-0", unlabeled.metadata!.name!].sort(),
    );
  });

  it("makes no HTTP request at all for a non-session name", async () => {
    fake.clearRequests();
    for (const id of [
      "my-database-0",
      "code-exec-0b1c2d3e-0000-4000-8000-000000000000",
      "code-session-NOT-A-UUID",
      "../etc",
      "",
    ]) {
      await expect(backend.deleteSession(id)).rejects.toBeInstanceOf(SessionNotFoundError);
      await expect(backend.getSession(id)).rejects.toBeInstanceOf(SessionNotFoundError);
      await expect(backend.keepalive(id, 60)).rejects.toBeInstanceOf(SessionNotFoundError);
    }
    expect(fake.requests).toEqual([]);
  });

  it("refuses to delete a session-named pod without the session labels", async () => {
    const p = expiredSessionPod();
    p.metadata!.labels = { app: "code-interpreter", component: "executor" };
    fake.injectPod(p);
    fake.clearRequests();
    await expect(backend.deleteSession(p.metadata!.name!)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect(fake.requests.map((r) => r.method)).toEqual(["GET"]);
    expect(fake.podNames()).toContain(p.metadata!.name);
  });

  it("a delete that races with another replica is SessionNotFoundError; a 500 is a BackendError", async () => {
    const a = buildSessionPod({ ...expiredSessionPodArgs(), name: newSessionId() });
    const b = buildSessionPod({ ...expiredSessionPodArgs(), name: newSessionId() });
    fake.injectPod(a);
    fake.injectPod(b);
    fake.failNextDelete(NAMESPACE, a.metadata!.name!, "404-race");
    await expect(backend.deleteSession(a.metadata!.name!)).rejects.toBeInstanceOf(SessionNotFoundError);
    // An expired session: 404 for the caller, but the pod is deleted all the same.
    const expired = expiredSessionPod();
    fake.injectPod(expired);
    await expect(backend.deleteSession(expired.metadata!.name!)).rejects.toBeInstanceOf(SessionNotFoundError);
    await eventually(() => !fake.podNames().includes(expired.metadata!.name!));
    fake.failNextDelete(NAMESPACE, b.metadata!.name!, "500");
    const err = await backend.deleteSession(b.metadata!.name!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).status).toBe(500);
    await backend.deleteSession(b.metadata!.name!);
  });

  it("uses a merge patch on annotations for keepalive and activity", async () => {
    const s = await backend.createSession({ ...sessionReq, ttlSeconds: 60 });
    fake.clearRequests();
    const k = await backend.keepalive(s.id, 300);
    const patches = fake.requests.filter((r) => r.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0]!.contentType).toBe("application/merge-patch+json");
    const pod = fake.getPod(NAMESPACE, s.id);
    expect(pod.metadata.annotations["code-interpreter.dev/expires-at-ms"]).toBe(String(k.expiresAt));
    // The labels (immutable facts) did not change.
    expect(pod.metadata.labels["code-interpreter.dev/expires-at"]).toBe(
      String(Math.floor(s.expiresAt / 1000)),
    );
    await backend.deleteSession(s.id);
  });

  it("a session whose pod ended (deadline, keeper exit) is gone: removed when found, else reaped as stopped", async () => {
    // Found on access: not found for the caller, and removed in the background (as on Docker).
    const s = await backend.createSession(sessionReq);
    const pod = fake.getPod(NAMESPACE, s.id);
    fake.injectPod({ ...pod, metadata: { ...pod.metadata, uid: undefined } }, "Failed");
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    await eventually(() => !fake.podNames().includes(s.id));
    // Not accessed: the reaper removes it, with the shared reason.
    const t = await backend.createSession(sessionReq);
    const tpod = fake.getPod(NAMESPACE, t.id);
    fake.injectPod({ ...tpod, metadata: { ...tpod.metadata, uid: undefined } }, "Failed");
    const report = await backend.reap();
    expect(report.reaped).toContainEqual({ id: t.id, reason: "stopped" });
  });

  const execPods = () =>
    fake
      .podNames()
      .filter((n) => n.startsWith("code-exec-"))
      .sort();

  it("one-shot executor pods are deleted after success and after a timeout", async () => {
    const before = execPods();
    const r = await backend.execute({ ...oneShot("print('x')"), files: [] });
    expect(r.stdout).toBe("x\n");
    const t = await backend.execute({
      ...oneShot("import time; time.sleep(30)"),
      timeoutMs: 1000,
      files: [],
    });
    expect(t.timedOut).toBe(true);
    await eventually(() => execPods().join() === before.join());
    const deletes = fake.requests.filter((q) => q.method === "DELETE" && q.path.includes("/pods/code-exec-"));
    expect(deletes.length).toBeGreaterThanOrEqual(2);
  });

  it("an aborted one-shot run is stopped and its pod deleted", async () => {
    const before = execPods();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1500);
    const r = await backend
      .execute({ ...oneShot("import time; time.sleep(30)"), timeoutMs: 20_000, signal: ac.signal, files: [] })
      .catch((e: unknown) => e as Error);
    if (!(r instanceof Error)) expect(r.exitCode).toBeNull();
    await eventually(() => execPods().join() === before.join());
  });
});

/** A live (not yet expired) session pod's input. */
function expiredSessionPodArgs() {
  return sessionPodInput(600);
}

describe("ownerReference to the API's Deployment", () => {
  let fake: FakeApiServer;
  afterAll(async () => {
    await fake?.stop();
  });

  it("sets the Deployment's uid on created pods, and fails clearly when it is missing", async () => {
    fake = await startFake();
    const dep = fake.seedDeployment(NAMESPACE, "code-interpreter-api");
    const backend = makeBackend(fake, { ownerDeployment: "code-interpreter-api" });
    const s = await backend.createSession(sessionReq);
    expect(fake.getPod(NAMESPACE, s.id).metadata.ownerReferences).toEqual([
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: "code-interpreter-api",
        uid: dep.metadata.uid,
        controller: false,
        blockOwnerDeletion: false,
      },
    ]);
    await backend.deleteSession(s.id);
    const missing = makeBackend(fake, { ownerDeployment: "gone" });
    await expect(missing.createSession(sessionReq)).rejects.toThrow(/owner Deployment "gone" not found/);
  });
});

describe("API server unreachable", () => {
  it("maps a closed port to BackendUnavailableError", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const fake = await startFake();
    const kc = fake.kubeConfig(NAMESPACE);
    await fake.stop();
    kc.clusters[0] = { ...kc.clusters[0]!, server: `http://127.0.0.1:${port}` };
    const backend = new Backend({ ...backendOptions(fake), kubeConfig: kc });
    await expect(backend.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(backend.getSession(newSessionId())).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(backend.deleteSession(newSessionId())).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(backend.listSessions()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(backend.createSession(sessionReq)).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(backend.reap()).rejects.toBeInstanceOf(BackendUnavailableError);
    const err = await backend.ping().catch((e: unknown) => e);
    expect((err as BackendUnavailableError).status).toBe(503);
  });

  it("a wrong token is a 500-class BackendError that names the credentials (not the Role)", async () => {
    const fake = await startFake({ token: "right" });
    try {
      const kc = fake.kubeConfig(NAMESPACE);
      kc.users[0] = { ...kc.users[0]!, token: "wrong" };
      const backend = new Backend({ ...backendOptions(fake), kubeConfig: kc });
      const err = await backend.ping().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as Error).message).toMatch(/HTTP 401/);
      expect((err as Error).message).toMatch(/rejected the API's credentials/);
      expect((err as Error).message).not.toMatch(/Role/);
    } finally {
      await fake.stop();
    }
  });
});
