import { describe, expect, it } from "vitest";
import { ValidationError } from "@code-interpreter/core";
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
  DEFAULT_KEEPER_SLACK_SECONDS,
  KEEPER_STATE_ARG,
  KEEPER_STATE_DIR,
  KEEPER_STATE_PATH,
  buildExecutorPod,
  buildSessionPod,
  cpuQuantity,
  podMemoryLimitMb,
  sessionFromPod,
  type PodSpecOptions,
} from "../src/index.js";
import { validateObject } from "./fake-apiserver/validate.js";
import { podSecurityViolations } from "./fake-apiserver/admission.js";
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
        sessionPod({ cpuRequest: 0.1, owner: { name: "api", uid: "u-1" }, runtimeClass: "gvisor" }).pod,
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

  it("sets activeDeadlineSeconds to the hard cap and runs the keeper to the TTL and idle deadline", () => {
    const { pod, lifetime } = sessionPod();
    // The kubelet's backstop stays the hard cap: a running pod's deadline can only be lowered.
    expect(pod.spec!.activeDeadlineSeconds).toBe(MAX_LIFETIME);
    expect(pod.spec!.activeDeadlineSeconds).toBe((lifetime.maxExpiresAt - lifetime.createdAt) / 1000);
    const cmd = pod.spec!.containers[0]!.command!;
    expect(cmd.slice(0, 4)).toEqual(["python3", "-I", "-S", "-c"]);
    // the annotations file, hard deadline, expiry, idle, createdAt, slack
    expect(cmd.slice(5)).toEqual([
      `annotations:${KEEPER_STATE_PATH}`,
      String(lifetime.maxExpiresAt),
      String(lifetime.expiresAt),
      "300",
      String(lifetime.createdAt),
      String(DEFAULT_KEEPER_SLACK_SECONDS),
    ]);
    expect(KEEPER_STATE_ARG).toBe(`annotations:${KEEPER_STATE_PATH}`);
  });

  it("gives the keeper the layer's idle timeout (with its activity slack) and the configured slack", () => {
    const lifetime = newLifetime(now, 20, MAX_LIFETIME, 30);
    const tags = sessionTags(lifetime, { owner: null, metadata: {} });
    const pod = buildSessionPod({
      ...base,
      name: newSessionId(),
      lifetime,
      ...tags,
      keeperIdleTimeoutSeconds: 38,
      keeperSlackSeconds: 5,
    });
    expect(validateObject(pod)).toBeNull();
    expect(pod.spec!.containers[0]!.command!.slice(5)).toEqual([
      KEEPER_STATE_ARG,
      String(lifetime.maxExpiresAt),
      String(lifetime.expiresAt),
      "38",
      String(lifetime.createdAt),
      "5",
    ]);
  });

  it("mounts memory-backed emptyDirs sized by config inside MEMORY_LIMIT_MB, and the annotations read-only", () => {
    const spec = sessionPod().pod.spec!;
    expect(spec.volumes).toEqual([
      { name: "workspace", emptyDir: { medium: "Memory", sizeLimit: "300Mi" } },
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "32Mi" } },
      {
        name: "podinfo",
        downwardAPI: {
          defaultMode: 0o444,
          items: [{ path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } }],
        },
      },
    ]);
    const c = spec.containers[0]!;
    expect(c.volumeMounts).toEqual([
      { name: "workspace", mountPath: "/workspace" },
      { name: "tmp", mountPath: "/tmp" },
      { name: "podinfo", mountPath: KEEPER_STATE_DIR, readOnly: true },
    ]);
    // The same rule as Docker: the memory limit is MEMORY_LIMIT_MB, the tmpfs live inside it.
    expect(podMemoryLimitMb(base.limits)).toBe(512);
    expect(c.resources).toEqual({
      requests: { cpu: "500m", memory: "512Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    });
    expect(cpuQuantity(2)).toBe("2");
    expect(cpuQuantity(0.25)).toBe("250m");
  });

  it("requests less CPU than its limit when cpuRequest says so (never more)", () => {
    expect(sessionPod({ cpuRequest: 0.1 }).pod.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: "100m", memory: "512Mi" },
      limits: { cpu: "500m", memory: "512Mi" },
    });
    expect(sessionPod({ cpuRequest: 4 }).pod.spec!.containers[0]!.resources!.requests!.cpu).toBe("500m");
  });

  it("refuses tmpfs sizes that do not leave a quarter of the memory limit (one rule with Docker)", () => {
    const l = { ...base.limits, memoryLimitMb: 512, workspaceSizeMb: 384, tmpSizeMb: 1 };
    expect(() => sessionPod({ limits: l })).toThrow(ValidationError);
    expect(() => sessionPod({ limits: l })).toThrow(/at most 384 MB of the 512 MB/);
    expect(() => sessionPod({ limits: { ...l, workspaceSizeMb: 383 } })).not.toThrow();
  });

  it("adds an ownerReference and runtime class only when configured", () => {
    const plain = sessionPod().pod;
    expect(plain.metadata!.ownerReferences).toBeUndefined();
    expect(plain.spec!.initContainers).toBeUndefined();
    expect(plain.spec!.runtimeClassName).toBeUndefined();

    const full = sessionPod({
      owner: { name: "code-interpreter-api", uid: "uid-1" },
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
    expect(full.spec!.initContainers).toBeUndefined();
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

describe("Pod Security", () => {
  it("session (with its downwardAPI volume) and executor pods pass restricted", () => {
    const executor = buildExecutorPod({
      ...base,
      name: newExecutorName(),
      now,
      timeoutMs: 1000,
      podReadyTimeoutSec: 60,
    });
    for (const pod of [sessionPod().pod, executor]) {
      expect(podSecurityViolations(pod.spec, "restricted")).toEqual([]);
    }
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

describe("the fake's Pod Security messages (shapes of kube-apiserver's)", () => {
  it("baseline: non-default capabilities, host namespaces, hostPath volumes, privileged", () => {
    const spec = {
      hostNetwork: true,
      volumes: [{ name: "dev", hostPath: { path: "/dev" } }],
      containers: [
        {
          name: "a",
          securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN", "NET_ADMIN"] } },
        },
      ],
    };
    expect(podSecurityViolations(spec, "baseline")).toEqual([
      'non-default capabilities (container "a" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add)',
      "host namespaces (hostNetwork=true)",
      'hostPath volumes (volume "dev")',
      'privileged (container "a" must not set securityContext.privileged=true)',
    ]);
  });

  it("restricted replaces the baseline capability and volume checks with its own", () => {
    const spec = {
      volumes: [{ name: "dev", hostPath: { path: "/dev" } }],
      containers: [{ name: "a", securityContext: { capabilities: { add: ["NET_ADMIN"] } } }, { name: "b" }],
    };
    expect(podSecurityViolations(spec, "restricted")).toEqual([
      'allowPrivilegeEscalation != false (containers "a", "b" must set securityContext.allowPrivilegeEscalation=false)',
      'unrestricted capabilities (containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; container "a" must not include "NET_ADMIN" in securityContext.capabilities.add)',
      'restricted volume types (volume "dev" uses restricted volume type "hostPath")',
      'runAsNonRoot != true (pod or containers "a", "b" must set securityContext.runAsNonRoot=true)',
      'seccompProfile (pod or containers "a", "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
  });
});
