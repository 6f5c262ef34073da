/**
 * The MCP tools: one-shot Python, and sessions (create, run Python, run bash, write / read /
 * list files, delete). Each is a thin call of the REST route it names, so its inputs are the
 * route's fields (snake_case, as in API.md) and its result is the route's JSON answer.
 * Sessions created here are remembered as the MCP session's own, and deleted when it ends.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { isSessionId } from "@code-interpreter/core";
import { LoopbackError, type Loopback } from "./loopback.js";

/** Largest file `read_session_file` returns inline (an MCP answer goes into a model's context). */
export const MAX_READ_BYTES = 1024 * 1024;

export interface ToolContext {
  api: Loopback;
  /** Sessions created through this MCP session (deleted when it ends). */
  owned: Set<string>;
  /** `idle_timeout_seconds` of created sessions when the caller gives none. */
  defaultIdleTimeoutSeconds: number;
}

/**
 * URL paths are built only from a valid session id and safe path segments: a "." or ".."
 * segment would be resolved away by URL parsing and reach another route. Refused with the
 * statuses the REST routes give (404 for a non-session id, 422 for an unsafe path).
 */
function sessionPath(id: string): string {
  if (!isSessionId(id)) throw new LoopbackError(404, `session ${JSON.stringify(id)} not found`);
  return `/v1/sessions/${id}`;
}

function filePath(id: string, path: string): string {
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new LoopbackError(
      422,
      `path: ${JSON.stringify(path)} must be relative to /workspace, without empty, "." or ".." segments`,
    );
  }
  return `${sessionPath(id)}/files/${segments.map(encodeURIComponent).join("/")}`;
}

function ok(value: unknown): CallToolResult {
  return { content: [{ type: "text", text: JSON.stringify(value ?? { ok: true }, null, 2) }] };
}

function fail(message: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text: message }] };
}

/** REST failures become tool errors the model can read ("404: session ... not found"). */
async function tool(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof LoopbackError) return fail(`${err.status}: ${err.detail}`);
    throw err;
  }
}

const sessionId = z.string().describe("A session id from create_session (code-session-<uuid>)");
const timeoutMs = z
  .number()
  .int()
  .positive()
  .optional()
  .describe("Run time limit in milliseconds (default: the server's DEFAULT_EXEC_TIMEOUT_MS)");
const stdin = z.string().optional().describe("Text given to the program's stdin");
const stagedFiles = z
  .array(
    z.object({
      path: z.string().describe("Relative path in /workspace"),
      file_id: z.string().describe("Id of a file uploaded with POST /v1/files"),
    }),
  )
  .optional()
  .describe("Stored files to place in /workspace first");
const encoding = z
  .enum(["utf8", "base64"])
  .optional()
  .describe('"utf8" (default) for text, "base64" for binary content');

