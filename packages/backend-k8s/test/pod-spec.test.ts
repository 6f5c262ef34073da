import { describe, expect, it } from "vitest";
import {
  LABEL_REAP_AFTER,
  isDns1123Label,
  newExecutorName,
  newLifetime,
  newSessionId,
  sessionTags,
} from "@code-interpreter/core/backend-kit";
import {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_LAST_ACTIVE_AT,
  buildExecutorPod,
  buildSessionPod,
  cpuQuantity,
  sessionFromPod,
  type PodSpecOptions,
} from "../src/index.js";
import { validateObject } from "./fake-apiserver/validate.js";
import { limits } from "./helpers.js";

const base: PodSpecOptions = {
  namespace: "sandbox",
  image: "registry.example/executor:1.2.3",
  imagePullPolicy: "Always",
  limits: { ...limits, cpuLimit: 0.5, memoryLimitMb: 512, workspaceSizeMb: 300, tmpSizeMb: 32 },
};
const now = Date.UTC(2030, 0, 1, 12, 0, 0, 500);
const MAX_LIFETIME = 86_400;

function sessionPod(extra: Partial<PodSpecOptions> = {}, owner: string | null = "f".repeat(32)) {
  const lifetime = newLifetime(now, 600, MAX_LIFETIME, 300);
  const tags = sessionTags(lifetime, { owner, metadata: { chat_id: "x".repeat(200), "weird key": "ü" } });
  return { lifetime, pod: buildSessionPod({ ...base, ...extra, name: newSessionId(), lifetime, ...tags }) };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pods mutated as plain JSON
type Obj = Record<string, any>;

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("buildSessionPod", () => {
  it("is a valid Pod per the Kubernetes schema and apiserver rules", () => {
    expect(validateObject(sessionPod().pod)).toBeNull();
    expect(
      validateObject(
        sessionPod({ networkLockdown: true, owner: { name: "api", uid: "u-1" }, runtimeClass: "gvisor" }).pod,
      ),
    ).toBeNull();
  });

  it("has a DNS-1123 name and valid labels", () => {
    const { pod } = sessionPod();
    const name = pod.metadata!.name!;
    expect(name).toMatch(/^code-session-[0-9a-f-]{36}$/);
    expect(isDns1123Label(name)).toBe(true);
    expect(pod.metadata!.namespace).toBe("sandbox");
    expect(pod.metadata!.labels).toMatchObject({ app: "code-interpreter", component: "session" });
    for (const [k, v] of Object.entries(pod.metadata!.labels!)) {
      expect(v.length, k).toBeLessThanOrEqual(63);
      expect(LABEL_VALUE.test(v), `${k}=${v}`).toBe(true);
    }
    // Free-form metadata is an annotation, never a label.
    expect(Object.values(pod.metadata!.labels!).join()).not.toContain("xxxx");
  });

  it("keeps expiry and last activity in annotations and reads back", () => {
    const { pod, lifetime } = sessionPod();
    expect(pod.metadata!.annotations![ANNOTATION_EXPIRES_AT]).toBe(String(lifetime.expiresAt));
    expect(pod.metadata!.annotations![ANNOTATION_LAST_ACTIVE_AT]).toBe(String(lifetime.createdAt));
    const info = sessionFromPod({ ...pod, status: { phase: "Running" } })!;
    expect(info).toMatchObject({
      id: pod.metadata!.name,
      status: "running",
      createdAt: lifetime.createdAt,
      expiresAt: lifetime.expiresAt,
      maxExpiresAt: lifetime.maxExpiresAt,
      idleTimeoutSeconds: 300,
      owner: "f".repeat(32),
      metadata: { chat_id: "x".repeat(200), "weird key": "ü" },
    });
  });

  it("applies the restricted security context everywhere", () => {
    const spec = sessionPod().pod.spec!;
    expect(spec.restartPolicy).toBe("Never");
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.hostNetwork).toBe(false);
    expect(spec.hostPID).toBe(false);
    expect(spec.hostIPC).toBe(false);
    expect(spec.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(spec.containers).toHaveLength(1);
    const c = spec.containers[0]!;
    expect(c.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.image).toBe("registry.example/executor:1.2.3");
    expect(c.imagePullPolicy).toBe("Always");
  });

  it("sets activeDeadlineSeconds to the session's lifetime and runs the keeper to the hard deadline", () => {
    const { pod, lifetime } = sessionPod();
    expect(pod.spec!.activeDeadlineSeconds).toBe(MAX_LIFETIME);
    expect(pod.spec!.activeDeadlineSeconds).toBe((lifetime.maxExpiresAt - lifetime.createdAt) / 1000);
    const cmd = pod.spec!.containers[0]!.command!;
    expect(cmd.slice(0, 2)).toEqual(["python3", "-c"]);
    // statePath "-", hard deadline, expiry = hard deadline, no idle, createdAt
    expect(cmd.slice(3)).toEqual([
      "-",
      String(lifetime.maxExpiresAt),
      String(lifetime.maxExpiresAt),
      "0",
      String(lifetime.createdAt),
    ]);
  });

  it("mounts size-limited emptyDirs for /workspace and /tmp and sets resources from config", () => {
    const spec = sessionPod().pod.spec!;
    expect(spec.volumes).toEqual([
      { name: "workspace", emptyDir: { sizeLimit: "300Mi" } },
      { name: "tmp", emptyDir: { sizeLimit: "32Mi" } },
    ]);
    const c = spec.containers[0]!;
    expect(c.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/workspace" },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(c.resources).toEqual({
      requests: { cpu: "500m", memory: "512Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    });
    expect(cpuQuantity(2)).toBe("2");
    expect(cpuQuantity(0.25)).toBe("250m");
  });

  it("adds an ownerReference, runtime class and lockdown init container only when configured", () => {
    const plain = sessionPod().pod;
    expect(plain.metadata!.ownerReferences).toBeUndefined();
    expect(plain.spec!.initContainers).toBeUndefined();
    expect(plain.spec!.runtimeClassName).toBeUndefined();

    const full = sessionPod({
      owner: { name: "code-interpreter-api", uid: "uid-1" },
      networkLockdown: true,
      runtimeClass: "gvisor",
    }).pod;
    expect(full.metadata!.ownerReferences).toEqual([
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: "code-interpreter-api",
        uid: "uid-1",
        controller: false,
        blockOwnerDeletion: false,
      },
    ]);
    expect(full.spec!.runtimeClassName).toBe("gvisor");
    const init = full.spec!.initContainers!;
    expect(init).toHaveLength(1);
    expect(init[0]!.name).toBe("network-lockdown");
    expect(init[0]!.securityContext!.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN"] });
    expect(init[0]!.securityContext!.allowPrivilegeEscalation).toBe(false);
    expect(init[0]!.command!.join(" ")).toContain("OUTPUT DROP");
    // The main container is unchanged by the flag.
    expect(full.spec!.containers[0]!.securityContext!.capabilities).toEqual({ drop: ["ALL"] });
  });
});

describe("buildExecutorPod", () => {
  const pod = buildExecutorPod({
    ...base,
    name: newExecutorName(),
    now,
    timeoutMs: 30_000,
    podReadyTimeoutSec: 60,
  });

  it("is a valid, restricted executor pod with the reap-after label", () => {
    expect(validateObject(pod)).toBeNull();
    expect(pod.metadata!.name).toMatch(/^code-exec-[0-9a-f-]{36}$/);
    expect(pod.metadata!.labels).toMatchObject({ app: "code-interpreter", component: "executor" });
    const reapAfter = Number(pod.metadata!.labels![LABEL_REAP_AFTER]) * 1000;
    expect(reapAfter).toBeGreaterThan(now + 30_000 + 60_000);
    expect(pod.metadata!.annotations![LABEL_REAP_AFTER]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(pod.spec!.restartPolicy).toBe("Never");
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.spec!.activeDeadlineSeconds).toBe(60 + 30 + 60);
    expect(pod.spec!.containers[0]!.securityContext!.readOnlyRootFilesystem).toBe(true);
  });
});

describe("the fake apiserver's validator rejects what a real apiserver would", () => {
  const good = () => structuredClone(sessionPod().pod) as Obj;

  it.each([
    ["an uppercase name", (p: Obj) => (p.metadata.name = "Code-Session"), "metadata.name"],
    ["a label value over 63 chars", (p: Obj) => (p.metadata.labels.x = "a".repeat(64)), "metadata.labels"],
    ["a label value with spaces", (p: Obj) => (p.metadata.labels.x = "a b"), "metadata.labels"],
    ["no containers", (p: Obj) => (p.spec.containers = []), "spec.containers"],
    [
      "a string runAsUser",
      (p: Obj) => (p.spec.securityContext.runAsUser = "65532"),
      "spec.securityContext.runAsUser",
    ],
    [
      "requests above limits",
      (p: Obj) => (p.spec.containers[0].resources.requests.memory = "1Gi"),
      "resources.requests",
    ],
    ["a bad quantity", (p: Obj) => (p.spec.volumes[0].emptyDir.sizeLimit = "lots"), "sizeLimit"],
    [
      "a mount of an unknown volume",
      (p: Obj) => (p.spec.containers[0].volumeMounts[0].name = "nope"),
      "volumeMounts[0].name",
    ],
    ["an unknown restartPolicy", (p: Obj) => (p.spec.restartPolicy = "Sometimes"), "spec.restartPolicy"],
    ["a zero activeDeadlineSeconds", (p: Obj) => (p.spec.activeDeadlineSeconds = 0), "activeDeadlineSeconds"],
  ])("rejects %s", (_what, mutate, field) => {
    const p = good();
    mutate(p);
    const status = validateObject(p);
    expect(status?.code).toBe(422);
    expect(status?.reason).toBe("Invalid");
    expect(status?.details?.causes?.some((c) => c.field.includes(field))).toBe(true);
  });
});
