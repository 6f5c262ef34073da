/**
 * The routes of the REST contract as the OpenAPI document lists them: method, path, which
 * named schema goes where, the success answer and the error statuses of each. Nothing here
 * restates a field (the schemas come from schemas.ts and responses.ts, see components.ts).
 */

/** Every status we answer, with the contract's meaning. */
export const STATUS_TEXT: Record<number, string> = {
  400: "Malformed body (JSON, multipart, compression) or URL (percent-encoding)",
  401: "API_KEYS is set and the bearer key is missing or wrong",
  404: "Unknown id, route or file; another key's resource; a session id that is not code-session-<uuid v4>",
  411: "Content-Length is required",
  413: "Body or file too large",
  415: "Unsupported Content-Encoding or charset",
  422: "Well-formed but invalid fields (the message names them)",
  429: "Capacity reached (MAX_SESSIONS)",
  500: "The backend failed, or an unexpected error",
  501: "The configured backend cannot do this",
  503: "The backend is unreachable",
};

export interface Operation {
  method: "get" | "post" | "put" | "delete";
  /** OpenAPI path template. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Path parameters, by name, in order. */
  params?: Array<"id" | "file_id" | "path">;
  query?: boolean;
  body?: { schema: string; required?: boolean } | { multipart: string } | { raw: true };
  /** The success answer. */
  ok:
    | { status: number; schema: string }
    | { status: number; empty: true }
    | { status: number; bytes: true }
    | { status: number; events: true }
    | { status: number; text: string };
  errors: number[];
  /** Open to anonymous callers even when API_KEYS is set. */
  open?: boolean;
  /**
   * The 503 answer has this schema (the success shape with status `unavailable`), not the
   * error shape, and no `Retry-After`.
   */
  unavailable?: { schema: string; description: string };
  description?: string;
}

const JSON_BODY = [400, 413, 415, 422];
const BACKEND = [500, 501, 503];

