/** Internal records → the snake_case JSON of the REST contract. */
import type { ExecResult, SessionInfo, WorkspaceEntry } from "@code-interpreter/core";
import type { FileMeta } from "@code-interpreter/files-client";
import type {
  ExecJson,
  FileMetaJson,
  ProducedFileJson,
  SessionJson,
  StreamResultJson,
  UploadedFileJson,
  WorkspaceEntryJson,
} from "./responses.js";

/** Unix seconds as a number (milliseconds kept as the fraction), like `upload_time` of files. */
export const unixSeconds = (ms: number): number => ms / 1000;

export function sessionJson(s: SessionInfo): SessionJson {
  return {
    session_id: s.id,
    status: s.status,
    created_at: unixSeconds(s.createdAt),
    expires_at: unixSeconds(s.expiresAt),
    last_active_at: unixSeconds(s.lastActiveAt),
    metadata: s.metadata,
    idle_timeout_seconds: s.idleTimeoutSeconds,
    max_expires_at: unixSeconds(s.maxExpiresAt),
  };
}

export function producedFilesJson(r: ExecResult): ProducedFileJson[] {
  return r.files.map((f) => ({ path: f.path, kind: f.kind, file_id: f.fileId }));
}

export function execJson(r: ExecResult): ExecJson {
  return {
    stdout: r.stdout,
    stderr: r.stderr,
    exit_code: r.exitCode,
    timed_out: r.timedOut,
    duration_ms: r.durationMs,
    files: producedFilesJson(r),
    ...stateResetJson(r),
  };
}

/** `state_reset` on session results (null: the state carried over); absent on one-shot ones. */
function stateResetJson(r: ExecResult): { state_reset?: { reason: string } | null } {
  if (r.stateReset === undefined) return {};
  return { state_reset: r.stateReset === null ? null : { reason: r.stateReset.reason } };
}

/** The SSE `result` event: the final status without the output already streamed. */
export function streamResultJson(r: ExecResult): StreamResultJson {
  return {
    exit_code: r.exitCode,
    timed_out: r.timedOut,
    duration_ms: r.durationMs,
    files: producedFilesJson(r),
    ...stateResetJson(r),
  };
}

export function uploadedFileJson(m: FileMeta): UploadedFileJson {
  return { file_id: m.fileId, filename: m.filename, size_bytes: m.sizeBytes };
}

export function fileJson(m: FileMeta): FileMetaJson {
  return { file_id: m.fileId, filename: m.filename, size_bytes: m.sizeBytes, upload_time: m.uploadTime };
}

export function workspaceEntryJson(e: WorkspaceEntry): WorkspaceEntryJson {
  return { path: e.path, kind: e.kind, size_bytes: e.sizeBytes };
}

/**
 * `Content-Disposition: attachment` with a quoted ASCII fallback name and, when the real
 * name is not plain ASCII, an RFC 8187 `filename*` carrying it exactly.
 */
export function contentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, "_") || "file";
  const header = `attachment; filename="${fallback}"`;
  if (fallback === name) return header;
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${header}; filename*=UTF-8''${encoded}`;
}
