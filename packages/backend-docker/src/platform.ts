/**
 * The Docker side of the session layer (core's SessionPlatform): containers named
 * `code-session-<uuid>` with the identity and lifetime labels, state on a volume read and
 * written through the archive API, exec through DockerExecTransport. Everything else about
 * sessions is core's SessionBackend.
 */
import type Dockerode from "dockerode";
import type { ExecResult, Logger, OneShotRequest } from "@code-interpreter/core";
import type {
  PlatformResource,
  SessionPlatform,
  SessionSpec,
  SessionState,
} from "@code-interpreter/core/backend-kit";
import { LABEL_COMPONENT, STATE_FILE, executorCommands, mapLimit } from "@code-interpreter/core/backend-kit";
import { ClaimCache } from "./claims.js";
import { createOptions, type ContainerTemplate } from "./container-spec.js";
import { mapDockerError, mapSessionError } from "./errors.js";
import { findContainer, listContainers } from "./lookup.js";
import { executeOneShot } from "./oneshot.js";
import { DockerPoolPlatform } from "./pool.js";
import { forceRemove, removeAndWait } from "./removal.js";
import { readStateFile, writeStateFile } from "./state.js";
import { DockerExecTransport } from "./transport.js";

export interface DockerPlatformOptions {
  docker: Dockerode;
  image: string;
  template: ContainerTemplate;
  cpuSeconds: number;
  maxFileBytes: number;
  apiTimeoutMs: number;
  logger: Logger;
  now: () => number;
}

/** How long a lookup waits for the claim record of a just-claimed member (written off-path). */
const CLAIM_RECORD_WAIT_MS = 3000;

interface PingWithOptions {
  ping(opts: { abortSignal?: AbortSignal }): Promise<unknown>;
}

export class DockerPlatform implements SessionPlatform {
  readonly kind = "docker";
  readonly pool: DockerPoolPlatform;
  private readonly claims: ClaimCache;

  constructor(private readonly o: DockerPlatformOptions) {
    this.claims = new ClaimCache(o.docker, () => this.signal());
    this.pool = new DockerPoolPlatform({ ...o, claims: this.claims });
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.o.apiTimeoutMs);
  }

  private container(r: PlatformResource): Dockerode.Container {
    return this.o.docker.getContainer(r.handle);
  }

  async ping(): Promise<void> {
    await (this.o.docker as unknown as PingWithOptions).ping({ abortSignal: this.signal() });
  }

  execute(req: OneShotRequest): Promise<ExecResult> {
    return executeOneShot(this.o, req);
  }

  async create(spec: SessionSpec): Promise<PlatformResource> {
    // Docker has no annotations: the metadata JSON is a label too.
    const labels = { ...spec.annotations, ...spec.labels };
    const { lifetime } = spec;
    const cmd = executorCommands.keeper({
      statePath: STATE_FILE,
      maxExpiresAt: lifetime.maxExpiresAt,
      expiresAt: lifetime.expiresAt,
      idleTimeoutSeconds: spec.keeperIdleTimeoutSeconds,
      createdAt: lifetime.createdAt,
    });
    try {
      const c = await this.o.docker.createContainer(
        createOptions(this.o.template, spec.id, labels, cmd, {
          abortSignal: this.signal(),
          stateVolume: true,
        }),
      );
      await c.start({ abortSignal: this.signal() });
      return { name: spec.id, handle: c.id, tags: labels, phase: "running", createdAt: this.o.now() };
    } catch (err) {
      // By name: also covers a create that reached the engine but whose answer was lost.
      await removeAndWait(this.o.docker, spec.id, this.o.apiTimeoutMs).catch((e: unknown) =>
        this.o.logger.error({ sessionId: spec.id, err: String(e) }, "removing a half-made session failed"),
      );
      throw mapDockerError(err, "creating the session container", this.o.image);
    }
  }

  async find(id: string): Promise<PlatformResource | null> {
    const r = await findContainer(this.o.docker, id, this.signal());
    // A claim whose record another process is still writing: wait for it a moment.
    return r && this.claims.resolve(r, CLAIM_RECORD_WAIT_MS);
  }

  /**
   * Session containers, claimed pool members resolved (see claims.ts). The owner is checked
   * by the layer: a claimed session's owner is in its claim record, not in a label.
   */
  async list(): Promise<PlatformResource[]> {
    const all = await this.resolved(await listContainers(this.o.docker, "session", undefined, this.signal()));
    return all.filter((r) => r.tags[LABEL_COMPONENT] === "session");
  }

  /** One-shot executors: cold ones, and pool members claimed for a one-shot run. */
  async listExecutors(): Promise<PlatformResource[]> {
    const [cold, sessions] = await Promise.all([
      listContainers(this.o.docker, "executor", undefined, this.signal()),
      listContainers(this.o.docker, "session", undefined, this.signal()),
    ]);
    const claimed = await this.resolved(sessions.filter((r) => ClaimCache.isClaimed(r)));
    return [...cold, ...claimed.filter((r) => r.tags[LABEL_COMPONENT] === "executor")];
  }

  /** Resolves claimed members (reading unknown claim records, a few at a time). */
  private async resolved(list: PlatformResource[]): Promise<PlatformResource[]> {
    return mapLimit(list, 8, (r) => this.claims.resolve(r).catch(() => r));
  }

  async remove(r: PlatformResource): Promise<"removed" | "gone"> {
    this.claims.forget(r.handle);
    return (await forceRemove(this.o.docker, r.handle, this.signal())) === "removed" ? "removed" : "gone";
  }

  transport(r: PlatformResource): DockerExecTransport {
    return new DockerExecTransport(this.container(r), { apiTimeoutMs: this.o.apiTimeoutMs });
  }

  async readState(r: PlatformResource): Promise<SessionState> {
    await this.pool.settled(r.handle);
    return readStateFile(this.container(r), this.signal());
  }

  async writeState(r: PlatformResource, patch: SessionState): Promise<void> {
    // Never before the claim record is stored: this write would not carry it.
    await this.pool.settled(r.handle);
    await writeStateFile(this.container(r), patch, this.signal());
  }

  /** From the engine's cgroup counters (`stats`, one-shot): no process runs in the container for it. */
  async processSlotsExhausted(r: PlatformResource): Promise<boolean> {
    const options = { stream: false as const, "one-shot": true, abortSignal: this.signal() };
    const stats = await this.container(r).stats(options);
    const { current, limit } = stats.pids_stats ?? {};
    // A run needs two processes (our runner and the program): one slot left is none.
    return typeof current === "number" && typeof limit === "number" && limit > 0 && current >= limit - 1;
  }

  mapError(err: unknown, what: string, sessionId?: string) {
    return sessionId === undefined
      ? mapDockerError(err, what, this.o.image)
      : mapSessionError(err, sessionId, what);
  }

  async close(): Promise<void> {
    // dockerode keeps no connections of its own beyond Node's agent; claim records in flight.
    await this.pool.close();
  }
}
