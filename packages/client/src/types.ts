/**
 * The camelCase shapes the client hands to callers, and their mapping from the wire types,
 * which are generated from the server's OpenAPI document (`generated/openapi.ts`).
 */
import type { Schemas } from "./wire.js";

// ------------------------------------------------------------------ wire (snake_case)

/** Generated from the OpenAPI document (see wire.ts); the names below are for readability. */
type WireExecResult = Schemas["ExecResult"];
type WireSession = Schemas["Session"];
type WireStoredFile = Schemas["UploadedFile"] | Schemas["FileMeta"];
type WireWorkspaceEntry = Schemas["WorkspaceEntry"];
type WireStagedFile = NonNullable<Schemas["ExecuteRequest"]["files"]>[number];

// ------------------------------------------------------------------ public (camelCase)

/** A file that code created or changed, saved to the file store. */
export interface ProducedFile {
  /** Path relative to `/workspace`. */
  path: string;
  kind: "file" | "directory";
  /** Id in the file store: download it with `client.files.download(fileId)`. */
  fileId: string;
}

/** The result of a Python or bash run. */
export interface Execution {
  stdout: string;
  stderr: string;
  /** `null` when the run timed out. */
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  files: ProducedFile[];
  /**
   * Sessions only (`undefined` for `client.execute()`): `null` when the session's Python state
   * carried over from the previous call; `{ reason }` when it was cleared before or during this
   * call (`reset: true`, a cell killed at its timeout, or the session's agent restarted).
   */
  stateReset?: { reason: string } | null;
}

export interface SessionInfo {
  id: string;
  status: WireSession["status"];
  createdAt: Date;
  expiresAt: Date;
  lastActiveAt: Date;
  metadata: Record<string, string>;
  /** `null` when the session has no idle timeout. */
  idleTimeoutSeconds: number | null;
  /** The hard end no keepalive can pass (`undefined` if the server does not say). */
  maxExpiresAt: Date | undefined;
}

export interface StoredFile {
  id: string;
  filename: string;
  sizeBytes: number;
  /** Set in listings (`client.files.list()`), not on upload answers. */
  uploadTime: Date | undefined;
}

export interface WorkspaceEntry {
  /** Relative to `/workspace`. */
  path: string;
  kind: "file" | "directory";
  sizeBytes: number;
}

/** A file to place in the workspace before the code runs (it must be in the file store). */
export interface StagedFile {
  /** Relative path inside `/workspace`, e.g. `data/in.csv`. */
  path: string;
  /** Id from `client.files.upload()`. */
  fileId: string;
}

/** Bytes the client can send (and send again on a retry). */
export type Body = string | Uint8Array | ArrayBuffer | Blob;

// ------------------------------------------------------------------ mapping

const date = (unixSeconds: number): Date => new Date(unixSeconds * 1000);

export function toExecution(w: WireExecResult): Execution {
  return {
    ...(w.state_reset === undefined ? {} : { stateReset: w.state_reset }),
    stdout: w.stdout,
    stderr: w.stderr,
    exitCode: w.exit_code,
    timedOut: w.timed_out,
    durationMs: w.duration_ms,
    files: w.files.map((f) => ({ path: f.path, kind: f.kind, fileId: f.file_id })),
  };
}

export function toSessionInfo(w: WireSession): SessionInfo {
  return {
    id: w.session_id,
    status: w.status,
    createdAt: date(w.created_at),
    expiresAt: date(w.expires_at),
    lastActiveAt: date(w.last_active_at),
    metadata: w.metadata,
    idleTimeoutSeconds: w.idle_timeout_seconds ?? null,
    maxExpiresAt: w.max_expires_at === undefined ? undefined : date(w.max_expires_at),
  };
}

export function toStoredFile(w: WireStoredFile): StoredFile {
  return {
    id: w.file_id,
    filename: w.filename,
    sizeBytes: w.size_bytes,
    uploadTime: "upload_time" in w ? date(w.upload_time) : undefined,
  };
}

export function toWorkspaceEntry(w: WireWorkspaceEntry): WorkspaceEntry {
  return { path: w.path, kind: w.kind, sizeBytes: w.size_bytes };
}

export function toWireFiles(files: readonly StagedFile[] | undefined): WireStagedFile[] | undefined {
  return files?.map((f) => ({ path: f.path, file_id: f.fileId }));
}
