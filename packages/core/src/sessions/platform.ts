/**
 * What a backend implements so the session layer (./session-backend.ts) can run on it: a
 * small platform interface. Everything a caller sees — id checks, owner scope, expiry and
 * idle decisions, serialisation, activity recording, validation, reap reasons, error
 * mapping — is decided once in the layer; a platform only stores, finds, starts and
 * removes resources, and keeps the mutable state record of each session.
 */
import type { BackendCapabilities, ExecResult, OneShotRequest } from "../backend.js";
import type { CodeInterpreterError } from "../errors.js";
import type { ExecTransport } from "../exec-runner.js";
import type { LabelMap } from "../labels.js";
import type { Lifetime } from "../lifetime.js";
import type { SessionState } from "../session.js";
import type { PoolPlatform } from "./pool-platform.js";

/**
 * Where a resource is in its life, as far as the layer cares.
 * - `pending`: created, not running yet (a create in flight, a pod being scheduled)
 * - `running`: usable
 * - `stopped`: ended (container exited, pod Succeeded/Failed): removed when found
 * - `removing`: already being deleted by someone: left alone
 */
export type ResourcePhase = "pending" | "running" | "stopped" | "removing";

/** A session or executor resource as the platform's lookup or listing sees it. */
export interface PlatformResource {
  /** Resource name: the session id (`code-session-…`) or executor name (`code-exec-…`). */
  name: string;
  /** The platform's own handle for later calls (container id, pod uid). */
  handle: string;
  /** Labels and annotations, merged (annotations never override identity labels). */
  tags: LabelMap;
  phase: ResourcePhase;
  /** Unix ms the platform created the resource. */
  createdAt: number;
  /**
   * The mutable state when the lookup already carries it (Kubernetes annotations). Absent:
   * the layer calls `readState` when it needs it.
   */
  state?: SessionState;
}

/** What `create` needs: the name, the tags to put on the resource, and the lifetime for its keeper. */
export interface SessionSpec {
  id: string;
  labels: LabelMap;
  annotations: LabelMap;
  lifetime: Lifetime;
  /**
   * The idle timeout the in-resource keeper should enforce: the session's own plus the
   * layer's activity-write interval, so a debounced activity record can never let the keeper
   * end a session that is in use. The layer's reaper enforces the exact timeout.
   */
  keeperIdleTimeoutSeconds: number | null;
}

export interface SessionPlatform {
  /** "docker", "kubernetes", ... */
  readonly kind: string;
  /** @default all true */
  readonly capabilities?: Partial<BackendCapabilities>;
  /**
   * The warm pool's extension (issue 10), when the platform can keep ready members; the
   * layer then claims one per session create and one-shot run (see pooled.ts).
   */
  readonly pool?: PoolPlatform;

  ping(): Promise<void>;
  /** One-shot execution in a fresh resource, always removed afterwards. */
  execute(req: OneShotRequest): Promise<ExecResult>;

  /** Creates the session resource and waits until it runs; removes what it made on failure. */
  create(spec: SessionSpec): Promise<PlatformResource>;
  /** The resource with exactly this name, or null. Only called with valid session ids. */
  find(id: string): Promise<PlatformResource | null>;
  /**
   * Session resources (any phase) carrying both identity labels; `owner` may narrow the
   * platform query (the layer checks the scope again).
   */
  list(filter: { owner?: string }): Promise<PlatformResource[]>;
  /** One-shot executor resources (any phase) carrying both identity labels. */
  listExecutors(): Promise<PlatformResource[]>;
  /** Deletes the resource; "gone" when it no longer existed (or someone else is removing it). */
  remove(r: PlatformResource): Promise<"removed" | "gone">;

  /** How to run a command inside the session (code, staging, file reads). */
  transport(r: PlatformResource): ExecTransport;
  /** The stored mutable state; `{}` when none was written yet. Never runs a process in the resource. */
  readState(r: PlatformResource): Promise<SessionState>;
  /**
   * Stores the given fields, each merged with the stored value by maximum (a keepalive from
   * another API process is never undone). Never runs a process in the resource.
   */
  writeState(r: PlatformResource, patch: SessionState): Promise<void>;

  /**
   * Optional: true when the resource cannot start another process (its pids limit is used
   * up). Asked only after a call failed or its program never ran. Platforms that cannot
   * tell omit it (the layer then goes by what the runtime and runner reported).
   */
  processSlotsExhausted?(r: PlatformResource): Promise<boolean>;

  /**
   * Maps anything the platform threw onto core's typed errors. With `sessionId`, an answer
   * meaning "the resource is gone / not running" becomes SessionNotFoundError.
   */
  mapError(err: unknown, what: string, sessionId?: string): CodeInterpreterError;

  /** Releases clients; called once by the layer's close(). */
  close(): Promise<void>;
}
