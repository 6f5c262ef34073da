/**
 * startPod: what the session code's create path does on a cluster. A full node answers a
 * CapacityError (429) within seconds and leaves no pod; every other failed start also
 * deletes its pod; a pod that runs is returned.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CoreV1Api } from "@kubernetes/client-node";
import { BackendError, CapacityError } from "@code-interpreter/core";
import { buildSessionPod, startPod } from "../src/index.js";
import type { FakeApiServer, FakeApiServerOptions } from "./fake-apiserver/server.js";
import { NAMESPACE, eventually, sessionPodInput, startFake } from "./helpers.js";

let fake: FakeApiServer | undefined;
afterEach(async () => {
  await fake?.stop();
  fake = undefined;
});

async function setup(opts: FakeApiServerOptions = {}) {
  fake = await startFake(opts);
  const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
  return { fake, core, o: { core, namespace: NAMESPACE, timeoutMs: 30_000, pollIntervalMs: 100 } };
}

describe("startPod", () => {
  it("returns the running pod", async () => {
    const { o } = await setup();
    const pod = await startPod(buildSessionPod(sessionPodInput(600)), o);
    expect(pod.status?.phase).toBe("Running");
  });

  it("a full node: CapacityError (429) within seconds, and no pod left", async () => {
    const { fake, o } = await setup({ node: { cpu: "1" } });
    await startPod(buildSessionPod(sessionPodInput(600)), o);
    const t0 = Date.now();
    const err = await startPod(buildSessionPod(sessionPodInput(600)), o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect((err as CapacityError).status).toBe(429);
    expect((err as Error).message).toContain("Insufficient cpu");
    // Answered from the pod's condition, far inside the 30 s ready timeout.
    expect(Date.now() - t0).toBeLessThan(10_000);
    await eventually(() => fake.podNames(NAMESPACE).length === 1, 30_000, "the unschedulable pod deleted");
  });

  it("an image that cannot be pulled fails fast naming it, and leaves no pod", async () => {
    const { fake, o } = await setup();
    const pod = buildSessionPod({ ...sessionPodInput(600), image: "registry.invalid/nope:1" });
    const err = await startPod(pod, o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toContain('image "registry.invalid/nope:1" could not be pulled');
    await eventually(() => fake.podNames(NAMESPACE).length === 0, 30_000, "pod deleted");
  });

  it("a pod still pending at the timeout: BackendError saying where it is, and no pod left", async () => {
    const { fake, o } = await setup({ behavior: () => "pending" });
    const err = await startPod(buildSessionPod(sessionPodInput(600)), { ...o, timeoutMs: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(
      /was not running after 1s \(phase Pending; executor waiting: ContainerCreating\)/,
    );
    await eventually(() => fake.podNames(NAMESPACE).length === 0, 30_000, "pod deleted");
  });

  it("a cancelled start deletes the pod", async () => {
    const { fake, o } = await setup({ behavior: () => "pending" });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await startPod(buildSessionPod(sessionPodInput(600)), { ...o, signal: ac.signal }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/cancelled while the pod was starting/);
    await eventually(() => fake.podNames(NAMESPACE).length === 0, 30_000, "pod deleted");
  });
});
