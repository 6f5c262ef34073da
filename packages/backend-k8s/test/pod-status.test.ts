/**
 * podStartError on the statuses the fake kubelet and scheduler write (read back through the
 * real client): the start-up poll learns at once that a pod will never run, and why.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { BackendError, CapacityError } from "@code-interpreter/core";
import { buildSessionPod, describePending, podStartError } from "../src/index.js";
import type { FakeApiServer, FakeApiServerOptions } from "./fake-apiserver/server.js";
import { IMAGE, NAMESPACE, eventually, sessionPodInput, startFake } from "./helpers.js";

async function firstError(opts: FakeApiServerOptions, mutate: (p: V1Pod) => void = () => undefined) {
  fake = await startFake(opts);
  const pod = buildSessionPod(sessionPodInput(600));
  mutate(pod);
  const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
  await core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
  const name = pod.metadata!.name!;
  return eventually(
    async () => podStartError(await core.readNamespacedPod({ name, namespace: NAMESPACE }), IMAGE),
    15_000,
    "a start error",
  );
}

let fake: FakeApiServer | undefined;
afterEach(async () => {
  await fake?.stop();
  fake = undefined;
});

describe("podStartError", () => {
  it("a full node: CapacityError (429) naming the scheduler's message", async () => {
    const err = await firstError({ node: { cpu: "500m" } });
    expect(err).toBeInstanceOf(CapacityError);
    expect(err.message).toContain("Insufficient cpu");
  });

  it("an image that cannot be pulled: BackendError naming the image", async () => {
    const err = await firstError({}, (p) => (p.spec!.containers[0]!.image = "registry.invalid/x:1"));
    expect(err).toBeInstanceOf(BackendError);
    expect(err.message).toMatch(/image "registry.invalid\/x:1" could not be pulled \(ErrImagePull/);
  });

  it("an evicted pod: ended before it was ready, with the kubelet's reason", () => {
    const err = podStartError(
      {
        metadata: { name: "p" },
        status: { phase: "Failed", reason: "Evicted", message: "Usage of EmptyDir" },
      },
      IMAGE,
    );
    expect(err?.message).toBe("pod p ended before it was ready (phase Failed, Evicted: Usage of EmptyDir)");
  });

  it("a pod on its way: null, and describePending says where it is", () => {
    const pending: V1Pod = {
      status: {
        phase: "Pending",
        containerStatuses: [
          {
            name: "executor",
            image: IMAGE,
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "ContainerCreating" } },
          },
        ],
      },
    };
    expect(podStartError(pending, IMAGE)).toBeNull();
    expect(describePending(pending)).toBe("phase Pending; executor waiting: ContainerCreating");
  });
});
