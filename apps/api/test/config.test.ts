import { describe, expect, it } from "vitest";
import { ValidationError, assertExecutorLimits, executorLimitsProblem } from "@code-interpreter/core";
import { ConfigError, executorLimits, loadConfig } from "../src/config.js";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`);
}

describe("loadConfig defaults", () => {
  it("an empty environment gives the documented defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      executorBackend: "docker",
      executorImage: "code-interpreter-executor:latest",
      host: "0.0.0.0",
      port: 8000,
      apiKeys: [],
      logLevel: "info",
      maxExecTimeoutMs: 60_000,
      defaultExecTimeoutMs: 2_000,
      maxOutputBytes: 1_000_000,
      memoryLimitMb: 256,
      cpuLimit: 1,
      pidsLimit: 128,
      fileStorageDir: "/tmp/code-interpreter-files",
      fileServiceUrl: undefined,
      maxFileSizeBytes: 100 * 1024 * 1024,
      fileTtlSec: 3600,
      maxSessions: 100,
      warmPool: { size: 2, maxAgeSeconds: 600, maxTotal: 102 },
      sessionMaxLifetimeSeconds: 86_400,
      dockerHost: undefined,
      kubernetes: {
        namespace: "default",
        imagePullPolicy: "IfNotPresent",
        podReadyTimeoutSec: 60,
        ownerDeployment: undefined,
        requestTimeoutMs: 10_000,
        runtimeClass: undefined,
      },
    });
  });

  it("warm pool settings: size, max age, and the cap of pool + sessions", () => {
    expect(loadConfig({ WARM_POOL_SIZE: "0" }).warmPool).toEqual({
      size: 0,
      maxAgeSeconds: 600,
      maxTotal: 100,
    });
    expect(loadConfig({ MAX_SESSIONS: "0" }).warmPool.maxTotal).toBe(0);
    expect(
      loadConfig({ WARM_POOL_SIZE: "5", WARM_POOL_MAX_AGE_SECONDS: "120", MAX_TOTAL_EXECUTORS: "50" })
        .warmPool,
    ).toEqual({ size: 5, maxAgeSeconds: 120, maxTotal: 50 });
    expect(configError({ WARM_POOL_SIZE: "-1" }).issues[0]).toMatch(/^WARM_POOL_SIZE: /);
    expect(configError({ WARM_POOL_MAX_AGE_SECONDS: "5" }).issues[0]).toMatch(/^WARM_POOL_MAX_AGE_SECONDS: /);
  });

  it("empty and blank variables count as unset", () => {
    const c = loadConfig({ PORT: "", MEMORY_LIMIT_MB: "   ", EXECUTOR_BACKEND: "" });
    expect(c.port).toBe(8000);
    expect(c.memoryLimitMb).toBe(256);
    expect(c.executorBackend).toBe("docker");
  });

  it("ignores unrelated variables", () => {
    expect(() => loadConfig({ PATH: "/usr/bin", HOME: "/root", SOMETHING: "x" })).not.toThrow();
  });

  it("reads set values, trimming numbers", () => {
    const c = loadConfig({
      EXECUTOR_BACKEND: "kubernetes",
      PORT: " 9000 ",
      CPU_LIMIT: "0.5",
      MAX_FILE_SIZE_MB: "1.5",
      FILE_SERVICE_URL: "http://files:8000",
      KUBERNETES_REQUEST_TIMEOUT_MS: " 2500 ",
      KUBERNETES_IMAGE_PULL_POLICY: "Always",
    });
    expect(c.executorBackend).toBe("kubernetes");
    expect(c.port).toBe(9000);
    expect(c.cpuLimit).toBe(0.5);
    expect(c.maxFileSizeBytes).toBe(Math.floor(1.5 * 1024 * 1024));
    expect(c.fileServiceUrl).toBe("http://files:8000");
    expect(c.kubernetes.requestTimeoutMs).toBe(2500);
    expect(c.kubernetes.imagePullPolicy).toBe("Always");
  });

  it("executorLimits copies the executor limits", () => {
    const c = loadConfig({ MEMORY_LIMIT_MB: "512", PIDS_LIMIT: "64" });
    expect(executorLimits(c)).toEqual({
      memoryLimitMb: 512,
      cpuLimit: 1,
      cpuTimeLimitSec: 5,
      pidsLimit: 64,
      workspaceSizeMb: 256,
      tmpSizeMb: 64,
    });
  });
});

describe("tmpfs sizes fit the memory limit", () => {
  it("defaults to half and an eighth of the memory limit", () => {
    const c = loadConfig({});
    expect([c.memoryLimitMb, c.workspaceSizeMb, c.tmpSizeMb]).toEqual([256, 128, 32]);
    const small = loadConfig({ MEMORY_LIMIT_MB: "128" });
    expect([small.workspaceSizeMb, small.tmpSizeMb]).toEqual([64, 16]);
    expect(executorLimitsProblem(executorLimits(c))).toBeNull();
  });

  it("rejects sizes that leave less than a quarter of the memory to processes", () => {
    const err = configError({ MEMORY_LIMIT_MB: "256", WORKSPACE_SIZE_MB: "512" });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatch(/^WORKSPACE_SIZE_MB, TMP_SIZE_MB, MEMORY_LIMIT_MB: .*at most 192 MB/);
    expect(() =>
      loadConfig({ MEMORY_LIMIT_MB: "256", WORKSPACE_SIZE_MB: "160", TMP_SIZE_MB: "32" }),
    ).not.toThrow();
    expect(() => loadConfig({ MEMORY_LIMIT_MB: "256", WORKSPACE_SIZE_MB: "160", TMP_SIZE_MB: "33" })).toThrow(
      ConfigError,
    );
  });

  it("assertExecutorLimits is the same check for backends built without loadConfig", () => {
    const l = executorLimits(loadConfig({}));
    expect(() => assertExecutorLimits(l)).not.toThrow();
    expect(() => assertExecutorLimits({ ...l, workspaceSizeMb: 512 })).toThrow(ValidationError);
  });
});

describe("loadConfig API_KEYS", () => {
  it.each([
    ["k1", ["k1"]],
    ["k1,k2", ["k1", "k2"]],
    [" k1 , k2 ,, k3 ,", ["k1", "k2", "k3"]],
    [",", []],
  ])("%j → %j", (v, keys) => {
    expect(loadConfig({ API_KEYS: v }).apiKeys).toEqual(keys);
  });
});

describe("loadConfig timeouts", () => {
  it("DEFAULT_EXEC_TIMEOUT_MS is clamped to MAX_EXEC_TIMEOUT_MS", () => {
    const c = loadConfig({ MAX_EXEC_TIMEOUT_MS: "1000", DEFAULT_EXEC_TIMEOUT_MS: "5000" });
    expect(c.maxExecTimeoutMs).toBe(1000);
    expect(c.defaultExecTimeoutMs).toBe(1000);
  });

  it("the default default is clamped too when the maximum is lowered", () => {
    expect(loadConfig({ MAX_EXEC_TIMEOUT_MS: "500" }).defaultExecTimeoutMs).toBe(500);
  });

  it("a default below the maximum is kept", () => {
    const c = loadConfig({ MAX_EXEC_TIMEOUT_MS: "10000", DEFAULT_EXEC_TIMEOUT_MS: "3000" });
    expect(c.defaultExecTimeoutMs).toBe(3000);
  });
});

describe("loadConfig rejects bad values, naming the variable", () => {
  it.each([
    ["PORT", "abc"],
    ["PORT", "65536"],
    ["PORT", "80.5"],
    ["PORT", "-1"],
    ["MEMORY_LIMIT_MB", "-1"],
    ["MEMORY_LIMIT_MB", "8"],
    ["MEMORY_LIMIT_MB", "1e3"],
    ["EXECUTOR_BACKEND", "podman"],
    ["EXECUTOR_BACKEND", "Docker"],
    ["KUBERNETES_REQUEST_TIMEOUT_MS", "0"],
    ["KUBERNETES_REQUEST_TIMEOUT_MS", "1.5"],
    ["LOG_LEVEL", "verbose"],
    ["CPU_LIMIT", "0"],
    ["CPU_LIMIT", "-1"],
    ["MAX_FILE_SIZE_MB", "0"],
    ["FILE_TTL_SEC", "0"],
    ["MAX_EXEC_TIMEOUT_MS", "0"],
    ["FILE_SERVICE_URL", "not a url"],
    ["KUBERNETES_IMAGE_PULL_POLICY", "always"],
    ["MAX_SESSIONS", "99999999999999999999"],
  ])("%s=%j", (name, value) => {
    const err = configError({ [name]: value });
    expect(err.issues.length).toBeGreaterThanOrEqual(1);
    for (const issue of err.issues) {
      expect(issue.startsWith(`${name}: `)).toBe(true);
      expect(issue).toContain(JSON.stringify(value));
    }
    expect(err.message).toContain(name);
    expect(err.name).toBe("ConfigError");
  });

  it("reports every bad variable at once", () => {
    const err = configError({ PORT: "abc", EXECUTOR_BACKEND: "podman", MEMORY_LIMIT_MB: "-1" });
    expect(err.issues.map((i) => i.split(":")[0]).sort()).toEqual([
      "EXECUTOR_BACKEND",
      "MEMORY_LIMIT_MB",
      "PORT",
    ]);
  });
});
