/**
 * DockerBackend: core's session layer (SessionBackend) on a Docker engine (DockerPlatform).
 *
 * - Sessions are containers named `code-session-<uuid>` with the labels
 *   `app=code-interpreter,component=session` plus the immutable lifetime facts; the mutable
 *   part lives on the container's state volume (see state.ts). Every API process on the
 *   engine sees the same sessions.
 * - PID 1 of every container is core's keeper: it exits at the session's deadline (or a
 *   one-shot executor's reap-after), so a container ends itself even when no API process
 *   runs. AutoRemove then deletes it, state volume included.
 */
import Dockerode from "dockerode";
import {
  DEFAULT_EXECUTOR_LIMITS,
  ValidationError,
  silentLogger,
  type ExecutorLimits,
  type Logger,
} from "@code-interpreter/core";
import { SessionBackend } from "@code-interpreter/core/backend-kit";
import { containerTemplate } from "./container-spec.js";
import { DockerPlatform } from "./platform.js";

export interface DockerBackendOptions {
  /** A ready client. @default a client for `socketPath`, else DOCKER_HOST, else the default socket */
  docker?: Dockerode;
  /** The engine's unix socket, when no `docker` client is given. @default DOCKER_HOST or /var/run/docker.sock */
  socketPath?: string;
  /** Executor image; never pulled. @default "code-interpreter-executor:latest" */
  image?: string;
  /** Container limits; missing fields take their defaults. @default DEFAULT_EXECUTOR_LIMITS */
  limits?: Partial<ExecutorLimits>;
  /** Hard cap on a session's life, seconds (SESSION_MAX_LIFETIME_SECONDS). @default 86400 */
  sessionMaxLifetimeSeconds?: number;
  /** Per-file cap for collected and written files, bytes. @default 104857600 (100 MiB) */
  maxFileBytes?: number;
  /** @default a logger that drops everything */
  logger?: Logger;
  /** Clock (unix ms), injectable for tests. @default Date.now */
  now?: () => number;
  /** Upper bound for one control call to the engine (inspect, create, remove, ...). @default 30000 */
  apiTimeoutMs?: number;
  /** Parallel state reads and removals in listSessions and reap. @default 8 */
  concurrency?: number;
}

export const DEFAULT_IMAGE = "code-interpreter-executor:latest";

export class DockerBackend extends SessionBackend {
  constructor(opts: DockerBackendOptions = {}) {
    const image = opts.image ?? DEFAULT_IMAGE;
    if (!image || typeof image !== "string") throw new ValidationError("image is required");
    const maxLifetime = opts.sessionMaxLifetimeSeconds ?? 86_400;
    if (!Number.isInteger(maxLifetime) || maxLifetime < 1) {
      throw new ValidationError("sessionMaxLifetimeSeconds must be a positive integer");
    }
    const maxFileBytes = opts.maxFileBytes ?? 100 * 1024 * 1024;
    if (!(maxFileBytes > 0)) throw new ValidationError("maxFileBytes must be positive");
    const limits: ExecutorLimits = { ...DEFAULT_EXECUTOR_LIMITS, ...opts.limits };
    const logger = opts.logger ?? silentLogger;
    const now = opts.now ?? Date.now;
    const docker =
      opts.docker ?? new Dockerode(opts.socketPath ? { socketPath: opts.socketPath } : undefined);
    const platform = new DockerPlatform({
      docker,
      image,
      // Precomputed once: per container only name, labels and the keeper's argv differ.
      template: containerTemplate(image, limits),
      cpuSeconds: limits.cpuTimeLimitSec,
      maxFileBytes,
      apiTimeoutMs: opts.apiTimeoutMs ?? 30_000,
      logger,
      now,
    });
    super(platform, {
      sessionMaxLifetimeSeconds: maxLifetime,
      maxFileBytes,
      cpuTimeLimitSec: limits.cpuTimeLimitSec,
      logger,
      now,
      concurrency: opts.concurrency,
    });
  }
}

export function createDockerBackend(opts: DockerBackendOptions = {}): DockerBackend {
  return new DockerBackend(opts);
}
