/**
 * The OpenAPI 3.1 document of the REST contract, generated from the zod schemas the server
 * validates requests with (schemas.ts) and types its answers with (responses.ts) — zod 4's
 * own `z.toJSONSchema` (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Nothing here
 * restates a field: the operations below only say which schema goes where, and which
 * statuses a route answers.
 */
import { z } from "zod";
import type { Config } from "./config.js";
import { RETRY_AFTER_SECONDS } from "./http-errors.js";
import * as R from "./responses.js";
import { listQuery, schemas, uploadForm } from "./schemas.js";
import { API_VERSION } from "./version.js";

type JsonObject = Record<string, unknown>;

const REF = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Every status we answer, with the contract's meaning. */
const STATUS_TEXT: Record<number, string> = {
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

interface Operation {
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

const PARAMS: Record<string, JsonObject> = {
  id: {
    name: "id",
    in: "path",
    required: true,
    description: "The session id; anything but code-session-<uuid v4> is 404",
    schema: z.toJSONSchema(R.sessionResponse.shape.session_id),
  },
  file_id: { name: "file_id", in: "path", required: true, schema: { type: "string" } },
  path: {
    name: "path",
    in: "path",
    required: true,
    description:
      "Workspace path relative to /workspace; may contain `/` (each segment percent-encoded). Absolute paths, `..`, `.`, empty segments and control characters are 422.",
    schema: { type: "string" },
  },
};

/** `limit` and `cursor`, from the zod query schema. */
function queryParams(): JsonObject[] {
  return Object.entries(listQuery.shape).map(([name, schema]) => {
    const { $schema: _drop, ...json } = z.toJSONSchema(schema.unwrap(), { io: "output" }) as JsonObject;
    return {
      name,
      in: "query",
      required: false,
      description:
        name === "limit"
          ? "Page size; without it the whole list is returned"
          : "The next_cursor of the previous page (opaque)",
      schema: json,
    };
  });
}

/** Converts a registry of named zod schemas into `components.schemas` entries. */
function components(entries: Record<string, z.ZodType>, io: "input" | "output"): Record<string, JsonObject> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(entries)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, {
    io,
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, JsonObject> };
  return Object.fromEntries(
    Object.entries(out.schemas).map(([id, s]) => {
      const { $schema: _s, $id: _i, ...rest } = s;
      return [id, rest];
    }),
  );
}

function successResponse(ok: Operation["ok"]): JsonObject {
  if ("schema" in ok)
    return { description: "Success", content: { "application/json": { schema: REF(ok.schema) } } };
  if ("empty" in ok) return { description: "Done (no body)" };
  if ("bytes" in ok) {
    return {
      description:
        "The raw bytes, with Content-Length, X-Content-Type-Options: nosniff and Content-Disposition: attachment",
      content: {
        "application/octet-stream": {
          schema: { type: "string", contentMediaType: "application/octet-stream" },
        },
      },
    };
  }
  if ("events" in ok) {
    return {
      description:
        "text/event-stream: `output` events (StreamOutputEvent) while the code runs, then exactly one `result` (StreamResultEvent) or `error` (StreamErrorEvent). Validation errors come before the stream as JSON errors.",
      content: {
        "text/event-stream": {
          schema: { type: "string" },
          "x-sse-events": {
            output: REF("StreamOutputEvent"),
            result: REF("StreamResultEvent"),
            error: REF("StreamErrorEvent"),
          },
        },
      },
    };
  }
  return {
    description: "Success",
    content: {
      [ok.text]: { schema: ok.text === "application/json" ? { type: "object" } : { type: "string" } },
    },
  };
}

/** The OpenAPI 3.1 document for a server running with `config` (limits appear in the schemas). */
export function openApiDocument(config: Config): JsonObject {
  const s = schemas(config);
  const requestSchemas = components(
    {
      ExecuteRequest: s.execute,
      SessionExecuteRequest: s.sessionExecute,
      BashRequest: s.bash,
      CreateSessionRequest: s.createSession,
      KeepaliveRequest: s.keepalive,
      CopyFileRequest: s.copyFile,
      UploadForm: uploadForm,
    },
    "input",
  );
  const responseSchemas = components(
    {
      Error: R.errorResponse,
      Health: R.healthResponse,
      Liveness: R.livenessResponse,
      Readiness: R.readinessResponse,
      Session: R.sessionResponse,
      SessionList: R.sessionListResponse,
      UploadedFile: R.uploadedFileResponse,
      FileMeta: R.fileMetaResponse,
      FileList: R.fileListResponse,
      ProducedFile: R.producedFileResponse,
      ExecResult: R.execResponse,
      StreamOutputEvent: R.streamOutputEvent,
      StreamResultEvent: R.streamResultEvent,
      StreamErrorEvent: R.streamErrorEvent,
      WorkspaceEntry: R.workspaceEntryResponse,
      WorkspaceList: R.workspaceListResponse,
      WrittenFile: R.writtenFileResponse,
    },
    "output",
  );

  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const op of OPERATIONS) {
    const responses: Record<string, JsonObject> = { [String(op.ok.status)]: successResponse(op.ok) };
    const errors = new Set(op.errors);
    if (!op.open) errors.add(401);
    errors.add(500);
    for (const status of [...errors].sort((a, b) => a - b)) {
      if (op.path === "/health" && status === 503) {
        responses["503"] = {
          description: "The backend does not answer",
          content: { "application/json": { schema: REF("Health") } },
        };
        continue;
      }
      responses[String(status)] = {
        description: STATUS_TEXT[status] ?? "Error",
        content: { "application/json": { schema: REF("Error") } },
        ...(RETRY_AFTER_SECONDS[status] !== undefined
          ? {
              headers: {
                "Retry-After": {
                  schema: { type: "integer" },
                  description: `Seconds to wait before retrying (${RETRY_AFTER_SECONDS[status]})`,
                },
              },
            }
          : {}),
        ...(status === 401
          ? {
              headers: {
                "WWW-Authenticate": {
                  schema: { type: "string" },
                  description: 'Bearer realm="code-interpreter"',
                },
              },
            }
          : {}),
      };
    }
    const operation: JsonObject = {
      operationId: op.operationId,
      summary: op.summary,
      tags: [op.tag],
      ...(op.description ? { description: op.description } : {}),
      parameters: [...(op.params ?? []).map((p) => PARAMS[p]), ...(op.query ? queryParams() : [])],
      responses,
      ...(op.open ? { security: [] } : {}),
    };
    if (op.body) {
      if ("schema" in op.body) {
        operation.requestBody = {
          required: op.body.required ?? false,
          description: "JSON (read whatever the Content-Type; gzip, deflate or br Content-Encoding accepted)",
          content: { "application/json": { schema: REF(op.body.schema) } },
        };
      } else if ("multipart" in op.body) {
        operation.requestBody = {
          required: true,
          content: { "multipart/form-data": { schema: REF(op.body.multipart) } },
        };
      } else {
        operation.requestBody = {
          required: true,
          description: "The file's bytes, stored as sent (Content-Length required)",
          content: {
            "application/octet-stream": {
              schema: { type: "string", contentMediaType: "application/octet-stream" },
            },
          },
        };
      }
    }
    (paths[op.path] ??= {})[op.method] = operation;
  }

  return {
    openapi: "3.1.0",
    info: {
      title: "code-interpreter",
      version: API_VERSION,
      description:
        'Run untrusted Python and bash for AI agents in locked-down containers or pods: one-shot execution (with live output over SSE), a file store, and long-lived sessions. A superset of the onyx code-interpreter API. Errors are always `{"detail": "..."}`.',
      license: { name: "MIT", identifier: "MIT" },
    },
    tags: [
      { name: "execute", description: "One-shot runs" },
      { name: "sessions", description: "Long-lived executors with a persistent /workspace" },
      { name: "session files", description: "Files in a session's /workspace" },
      { name: "files", description: "The file store" },
      { name: "service", description: "Health, metrics and this documentation" },
    ],
    security: [{ bearerAuth: [] }, {}],
    paths,
    components: {
      schemas: { ...requestSchemas, ...responseSchemas },
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "Required when the server sets API_KEYS; every route but GET /health then needs it",
        },
      },
    },
  };
}
