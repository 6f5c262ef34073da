/**
 * Every refusal from the cluster is named by its real cause, from the responses the fake
 * apiserver gives the way kube-apiserver does: Pod Security admission, ServiceAccount
 * admission, RBAC, bad credentials; a full node is a capacity error (429) known from the
 * pod's PodScheduled condition within seconds, not after the ready timeout.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApiException, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { BackendError, CapacityError } from "@code-interpreter/core";
import { execCapture } from "@code-interpreter/core/backend-kit";
import {
  PodExecTransport,
  buildSessionPod,
  refusalCause,
  toCoreError,
  unschedulableError,
} from "../src/index.js";
import { FAKE_USER, type FakeApiServer } from "./fake-apiserver/server.js";
import {
  NAMESPACE,
  createRunningPod,
  eventually,
  limits,
  makeBackend,
  sessionPodInput,
  startFake,
} from "./helpers.js";

const req = { files: [], ttlSeconds: 600, idleTimeoutSeconds: null, metadata: {}, owner: null };

async function createError(fake: FakeApiServer, pod: V1Pod): Promise<unknown> {
  const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
  return core.createNamespacedPod({ namespace: NAMESPACE, body: pod }).then(
    () => null,
    (e: unknown) => e,
  );
}

describe("admission: Pod Security restricted and ServiceAccounts", () => {
  let fake: FakeApiServer;
  afterEach(async () => {
    await fake?.stop();
  });

  it("the backend's pods are admitted by a namespace enforcing restricted", async () => {
    fake = await startFake({ namespaces: { [NAMESPACE]: { podSecurity: "restricted" } } });
    const backend = makeBackend(fake);
    const s = await backend.createSession(req);
    const r = await backend.execInSession(s.id, {
      language: "python",
      code: "print(1)",
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
    });
    expect(r.stdout).toBe("1\n");
    const one = await backend.execute({
      ...{ language: "python" as const, code: "print(2)" },
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
      files: [],
    });
    expect(one.stdout).toBe("2\n");
  });

  it("a pod violating restricted gets the real 403, named as Pod Security admission", async () => {
    fake = await startFake({ namespaces: { [NAMESPACE]: { podSecurity: "restricted" } } });
    const pod = buildSessionPod(sessionPodInput(60));
    const c = pod.spec!.containers[0]!;
    c.securityContext = {
      ...c.securityContext,
      runAsUser: 0,
      allowPrivilegeEscalation: true,
      capabilities: { add: ["NET_ADMIN"] },
    };
    delete pod.spec!.securityContext!.seccompProfile;
    delete c.securityContext.seccompProfile;
    const err = await createError(fake, pod);
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(403);
    expect(refusalCause(err)).toBe("pod-security");
    const body = JSON.parse(String((err as ApiException<string>).body)) as {
      message: string;
      reason: string;
    };
    expect(body.reason).toBe("Forbidden");
    expect(body.message).toBe(
      `pods "${pod.metadata!.name}" is forbidden: violates PodSecurity "restricted:latest": ` +
        'allowPrivilegeEscalation != false (container "executor" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "executor" must set securityContext.capabilities.drop=["ALL"]; container "executor" must not include "NET_ADMIN" in securityContext.capabilities.add), ' +
        'runAsUser=0 (container "executor" must not set runAsUser=0), ' +
        'seccompProfile (pod or container "executor" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    const mapped = toCoreError(err, "create pod");
    expect(mapped).toBeInstanceOf(BackendError);
    expect(mapped.message).toMatch(/^Pod Security admission rejected the pod \(HTTP 403\)/);
    expect(mapped.message).toContain('violates PodSecurity "restricted:latest"');
    expect(mapped.message).not.toMatch(/Role/);
    expect(fake.podNames()).toEqual([]);
  });

  it("a missing ServiceAccount is named as ServiceAccount admission, through the backend", async () => {
    fake = await startFake({ namespaces: { [NAMESPACE]: { serviceAccounts: [] } } });
    const backend = makeBackend(fake);
    const err = await backend.createSession(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/^ServiceAccount admission rejected the pod \(HTTP 403\)/);
    expect((err as Error).message).toContain(
      `error looking up service account ${NAMESPACE}/default: serviceaccount "default" not found`,
    );
    expect(fake.podNames()).toEqual([]);
  });
});

describe("RBAC and credentials", () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    fake = await startFake();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("a verb the Role lacks is named as RBAC, with the authorizer's message", async () => {
    const backend = makeBackend(fake);
    const s = await backend.createSession(req);
    fake.forbid("list", "pods");
    const err = await backend.listSessions().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/^the API's Role does not allow this \(RBAC, HTTP 403\)/);
    expect((err as Error).message).toContain(
      `pods is forbidden: User "${FAKE_USER}" cannot list resource "pods" in API group "" in the namespace "${NAMESPACE}"`,
    );
    // Exec refused at the WebSocket handshake: no Status body reaches the client, still a 403.
    fake.forbid("get", "pods/exec");
    const t = new PodExecTransport(fake.kubeConfig(NAMESPACE), NAMESPACE, s.id);
    const execErr = await execCapture(t, ["true"]).catch((e: unknown) => e);
    expect(execErr).toBeInstanceOf(BackendError);
    expect((execErr as Error).message).toMatch(
      /HTTP 403; for exec: the Role needs create and get on pods\/exec/,
    );
  });

  it("classifies a ResourceQuota refusal as capacity (429)", () => {
    const quota = new ApiException(
      403,
      "Forbidden",
      JSON.stringify({
        kind: "Status",
        status: "Failure",
        reason: "Forbidden",
        code: 403,
        message:
          'pods "code-session-x" is forbidden: exceeded quota: executors, requested: limits.cpu=1, used: limits.cpu=4, limited: limits.cpu=4',
      }),
      {},
    );
    expect(refusalCause(quota)).toBe("quota");
    const mapped = toCoreError(quota, "create pod");
    expect(mapped).toBeInstanceOf(CapacityError);
    expect((mapped as CapacityError).status).toBe(429);
    expect(mapped.message).toContain("exceeded quota: executors");
  });
});

describe("capacity: CPU requests against the node's size", () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    // A 2-CPU node; pods request CPU_LIMIT (1): two fit, the third does not.
    fake = await startFake({ node: { cpu: "2", memory: "8Gi" } });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("an unschedulable pod is a CapacityError within seconds, and runs once room frees up", async () => {
    expect(limits.cpuLimit).toBe(1);
    const backend = makeBackend(fake);
    const a = await backend.createSession(req);
    await backend.createSession(req);
    const third = buildSessionPod(sessionPodInput(60));
    const name = third.metadata!.name!;
    const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
    const t0 = Date.now();
    await core.createNamespacedPod({ namespace: NAMESPACE, body: third });
    const err = await eventually(
      async () => unschedulableError(await core.readNamespacedPod({ name, namespace: NAMESPACE })),
      10_000,
      "Unschedulable condition",
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(CapacityError);
    expect(err.status).toBe(429);
    expect(err.message).toBe(
      `capacity reached: the cluster has no room for another executor pod (${name}): ` +
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
    );
    expect(fake.getPod(NAMESPACE, name).status.phase).toBe("Pending");
    // Like the scheduler's queue: once a session is deleted, the waiting pod is placed.
    await backend.deleteSession(a.id);
    await eventually(
      () => fake.getPod(NAMESPACE, name)?.status?.phase === "Running",
      30_000,
      "third pod running",
    );
    await core.deleteNamespacedPod({ name, namespace: NAMESPACE });
  });

  it("a pod that can never be placed (not a capacity problem) is a BackendError naming the scheduler", () => {
    const pod: V1Pod = {
      metadata: { name: "code-session-x" },
      status: {
        phase: "Pending",
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
          },
        ],
      },
    };
    const err = unschedulableError(pod);
    expect(err).toBeInstanceOf(BackendError);
    expect(err).not.toBeInstanceOf(CapacityError);
    expect(err!.message).toContain("didn't match Pod's node affinity/selector");
    expect(unschedulableError({ status: { phase: "Pending" } })).toBeNull();
  });

  it("requests default to limits (apiserver defaulting), so a pod with limits only is counted", async () => {
    const pod = buildSessionPod(sessionPodInput(60));
    delete pod.spec!.containers[0]!.resources!.requests;
    // One session holds 1 of the 2 CPUs: this pod (1 CPU by its limit) fits, and runs.
    const running = await createRunningPod(fake, pod);
    expect(running.spec!.containers[0]!.resources!.requests).toEqual(
      running.spec!.containers[0]!.resources!.limits,
    );
    // A further one does not: its defaulted request counts too.
    const extra = buildSessionPod(sessionPodInput(60));
    delete extra.spec!.containers[0]!.resources!.requests;
    const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
    await core.createNamespacedPod({ namespace: NAMESPACE, body: extra });
    const name = extra.metadata!.name!;
    await eventually(
      async () => unschedulableError(await core.readNamespacedPod({ name, namespace: NAMESPACE })),
      10_000,
    );
  });
});