export function registerTools(server: McpServer, ctx: ToolContext): void {
  const { api, owned, defaultIdleTimeoutSeconds } = ctx;

  server.registerTool(
    "execute_python",
    {
      title: "Run Python once",
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      description:
        "Runs Python code in a fresh, locked-down sandbox (no network) that is removed afterwards. " +
        "A bare expression on the last line prints its value. Returns stdout, stderr, exit_code, " +
        "timed_out, duration_ms and the files the code wrote (saved to the file store).",
      inputSchema: {
        code: z.string().describe("Python source"),
        timeout_ms: timeoutMs,
        stdin,
        files: stagedFiles,
      },
    },
    (args, extra) => tool(async () => ok(await api.json("POST", "/v1/execute", args, extra.signal))),
  );

  server.registerTool(
    "create_session",
    {
      title: "Create a session",
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
      description:
        "Starts a long-lived sandbox whose /workspace persists across calls. It belongs to this MCP " +
        "session and is deleted when the MCP session ends (or at its ttl, or after " +
        `idle_timeout_seconds unused: default ${defaultIdleTimeoutSeconds}). Returns the session, ` +
        "with session_id for the other session tools.",
      inputSchema: {
        ttl_seconds: z
          .number()
          .int()
          .positive()
          .optional()
          .describe("Lifetime (default and max: the server's)"),
        idle_timeout_seconds: z
          .number()
          .int()
          .positive()
          .optional()
          .describe(`Delete after this long unused (default ${defaultIdleTimeoutSeconds})`),
        metadata: z.record(z.string(), z.string()).optional().describe("String labels kept with the session"),
        files: stagedFiles,
      },
    },
    (args, extra) =>
      tool(async () => {
        const body = {
          ...args,
          idle_timeout_seconds: args.idle_timeout_seconds ?? defaultIdleTimeoutSeconds,
        };
        const session = (await api.json("POST", "/v1/sessions", body, extra.signal)) as {
          session_id: string;
        };
        owned.add(session.session_id);
        return ok(session);
      }),
  );

  server.registerTool(
    "execute_in_session",
    {
      title: "Run Python in a session",
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      description:
        "Runs Python code in the session's /workspace (files persist between calls). A bare " +
        "expression on the last line prints its value.",
      inputSchema: {
        session_id: sessionId,
        code: z.string().describe("Python source"),
        timeout_ms: timeoutMs,
        stdin,
      },
    },
    ({ session_id, ...body }, extra) =>
      tool(async () => ok(await api.json("POST", `${sessionPath(session_id)}/execute`, body, extra.signal))),
  );

  server.registerTool(
    "bash_in_session",
    {
      title: "Run bash in a session",
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
      description: "Runs a bash command (a fresh process) in the session's /workspace.",
      inputSchema: {
        session_id: sessionId,
        cmd: z.string().describe("The command line"),
        timeout_ms: timeoutMs,
        stdin,
      },
    },
    ({ session_id, ...body }, extra) =>
      tool(async () => ok(await api.json("POST", `${sessionPath(session_id)}/bash`, body, extra.signal))),
  );

  server.registerTool(
    "write_session_file",
    {
      title: "Write a file in a session",
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      description: "Creates or replaces a file under the session's /workspace (parent directories are made).",
      inputSchema: {
        session_id: sessionId,
        path: z.string().describe("Relative path in /workspace, e.g. data/in.csv"),
        content: z.string().describe("The file's content, as text or base64 (see encoding)"),
        encoding,
      },
    },
    ({ session_id, path, content, encoding: enc }, extra) =>
      tool(async () => {
        const bytes = enc === "base64" ? Buffer.from(content, "base64") : Buffer.from(content, "utf8");
        return ok(await api.put(filePath(session_id, path), bytes, extra.signal));
      }),
  );

  server.registerTool(
    "read_session_file",
    {
      title: "Read a file in a session",
      annotations: { readOnlyHint: true, openWorldHint: false },
      description:
        `Returns a file of the session's /workspace (at most ${MAX_READ_BYTES} bytes), as text, or as ` +
        "base64 when asked or when it is not valid UTF-8.",
      inputSchema: {
        session_id: sessionId,
        path: z.string().describe("Relative path in /workspace"),
        encoding,
      },
    },
    ({ session_id, path, encoding: enc }, extra) =>
      tool(async () => {
        const bytes = await api.bytes(filePath(session_id, path), extra.signal);
        if (bytes.byteLength > MAX_READ_BYTES) {
          return fail(
            `413: ${path} is ${bytes.byteLength} bytes, more than the ${MAX_READ_BYTES} this tool returns; ` +
              `download it with GET ${filePath(session_id, path)}`,
          );
        }
        if (enc !== "base64") {
          try {
            const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
            return ok({ path, encoding: "utf8", size_bytes: bytes.byteLength, content: text });
          } catch {
            // not UTF-8: fall through to base64
          }
        }
        const content = Buffer.from(bytes).toString("base64");
        return ok({ path, encoding: "base64", size_bytes: bytes.byteLength, content });
      }),
  );

  server.registerTool(
    "list_session_files",
    {
      title: "List a session's files",
      annotations: { readOnlyHint: true, openWorldHint: false },
      description: "Lists the files and directories under the session's /workspace.",
      inputSchema: { session_id: sessionId },
    },
    ({ session_id }, extra) =>
      tool(async () =>
        ok(await api.json("GET", `${sessionPath(session_id)}/files`, undefined, extra.signal)),
      ),
  );

  server.registerTool(
    "delete_session",
    {
      title: "Delete a session",
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      description: "Deletes the session and its sandbox now.",
      inputSchema: { session_id: sessionId },
    },
    ({ session_id }, extra) =>
      tool(async () => {
        await api.json("DELETE", sessionPath(session_id), undefined, extra.signal);
        owned.delete(session_id);
        return ok({ deleted: session_id });
      }),
  );
}
