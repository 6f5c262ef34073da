/**
 * The server's configuration from environment variables, validated with zod. A bad value
 * stops start-up with a message naming the variable. Names follow the REST contract (API.md)
 * and the onyx code-interpreter service, so existing deployments keep their settings. The
 * `Config` type is derived from the schema (z.output), not written out by hand.
 *
 * Executor limits have library defaults in core (`DEFAULT_EXECUTOR_LIMITS`); the defaults
 * below are the same numbers, as the server's documented environment.
 */
import { z } from "zod";
import { defaultTmpfsSizes, executorLimitsProblem, type ExecutorLimits } from "@code-interpreter/core";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const num = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, "must be a number")
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Environment variable name → schema, with defaults applied to absent (or empty) variables. */
export const envSchema = z.object({
  EXECUTOR_BACKEND: z.enum(["docker", "kubernetes"]).default("docker"),
  EXECUTOR_IMAGE: z.string().trim().min(1).default("code-interpreter-executor:latest"),
  HOST: z.string().trim().min(1).default("0.0.0.0"),
  PORT: int(0, 65535).default(8000),
  API_KEYS: list.default([]),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  MAX_EXEC_TIMEOUT_MS: int(1).default(60_000),
  DEFAULT_EXEC_TIMEOUT_MS: int(1).default(2_000),
  MAX_OUTPUT_BYTES: int(1).default(1_000_000),
  CPU_TIME_LIMIT_SEC: int(0).default(5),
  MEMORY_LIMIT_MB: int(16).default(256),
  CPU_LIMIT: num(0.01, 1024).default(1),
  PIDS_LIMIT: int(8).default(128),
  // Default: half and an eighth of MEMORY_LIMIT_MB (tmpfs pages count against the memory limit).
  WORKSPACE_SIZE_MB: int(1).optional(),
  TMP_SIZE_MB: int(1).optional(),

  FILE_STORAGE_DIR: z.string().trim().min(1).default("/tmp/code-interpreter-files"),
  FILE_SERVICE_URL: z.url().optional(),
  MAX_FILE_SIZE_MB: num(0.000001, 1_000_000).default(100),
  FILE_TTL_SEC: int(1).default(3600),

  MAX_SESSIONS: int(0).default(100),
  /** Ready executors kept for session creates and one-shot runs (issue 10; Docker and Kubernetes). 0 = no pool. */
  WARM_POOL_SIZE: int(0, 1000).default(2),
  /** A pool member's keeper ends it this long after its creation (also when no API is left). */
  WARM_POOL_MAX_AGE_SECONDS: int(30, 86_400).default(600),
  /** Cap on pool members + sessions on the engine. Default MAX_SESSIONS + WARM_POOL_SIZE (0: none). */
  MAX_TOTAL_EXECUTORS: int(0).optional(),
  SESSION_MAX_LIFETIME_SECONDS: int(1).default(86_400),
  SESSION_REAPER_INTERVAL_SECONDS: num(0.1, 86_400).default(30),
  SHUTDOWN_TIMEOUT_SECONDS: num(0, 3600).default(25),

  DOCKER_HOST: z.string().trim().optional(),

  KUBERNETES_EXECUTOR_NAMESPACE: z.string().trim().min(1).default("default"),
  KUBERNETES_IMAGE_PULL_POLICY: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  KUBERNETES_POD_READY_TIMEOUT_SEC: num(1, 3600).default(60),
  KUBERNETES_OWNER_DEPLOYMENT: z.string().trim().optional(),
  /** Deadline of every call to the Kubernetes API: a hung apiserver answers 503 after it. */
  KUBERNETES_REQUEST_TIMEOUT_MS: int(100, 600_000).default(10_000),
  KUBERNETES_RUNTIME_CLASS: z.string().trim().optional(),
});

/** The environment, parsed, as the server uses it. */
export const configSchema = envSchema.transform((e) => ({
  executorBackend: e.EXECUTOR_BACKEND,
  executorImage: e.EXECUTOR_IMAGE,
  host: e.HOST,
  port: e.PORT,
  apiKeys: e.API_KEYS,
  logLevel: e.LOG_LEVEL,
  maxExecTimeoutMs: e.MAX_EXEC_TIMEOUT_MS,
  // A default above the cap would make every request without timeout_ms fail.
  defaultExecTimeoutMs: Math.min(e.DEFAULT_EXEC_TIMEOUT_MS, e.MAX_EXEC_TIMEOUT_MS),
  maxOutputBytes: e.MAX_OUTPUT_BYTES,
  cpuTimeLimitSec: e.CPU_TIME_LIMIT_SEC,
  memoryLimitMb: e.MEMORY_LIMIT_MB,
  cpuLimit: e.CPU_LIMIT,
  pidsLimit: e.PIDS_LIMIT,
  workspaceSizeMb: e.WORKSPACE_SIZE_MB ?? defaultTmpfsSizes(e.MEMORY_LIMIT_MB).workspaceSizeMb,
  tmpSizeMb: e.TMP_SIZE_MB ?? defaultTmpfsSizes(e.MEMORY_LIMIT_MB).tmpSizeMb,
  fileStorageDir: e.FILE_STORAGE_DIR,
  fileServiceUrl: e.FILE_SERVICE_URL,
  maxFileSizeBytes: Math.floor(e.MAX_FILE_SIZE_MB * 1024 * 1024),
  fileTtlSec: e.FILE_TTL_SEC,
  maxSessions: e.MAX_SESSIONS,
  warmPool: {
    size: e.WARM_POOL_SIZE,
    maxAgeSeconds: e.WARM_POOL_MAX_AGE_SECONDS,
    maxTotal: e.MAX_TOTAL_EXECUTORS ?? (e.MAX_SESSIONS > 0 ? e.MAX_SESSIONS + e.WARM_POOL_SIZE : 0),
  },
  sessionMaxLifetimeSeconds: e.SESSION_MAX_LIFETIME_SECONDS,
  sessionReaperIntervalSeconds: e.SESSION_REAPER_INTERVAL_SECONDS,
  shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
  dockerHost: e.DOCKER_HOST,
  kubernetes: {
    namespace: e.KUBERNETES_EXECUTOR_NAMESPACE,
    imagePullPolicy: e.KUBERNETES_IMAGE_PULL_POLICY,
    podReadyTimeoutSec: e.KUBERNETES_POD_READY_TIMEOUT_SEC,
    ownerDeployment: e.KUBERNETES_OWNER_DEPLOYMENT,
    requestTimeoutMs: e.KUBERNETES_REQUEST_TIMEOUT_MS,
    runtimeClass: e.KUBERNETES_RUNTIME_CLASS,
  },
}));

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Reads config from an environment map (default: process.env). Throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== "") input[key] = v;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? "?");
        const got = input[name];
        return `${name}: ${i.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`;
      }),
    );
  }
  const problem = executorLimitsProblem(executorLimits(parsed.data));
  if (problem) throw new ConfigError([`WORKSPACE_SIZE_MB, TMP_SIZE_MB, MEMORY_LIMIT_MB: ${problem}`]);
  return parsed.data;
}

/** The limits every backend applies to executor containers/pods, from the server's config. */
export function executorLimits(c: Config): ExecutorLimits {
  return {
    memoryLimitMb: c.memoryLimitMb,
    cpuLimit: c.cpuLimit,
    cpuTimeLimitSec: c.cpuTimeLimitSec,
    pidsLimit: c.pidsLimit,
    workspaceSizeMb: c.workspaceSizeMb,
    tmpSizeMb: c.tmpSizeMb,
  };
}
