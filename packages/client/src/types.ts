/**
 * The REST contract's JSON shapes (snake_case, as on the wire), declared by hand from
 * `API.md` v1, and the camelCase shapes the client hands to callers.
 */

// ------------------------------------------------------------------ wire (snake_case)

export interface WireProducedFile {
  path: string;
  kind: string;
  file_id: string;
}

export interface WireExecResult {
  stdout: string;
  stderr: string;
  exit_code: number | null;
  timed_out: boolean;
  duration_ms: number;
  files: WireProducedFile[];
}

export type WireStreamResult = Omit<WireExecResult, "stdout" | "stderr">;

export interface WireSession {
  session_id: string;
  status: string;
  created_at: number;
  expires_at: number;
  last_active_at: number;
  metadata: Record<string, string>;
  idle_timeout_seconds?: number | null;
  max_expires_at?: number;
}

export interface WireStoredFile {
  file_id: string;
  filename: string;
  size_bytes: number;
  upload_time?: number;
}

export interface WireWorkspaceEntry {
  path: string;
  kind: string;
  size_bytes: number;
}

// ------------------------------------------------------------------ public (camelCase)

/** A file that code created or changed, saved to the file store. */
export interface ProducedFile {
  /** Path relative to `/workspace`. */
  path: string;
  kind: string;
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
}

export interface SessionInfo {
  id: string;
  status: string;
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
  /** `"file"` or `"directory"`. */
  kind: string;
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
    uploadTime: w.upload_time === undefined ? undefined : date(w.upload_time),
  };
}

export function toWorkspaceEntry(w: WireWorkspaceEntry): WorkspaceEntry {
  return { path: w.path, kind: w.kind, sizeBytes: w.size_bytes };
}

export function toWireFiles(files: readonly StagedFile[] | undefined) {
  return files?.map((f) => ({ path: f.path, file_id: f.fileId }));
}
