/**
 * Request bodies, validated with zod. Types are strict (a string is not a number); unknown
 * extra fields are ignored. Errors become 422 with the field named (see http-errors.ts).
 */
import { z } from "zod";
import type { Config } from "./config.js";

/** "is required" for a missing field, "must be <type>" for a wrong one. */
const typed = (what: string) => ({
  error: (iss: { input: unknown }) => (iss.input === undefined ? "is required" : `must be ${what}`),
});

function timeoutMs(max: number) {
  return z
    .number(typed("an integer number of milliseconds"))
    .int("must be an integer number of milliseconds")
    .min(1, "must be at least 1")
    .max(max, `must be at most ${max} (MAX_EXEC_TIMEOUT_MS)`)
    .nullish();
}

const positiveSeconds = z
  .number(typed("an integer number of seconds"))
  .int("must be an integer number of seconds")
  .min(1, "must be at least 1")
  .nullish();

const stdin = z.string(typed("a string or null")).nullish();

const stagedFiles = z
  .array(
    z.object(
      {
        path: z.string(typed("a string")),
        file_id: z.string(typed("a string")).min(1, "must not be empty"),
      },
      typed("an object with path and file_id"),
    ),
    typed("an array of {path, file_id}"),
  )
  .nullish();

export function schemas(config: Config) {
  const exec = {
    code: z.string(typed("a string")),
    stdin,
    timeout_ms: timeoutMs(config.maxExecTimeoutMs),
    last_line_interactive: z.boolean(typed("a boolean")).nullish(),
  };
  return {
    execute: z.object({ ...exec, files: stagedFiles }, typed("a JSON object")),
    sessionExecute: z.object(
      {
        ...exec,
        reset: z
          .boolean(typed("a boolean"))
          .nullish()
          .meta({
            description:
              "true: clear the session's Python state (a fresh interpreter) before running the code; " +
              "the result then carries state_reset",
          }),
        files: z
          .unknown()
          .refine((v) => v === undefined || v === null, {
            message: "is not accepted on a session; upload with PUT /v1/sessions/{id}/files/{path}",
          })
          .optional()
          .meta({ type: "null", description: "Not accepted on a session (422 unless absent or null)" }),
      },
      typed("a JSON object"),
    ),
    bash: z.object(
      {
        cmd: z.string(typed("a string")).min(1, "must not be empty"),
        stdin,
        timeout_ms: timeoutMs(config.maxExecTimeoutMs),
      },
      typed("a JSON object"),
    ),
    createSession: z.object(
      {
        files: stagedFiles,
        ttl_seconds: positiveSeconds,
        idle_timeout_seconds: positiveSeconds,
        // Checked by core's validateMetadata (limits shared with the backends); the meta is
        // what the OpenAPI document shows.
        metadata: z
          .unknown()
          .optional()
          .meta({
            type: "object",
            additionalProperties: { type: "string", maxLength: 256 },
            maxProperties: 32,
            description:
              "Flat string map: at most 32 keys of 1-64 characters, values up to 256, 4096 bytes as JSON",
          }),
      },
      typed("a JSON object"),
    ),
    keepalive: z.object({ ttl_seconds: positiveSeconds }, typed("a JSON object")),
    copyFile: z.object(
      {
        path: z.string(typed("a string")),
        file_id: z.string(typed("a string")).min(1, "must not be empty"),
      },
      typed("a JSON object with path and file_id"),
    ),
  };
}

/** Largest `limit` of a list page. */
export const MAX_PAGE_LIMIT = 1000;

/** Query of every list route: `?limit=<1..1000>&cursor=<next_cursor of the previous page>`. */
export const listQuery = z.object({
  limit: z.coerce
    .number(typed(`an integer from 1 to ${MAX_PAGE_LIMIT}`))
    .int(`must be an integer from 1 to ${MAX_PAGE_LIMIT}`)
    .min(1, "must be at least 1")
    .max(MAX_PAGE_LIMIT, `must be at most ${MAX_PAGE_LIMIT}`)
    .optional(),
  cursor: z
    .string(typed("a string (the next_cursor of the previous page)"))
    .min(1, "must not be empty")
    .optional(),
});

/** The multipart body of POST /v1/files (parsed by multer; this is its description). */
export const uploadForm = z.object({
  file: z.file().describe("The file; its name is taken from the part's filename"),
});

export type Schemas = ReturnType<typeof schemas>;

/** Parses a JSON body; an absent body (no JSON content type, or none at all) counts as `{}`. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  return schema.parse(body === undefined ? {} : body);
}
