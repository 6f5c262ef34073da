/**
 * What the Onyx app's `CodeInterpreterClient` (onyx-dot-app/onyx,
 * backend/onyx/tools/tool_implementations/python/code_interpreter_client.py) reads from us,
 * restated as zod schemas with the field names and types of its pydantic models, plus its
 * version gate (`@requires("0.4.0")` on the session methods). pydantic (lax mode) accepts an
 * int for a float field but no string, and an int field only whole numbers.
 */
import { z } from "zod";

const pyInt = z.number().int();
const pyFloat = z.number();

export const WorkspaceFile = z.object({
  path: z.string(),
  kind: z.enum(["file", "directory"]),
  file_id: z.string().nullable().optional(),
});

export const ExecuteResponse = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: pyInt.nullable(),
  timed_out: z.boolean(),
  duration_ms: pyInt,
  files: z.array(WorkspaceFile),
});

export const StreamOutputEvent = z.object({ stream: z.enum(["stdout", "stderr"]), data: z.string() });
export const StreamResultEvent = z.object({
  exit_code: pyInt.nullable(),
  timed_out: z.boolean(),
  duration_ms: pyInt,
  files: z.array(WorkspaceFile),
});
export const StreamErrorEvent = z.object({ message: z.string() });

export const CreateSessionResponse = z.object({ session_id: z.string(), expires_at: pyFloat });

export const BashExecResponse = z.object({
  stdout: z.string(),
  stderr: z.string(),
  exit_code: pyInt.nullable(),
  timed_out: z.boolean(),
  duration_ms: pyInt,
});

/** health(): healthy when `status == "ok"`; the version defaults to "0.0.0" when absent or empty. */
export function onyxHealth(body: unknown): { healthy: boolean; version: string } {
  const b = (body ?? {}) as { status?: unknown; version?: unknown };
  const version = typeof b.version === "string" && b.version !== "" ? b.version : "0.0.0";
  return { healthy: b.status === "ok", version };
}

/**
 * The client's version parse: a leading "v" and any "-..." / "+..." suffix are dropped, missing
 * parts are 0, and anything unparsable counts as 0.0.0 (treated as ancient).
 */
export function parseOnyxVersion(version: string): [number, number, number] {
  const clean = version.replace(/^v+/, "").replace(/[-+].*$/, "");
  const parts = clean.split(".");
  const num = (s: string | undefined): number | null => {
    if (s === undefined) return 0;
    const t = s.trim();
    return /^[+-]?\d+(_\d+)*$/.test(t) ? Number(t.replaceAll("_", "")) : null;
  };
  const [a, b, c] = [num(parts[0] ?? ""), num(parts[1]), num(parts[2])];
  if (a === null || b === null || c === null) return [0, 0, 0];
  return [a, b, c];
}

/** `_is_version_gte`: tuple comparison of the parsed versions. */
export function onyxVersionGte(actual: string, required: string): boolean {
  const x = parseOnyxVersion(actual);
  const y = parseOnyxVersion(required);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! > y[i]!;
  return true;
}

/** The minimum the client's session methods (create_session, execute_bash_in_session, delete_session) require. */
export const ONYX_SESSIONS_MIN_VERSION = "0.4.0";
