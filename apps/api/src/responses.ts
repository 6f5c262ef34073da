/**
 * Response bodies of the REST contract as zod schemas. They are the source of the OpenAPI
 * document's response schemas (openapi.ts), and serialize.ts is typed against them, so the
 * JSON we send and the document cannot drift apart.
 */
import { z } from "zod";

const unixSeconds = (what: string) =>
  z
    .number()
    .describe(`${what}: unix seconds (a float; milliseconds are the fraction), like upload_time of files`);

export const errorResponse = z
  .object({ detail: z.string().describe("A human-readable message; never a stack trace") })
  .describe("Every error answer (4xx and 5xx)");

export const healthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  backend: z.string().describe('"docker" or "kubernetes"'),
  version: z.string().describe("The service's version (MAJOR.MINOR.PATCH)"),
  detail: z.string().optional().describe("Why the backend is unavailable (503 only)"),
});

export const livenessResponse = z
  .object({ status: z.literal("ok"), version: z.string() })
  .describe("The process is alive (never depends on the backend)");

export const readinessResponse = z.object({
  status: z.enum(["ready", "unavailable"]),
  backend: z.string().describe('"docker" or "kubernetes"'),
  version: z.string(),
  checks: z
    .object({ backend: z.string(), files: z.string() })
    .describe('"ok", or why that dependency does not answer'),
  detail: z.string().optional().describe("What the API waits for (503 only)"),
});

export const sessionResponse = z.object({
  session_id: z
    .string()
    .regex(/^code-session-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    .describe("code-session-<uuid v4>"),
  status: z.enum(["pending", "running", "stopped"]),
  created_at: unixSeconds("When the session was created"),
  expires_at: unixSeconds("When the session ends unless kept alive"),
  last_active_at: unixSeconds("The last execute/bash/file call"),
  metadata: z.record(z.string(), z.string()),
  idle_timeout_seconds: z
    .number()
    .int()
    .nullable()
    .describe("Ends after this long without a call; null: never"),
  max_expires_at: unixSeconds(
    "The hard end (created_at + SESSION_MAX_LIFETIME_SECONDS); keepalive never passes it",
  ),
});

const nextCursor = z
  .string()
  .optional()
  .describe("Present when there are more items: pass it back as `cursor` for the next page");

export const sessionListResponse = z.object({ sessions: z.array(sessionResponse), next_cursor: nextCursor });

export const uploadedFileResponse = z.object({
  file_id: z.string(),
  filename: z.string(),
  size_bytes: z.number().int().min(0),
});

export const fileMetaResponse = uploadedFileResponse.extend({
  upload_time: unixSeconds("When the file was stored"),
});

export const fileListResponse = z.object({ files: z.array(fileMetaResponse), next_cursor: nextCursor });

export const producedFileResponse = z.object({
  path: z.string().describe("Relative to /workspace"),
  kind: z.enum(["file", "directory"]),
  file_id: z.string().describe("The stored copy (GET /v1/files/{file_id})"),
});

export const stateResetResponse = z
  .object({ reason: z.string().describe("Why the Python state was cleared") })
  .describe("The session's Python state (variables, imports, functions) was cleared");

const execFields = {
  state_reset: stateResetResponse
    .nullable()
    .optional()
    .describe(
      "Sessions only (absent on /v1/execute): null when the Python state carried over from the previous " +
        "call; an object when it was cleared before or during this call: `reset: true` was asked for, a " +
        "cell ignored its interrupt at the timeout and was killed, or the session's agent had been killed",
    ),
  exit_code: z.number().int().nullable().describe("null when the program was killed (timeout or abort)"),
  timed_out: z.boolean(),
  duration_ms: z.number().int().min(0),
  files: z
    .array(producedFileResponse)
    .describe("Files created or changed in the workspace, saved to the file store"),
};

export const execResponse = z.object({
  stdout: z.string(),
  stderr: z.string(),
  ...execFields,
});

export const streamOutputEvent = z.object({ stream: z.enum(["stdout", "stderr"]), data: z.string() });
export const streamResultEvent = z.object(execFields);
export const streamErrorEvent = z.object({ message: z.string() });

export const workspaceEntryResponse = z.object({
  path: z.string().describe("Relative to /workspace"),
  kind: z.enum(["file", "directory"]),
  size_bytes: z.number().int().min(0),
});

export const workspaceListResponse = z.object({
  files: z.array(workspaceEntryResponse),
  next_cursor: nextCursor,
});

export const writtenFileResponse = z.object({ path: z.string(), size_bytes: z.number().int().min(0) });

export type SessionJson = z.output<typeof sessionResponse>;
export type ExecJson = z.output<typeof execResponse>;
export type StreamResultJson = z.output<typeof streamResultEvent>;
export type UploadedFileJson = z.output<typeof uploadedFileResponse>;
export type FileMetaJson = z.output<typeof fileMetaResponse>;
export type WorkspaceEntryJson = z.output<typeof workspaceEntryResponse>;
export type ProducedFileJson = z.output<typeof producedFileResponse>;
