/**
 * The document's reusable parts, converted from the zod schemas with zod 4's own
 * `z.toJSONSchema` (JSON Schema 2020-12, which OpenAPI 3.1 uses as is): the named request and
 * response schemas of `components.schemas`, and the path and query parameters.
 */
import { z } from "zod";
import type { Config } from "../config.js";
import * as R from "../responses.js";
import { listQuery, schemas, uploadForm } from "../schemas.js";

export type JsonObject = Record<string, unknown>;

/** A reference to a named schema of `components.schemas`. */
export const REF = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export const PARAMS: Record<string, JsonObject> = {
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
export function queryParams(): JsonObject[] {
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

/** `components.schemas`: the request schemas (as accepted) and the response schemas (as sent). */
export function schemaComponents(config: Config): Record<string, JsonObject> {
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
  return { ...requestSchemas, ...responseSchemas };
}
