/**
 * What a node does to pods, on the fake made faithful: the workspace limit (memory-backed
 * emptyDir → ENOSPC at write time, the session lives) against a disk-backed emptyDir (the
 * write succeeds and the kubelet evicts the pod later), ownerReference garbage collection,
 * pod IPs from a documentation range, and activeDeadlineSeconds that can only be lowered.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { execCapture } from "@code-interpreter/core/backend-kit";
import { PodExecTransport, buildSessionPod, type KubernetesBackend } from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import {
  NAMESPACE,
  createRunningPod,
  eventually,
  limits,
  makeBackend,
  sessionPodInput,
  sleep,
  startFake,
} from "./helpers.js";

const req = { files: [], ttlSeconds: 600, idleTimeoutSeconds: null, metadata: {}, owner: null };
const small = { ...limits, workspaceSizeMb: 16, tmpSizeMb: 16 };
/** Writes 40 MB into /workspace in 1 MB chunks and reports how far it got. */
const WRITE_40MB = [
  "import os, errno",
  "n = 0",
  "try:",
  "    with open('big.bin', 'wb') as f:",
  "        for _ in range(40):",
  "            f.write(b'x' * (1 << 20)); f.flush(); n += 1",
  "    print('wrote', n)",
  "except OSError as e:",
  "    print('stopped at', n, errno.errorcode[e.errno])",
].join("\n");

describe("the workspace limit on a node", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  beforeAll(async () => {
    fake = await startFake({ evictionIntervalMs: 300 });
    backend = makeBackend(fake, { limits: small });
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("a write past WORKSPACE_SIZE_MB fails with ENOSPC at once and the session lives on", async () => {
    const s = await backend.createSession(req);
    const pod = fake.getPod(NAMESPACE, s.id);
    expect(pod.spec.volumes[0]).toEqual({
      name: "workspace",
      emptyDir: { medium: "Memory", sizeLimit: "16Mi" },
    });
    const r = await backend.execInSession(s.id, {
      language: "python",
      code: WRITE_40MB,
      timeoutMs: 20_000,
      maxOutputBytes: 10_000,
    });
    expect(r.stdout).toMatch(/^stopped at 1[0-6] ENOSPC\n$/);
    // Several eviction rounds later the pod still runs and the session answers.
    await sleep(1500);
    expect(fake.getPod(NAMESPACE, s.id).status.phase).toBe("Running");
    const again = await backend.execInSession(s.id, {
      language: "bash",
      code: "rm big.bin && echo ok",
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
    });
    expect(again.stdout).toBe("ok\n");
    expect((await backend.getSession(s.id)).status).toBe("running");
  });

  it("a disk-backed emptyDir accepts the write, and the kubelet evicts the pod some time later", async () => {
    // What the pods looked like before (and what a cluster does with them).
    const pod = buildSessionPod({ ...sessionPodInput(600), limits: small });
    pod.spec!.volumes = pod.spec!.volumes!.map((v) =>
      v.emptyDir ? { name: v.name, emptyDir: { sizeLimit: v.emptyDir.sizeLimit! } } : v,
    );
    const name = pod.metadata!.name!;
    await createRunningPod(fake, pod);
    const t = new PodExecTransport(fake.kubeConfig(NAMESPACE), NAMESPACE, name);
    const r = await execCapture(t, ["python3", "-c", `import os\nos.chdir('/workspace')\n${WRITE_40MB}`]);
    expect(r.stdout.toString()).toBe("wrote 40\n");
    expect(r.exitCode).toBe(0);
    const status = await eventually(() => {
      const st = fake.getPod(NAMESPACE, name).status;
      return st.phase === "Failed" ? st : null;
    });
    expect(status.reason).toBe("Evicted");
    expect(status.message).toBe('Usage of EmptyDir volume "workspace" exceeds the limit "16Mi". ');
    expect(status.containerStatuses[0].state.terminated.exitCode).toBe(137);
  });
});

describe("node bookkeeping", () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    fake = await startFake();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("deleting the owner Deployment garbage-collects the pods it owns, and only those", async () => {
    fake.seedDeployment(NAMESPACE, "code-interpreter-api");
    const owned = makeBackend(fake, { ownerDeployment: "code-interpreter-api" });
    const free = makeBackend(fake);
    const a = await owned.createSession(req);
    const b = await free.createSession(req);
    expect(fake.deleteDeployment(NAMESPACE, "code-interpreter-api")).toBe(true);
    await eventually(() => !fake.podNames(NAMESPACE).includes(a.id), 30_000, "owned pod collected");
    expect(fake.podNames(NAMESPACE)).toContain(b.id);
    await free.deleteSession(b.id);
  });

  it("pod IPs come from TEST-NET-1, never a private range", async () => {
    const backend = makeBackend(fake);
    const s = await backend.createSession(req);
    const ip = fake.getPod(NAMESPACE, s.id).status.podIP as string;
    expect(ip).toMatch(/^192\.0\.2\.\d{1,3}$/);
    expect(ip).not.toMatch(/^(10\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.)/);
    await backend.deleteSession(s.id);
  });

  it("activeDeadlineSeconds of a running pod can be lowered (the kubelet honours it) but never raised", async () => {
    const input = sessionPodInput(600);
    const pod = await createRunningPod(fake, buildSessionPod(input));
    const name = pod.metadata!.name!;
    const core = fake.kubeConfig(NAMESPACE).makeApiClient(CoreV1Api);
    const patch = (ads: number) =>
      core.patchNamespacedPod(
        { name, namespace: NAMESPACE, body: { spec: { activeDeadlineSeconds: ads } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    const raised = await patch(7200).catch((e: unknown) => e);
    expect(raised).toBeInstanceOf(ApiException);
    expect((raised as ApiException<unknown>).code).toBe(422);
    expect(String((raised as ApiException<string>).body)).toContain(
      "must be less than or equal to previous value",
    );
    await patch(1);
    const status = await eventually(() => {
      const st = fake.getPod(NAMESPACE, name).status;
      return st.phase === "Failed" ? st : null;
    });
    expect(status.reason).toBe("DeadlineExceeded");
  });
});
