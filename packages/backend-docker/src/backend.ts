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
import { ValidationError } from "@code-interpreter/core";
import {
  SessionBackend,
  resolveCommonOptions,
  type CommonBackendOptions,
  type WarmPoolSettings,
} from "@code-interpreter/core/backend-kit";
import { containerTemplate } from "./container-spec.js";
import { DockerPlatform } from "./platform.js";

export interface DockerBackendOptions extends CommonBackendOptions {
  /** A ready client. @default a client for `socketPath`, else DOCKER_HOST, else the default socket */
  docker?: Dockerode;
  /** The engine's unix socket, when no `docker` client is given. @default DOCKER_HOST or /var/run/docker.sock */
  socketPath?: string;
  /** Executor image; never pulled. @default "code-interpreter-executor:latest" */
  image?: string;
  /** Upper bound for one control call to the engine (inspect, create, remove, ...). @default 30000 */
  apiTimeoutMs?: number;
  /**
   * Ready containers kept for session creates and one-shot runs (issue 10): `size` members,
   * each hardened exactly like a session, ended by their keeper after `maxAgeSeconds`.
   * @default no pool
   */
  warmPool?: WarmPoolSettings;
}

export const DEFAULT_IMAGE = "code-interpreter-executor:latest";

export class DockerBackend extends SessionBackend {
  constructor(opts: DockerBackendOptions = {}) {
    const image = opts.image ?? DEFAULT_IMAGE;
    if (!image || typeof image !== "string") throw new ValidationError("image is required");
    const common = resolveCommonOptions(opts);
    const docker =
      opts.docker ?? new Dockerode(opts.socketPath ? { socketPath: opts.socketPath } : undefined);
    const platform = new DockerPlatform({
      docker,
      image,
      // Precomputed once: per container only name, labels and the keeper's argv differ.
      template: containerTemplate(image, common.limits),
      cpuSeconds: common.limits.cpuTimeLimitSec,
      maxFileBytes: common.maxFileBytes,
      apiTimeoutMs: opts.apiTimeoutMs ?? 30_000,
      logger: common.logger,
      now: common.now,
    });
    super(platform, {
      ...common,
      cpuTimeLimitSec: common.limits.cpuTimeLimitSec,
      ...(opts.warmPool ? { warmPool: opts.warmPool } : {}),
    });
  }
}

export function createDockerBackend(opts: DockerBackendOptions = {}): DockerBackend {
  return new DockerBackend(opts);
}