/** The routes of the contract: the route test checks this list against what the app mounts. */
export const OPERATIONS: readonly Operation[] = [
  {
    method: "get",
    path: "/health",
    operationId: "health",
    summary: "Service and backend health",
    tag: "service",
    ok: { status: 200, schema: "Health" },
    errors: [503],
    open: true,
    unavailable: { schema: "Health", description: "The backend does not answer" },
    description:
      "503 carries the same shape with status `unavailable` and the backend's message in `detail`.",
  },
  {
    method: "get",
    path: "/livez",
    operationId: "livez",
    summary: "Liveness: the process answers (never depends on the backend)",
    tag: "service",
    ok: { status: 200, schema: "Liveness" },
    errors: [],
    open: true,
  },
  {
    method: "get",
    path: "/readyz",
    operationId: "readyz",
    summary: "Readiness: the backend and the file store answer",
    tag: "service",
    ok: { status: 200, schema: "Readiness" },
    errors: [503],
    open: true,
    unavailable: { schema: "Readiness", description: "The backend or the file store does not answer" },
    description:
      "503 carries the same shape with status `unavailable` and what the API waits for in `detail`.",
  },
  {
    method: "get",
    path: "/metrics",
    operationId: "metrics",
    summary: "Prometheus metrics",
    tag: "service",
    ok: { status: 200, text: "text/plain" },
    errors: [],
  },
  {
    method: "get",
    path: "/openapi.json",
    operationId: "openapi",
    summary: "This document",
    tag: "service",
    ok: { status: 200, text: "application/json" },
    errors: [],
  },
  {
    method: "get",
    path: "/docs",
    operationId: "docs",
    summary: "Interactive API documentation (works offline)",
    tag: "service",
    ok: { status: 200, text: "text/html" },
    errors: [],
  },
  {
    method: "post",
    path: "/v1/files",
    operationId: "uploadFile",
    summary: "Upload a file (multipart, field `file`)",
    tag: "files",
    body: { multipart: "UploadForm" },
    ok: { status: 201, schema: "UploadedFile" },
    errors: [400, 413, 415, 422],
  },
  {
    method: "get",
    path: "/v1/files",
    operationId: "listFiles",
    summary: "List the caller's files (oldest first, paginated)",
    tag: "files",
    query: true,
    ok: { status: 200, schema: "FileList" },
    errors: [422],
  },
  {
    method: "get",
    path: "/v1/files/{file_id}",
    operationId: "downloadFile",
    summary: "Download a file's bytes",
    tag: "files",
    params: ["file_id"],
    ok: { status: 200, bytes: true },
    errors: [400, 404],
  },
  {
    method: "delete",
    path: "/v1/files/{file_id}",
    operationId: "deleteFile",
    summary: "Delete a file",
    tag: "files",
    params: ["file_id"],
    ok: { status: 204, empty: true },
    errors: [400, 404],
  },
  {
    method: "post",
    path: "/v1/execute",
    operationId: "execute",
    summary: "Run Python once in a fresh, locked-down executor",
    tag: "execute",
    body: { schema: "ExecuteRequest", required: true },
    ok: { status: 200, schema: "ExecResult" },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/execute/stream",
    operationId: "executeStream",
    summary: "Run Python once, with live output over SSE",
    tag: "execute",
    body: { schema: "ExecuteRequest", required: true },
    ok: { status: 200, events: true },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions",
    operationId: "createSession",
    summary: "Create a session (optionally with staged files)",
    tag: "sessions",
    body: { schema: "CreateSessionRequest" },
    ok: { status: 201, schema: "Session" },
    errors: [...JSON_BODY, 404, 429, ...BACKEND],
  },
  {
    method: "get",
    path: "/v1/sessions",
    operationId: "listSessions",
    summary: "List the caller's sessions (oldest first, paginated)",
    tag: "sessions",
    query: true,
    ok: { status: 200, schema: "SessionList" },
    errors: [422, ...BACKEND],
  },
  {
    method: "get",
    path: "/v1/sessions/{id}",
    operationId: "getSession",
    summary: "Get a session",
    tag: "sessions",
    params: ["id"],
    ok: { status: 200, schema: "Session" },
    errors: [400, 404, ...BACKEND],
  },
  {
    method: "delete",
    path: "/v1/sessions/{id}",
    operationId: "deleteSession",
    summary: "Delete a session",
    tag: "sessions",
    params: ["id"],
    ok: { status: 204, empty: true },
    errors: [400, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/keepalive",
    operationId: "keepalive",
    summary: "Extend a session's expiry (never past max_expires_at)",
    tag: "sessions",
    params: ["id"],
    body: { schema: "KeepaliveRequest" },
    ok: { status: 200, schema: "Session" },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/execute",
    operationId: "sessionExecute",
    summary: "Run Python in the session (state persists across calls)",
    tag: "sessions",
    params: ["id"],
    body: { schema: "SessionExecuteRequest", required: true },
    ok: { status: 200, schema: "ExecResult" },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/execute/stream",
    operationId: "sessionExecuteStream",
    summary: "Run Python in the session, with live output over SSE",
    tag: "sessions",
    params: ["id"],
    body: { schema: "SessionExecuteRequest", required: true },
    ok: { status: 200, events: true },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/bash",
    operationId: "sessionBash",
    summary: "Run a bash command in the session's /workspace",
    tag: "sessions",
    params: ["id"],
    body: { schema: "BashRequest", required: true },
    ok: { status: 200, schema: "ExecResult" },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/bash/stream",
    operationId: "sessionBashStream",
    summary: "Run a bash command in the session, with live output over SSE",
    tag: "sessions",
    params: ["id"],
    body: { schema: "BashRequest", required: true },
    ok: { status: 200, events: true },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "get",
    path: "/v1/sessions/{id}/files",
    operationId: "listSessionFiles",
    summary: "List the workspace (files and directories, by path, paginated)",
    tag: "session files",
    params: ["id"],
    query: true,
    ok: { status: 200, schema: "WorkspaceList" },
    errors: [400, 404, 422, ...BACKEND],
  },
  {
    method: "post",
    path: "/v1/sessions/{id}/files",
    operationId: "copyFileToSession",
    summary: "Copy a stored file (from /v1/files) into the workspace",
    tag: "session files",
    params: ["id"],
    body: { schema: "CopyFileRequest", required: true },
    ok: { status: 201, schema: "WrittenFile" },
    errors: [...JSON_BODY, 404, ...BACKEND],
  },
  {
    method: "put",
    path: "/v1/sessions/{id}/files/{path}",
    operationId: "writeSessionFile",
    summary: "Write a workspace file (raw body)",
    tag: "session files",
    params: ["id", "path"],
    body: { raw: true },
    ok: { status: 201, schema: "WrittenFile" },
    errors: [400, 404, 411, 413, 415, 422, ...BACKEND],
  },
  {
    method: "get",
    path: "/v1/sessions/{id}/files/{path}",
    operationId: "readSessionFile",
    summary: "Read a workspace file's bytes",
    tag: "session files",
    params: ["id", "path"],
    ok: { status: 200, bytes: true },
    errors: [400, 404, 422, ...BACKEND],
  },
];
