/**
 * The Docker side of the warm pool (core's PoolPlatform, issue 10). Members are containers
 * made by the session spec function (same hardening, same state volume) named
 * `code-pool-<uuid>`, labelled `app=code-interpreter,component=session` plus LABEL_POOL (the
 * fingerprint of image id, container template and spec version); their keeper ends them at
 * their max age. A claim is one engine rename by the member's name to `code-session-<uuid>`
 * (`claimTarget`): of two concurrent renames to the same target exactly one succeeds, the
 * other answers 404 (the name is gone) or 400 (already its name) — "taken, try the next".
 * The winner then writes the claim record into the state file (archive API) off the
 * request's path (the archive API re-executes the daemon to extract, tens of ms; the rename
 * takes a few): this process knows the record at once (ClaimCache), its own state writes wait
 * for it (`settled`), and another process's lookup waits for it briefly (claims.ts). A record
 * that cannot be written removes the container: it could never be anyone's session.
 */
import type Dockerode from "dockerode";
import type { Logger } from "@code-interpreter/core";
import {
  LABEL_APP,
  LABEL_COMPONENT,
  LABEL_POOL,
  APP_NAME,
  STATE_FILE,
  claimTarget,
  claimedResource,
  executorCommands,
  isPoolMemberName,
  poolFingerprint,
  type ClaimRecord,
  type PlatformResource,
  type PoolMemberSpec,
  type PoolPlatform,
} from "@code-interpreter/core/backend-kit";
import type { ClaimCache } from "./claims.js";
import { createOptions, type ContainerTemplate } from "./container-spec.js";
import { engineStatus, mapDockerError } from "./errors.js";
import { listContainers } from "./lookup.js";
import { forceRemove, removeAndWait } from "./removal.js";
import { writeClaim } from "./state.js";

export interface DockerPoolOptions {
  docker: Dockerode;
  image: string;
  template: ContainerTemplate;
  apiTimeoutMs: number;
  logger: Logger;
  claims: ClaimCache;
}

export class DockerPoolPlatform implements PoolPlatform {
  private imageId = "";
  /** Claim records being written, by container id. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly o: DockerPoolOptions) {}

  /** Image (by id once known: a rebuilt tag changes it), container template, spec version. */
  get fingerprint(): string {
    return poolFingerprint({
      platform: "docker",
      image: this.o.image,
      imageId: this.imageId,
      template: this.o.template,
    });
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.o.apiTimeoutMs);
  }

  async createMember(spec: PoolMemberSpec): Promise<PlatformResource> {
    const cmd = executorCommands.keeper({
      statePath: STATE_FILE,
      maxExpiresAt: spec.expiresAt,
      expiresAt: spec.expiresAt,
      idleTimeoutSeconds: null,
      createdAt: spec.createdAt,
    });
    try {
      const c = await this.o.docker.createContainer(
        createOptions(this.o.template, spec.name, spec.labels, cmd, {
          abortSignal: this.signal(),
          stateVolume: true,
        }),
      );
      await c.start({ abortSignal: this.signal() });
      return {
        name: spec.name,
        handle: c.id,
        tags: { ...spec.labels },
        phase: "running",
        createdAt: spec.createdAt,
      };
    } catch (err) {
      await removeAndWait(this.o.docker, spec.name, this.o.apiTimeoutMs).catch((e: unknown) =>
        this.o.logger.warn({ member: spec.name, err: String(e) }, "removing a half-made pool member failed"),
      );
      throw mapDockerError(err, "creating a warm pool member", this.o.image);
    }
  }

  async listMembers(): Promise<PlatformResource[]> {
    await this.refreshImageId();
    const all = await listContainers(this.o.docker, "session", undefined, this.signal(), {
      label: [`${LABEL_APP}=${APP_NAME}`, `${LABEL_COMPONENT}=session`, LABEL_POOL],
      name: ["code-pool-"],
    });
    return all.filter((r) => isPoolMemberName(r.name) && !!r.tags[LABEL_POOL]);
  }

  async claimMember(member: PlatformResource, record: ClaimRecord): Promise<PlatformResource | null> {
    const target = claimTarget(member);
    try {
      // By name: once someone renamed it, the old name no longer resolves.
      await this.o.docker.getContainer(member.name).rename({ name: target, abortSignal: this.signal() });
    } catch (err) {
      const status = engineStatus(err);
      if (status === 404 || status === 400 || status === 409) return null;
      throw mapDockerError(err, "claiming a warm pool member", this.o.image);
    }
    this.o.claims.remember(member.handle, record);
    const handle = member.handle;
    const write = writeClaim(this.o.docker.getContainer(handle), record, this.signal())
      .catch(async (err: unknown) => {
        this.o.claims.forget(handle);
        // Gone meanwhile (a one-shot already done, a delete): nothing to record any more.
        const outcome = await forceRemove(this.o.docker, handle, this.signal()).catch(() => "failed");
        if (outcome === "gone") return;
        this.o.logger.error(
          { sessionId: claimTarget(member), err: String(err), removal: outcome },
          "recording a warm pool claim failed; the container was removed",
        );
      })
      .finally(() => this.pending.delete(handle));
    this.pending.set(handle, write);
    return { ...claimedResource(member, record), phase: "running" };
  }

  /** Resolves once the claim record of this container, if one is being written, is stored. */
  settled(handle: string): Promise<void> {
    return this.pending.get(handle) ?? Promise.resolve();
  }

  /** Waits for the claim records being written. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  async removeMember(member: PlatformResource): Promise<"removed" | "gone"> {
    this.o.claims.forget(member.handle);
    return (await forceRemove(this.o.docker, member.handle, this.signal())) === "removed"
      ? "removed"
      : "gone";
  }

  /** The image's id (a rebuilt tag gets a new one, and members made from the old one are reaped). */
  private async refreshImageId(): Promise<void> {
    try {
      const opts = { abortSignal: this.signal() } as Dockerode.ImageInspectOptions;
      const info = await this.o.docker.getImage(this.o.image).inspect(opts);
      this.imageId = info.Id;
    } catch (err) {
      this.o.logger.debug({ err: String(err) }, "inspecting the executor image failed");
    }
  }
}
