/**
 * The OpenAPI 3.1 document of the REST contract, generated from the zod schemas the server
 * validates requests with (schemas.ts) and types its answers with (responses.ts). Each
 * operation of operations.ts becomes a path item: its parameters, request body, success
 * answer and error answers (`{"detail"}`, with `Retry-After` / `WWW-Authenticate` where sent).
 */
import type { Config } from "../config.js";
import { RETRY_AFTER_SECONDS } from "../http-errors.js";
import { API_VERSION } from "../version.js";
import { PARAMS, REF, queryParams, schemaComponents, type JsonObject } from "./components.js";
import { OPERATIONS, STATUS_TEXT, type Operation } from "./operations.js";

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
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const op of OPERATIONS) {
    const responses: Record<string, JsonObject> = { [String(op.ok.status)]: successResponse(op.ok) };
    const errors = new Set(op.errors);
    if (!op.open) errors.add(401);
    errors.add(500);
    for (const status of [...errors].sort((a, b) => a - b)) {
      if (op.unavailable && status === 503) {
        responses["503"] = {
          description: op.unavailable.description,
          content: { "application/json": { schema: REF(op.unavailable.schema) } },
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
      schemas: schemaComponents(config),
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
