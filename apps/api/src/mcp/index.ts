/**
 * `/mcp`: the Model Context Protocol over the streamable HTTP transport (the official SDK),
 * behind the same API-key auth as every route. Stateful: `initialize` opens an MCP session
 * (`Mcp-Session-Id`), which belongs to the API key that opened it (another key gets 404, as
 * for sessions and files). Code-interpreter sessions created through it are deleted when it
 * ends: on `DELETE /mcp`, when it has been idle for `idleTimeoutMs`, or on `close()`. They
 * get that idle timeout too unless the caller sets one, so the sessions of an MCP session lost
 * with its process (an API restart) do not outlive it by much.
 */
import { randomUUID } from "node:crypto";
import express, { Router, type Request, type Response } from "express";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "pino";
import { contextOf } from "../context.js";
import { API_VERSION } from "../version.js";
import { createLoopback, loopbackBaseUrl, type Loopback } from "./loopback.js";
import { registerTools } from "./tools.js";

export interface McpOptions {
  logger: Logger;
  /**
   * An MCP session with no request for this long is closed (and its sessions deleted).
   * @default 1_800_000 (30 minutes)
   */
  idleTimeoutMs?: number;
  /**
   * Largest JSON-RPC body accepted.
   * @default 5 MiB
   */
  jsonLimitBytes?: number;
}

export interface McpEndpoint {
  router: Router;
  /** Open MCP sessions. */
  readonly size: number;
  /** Ends every MCP session, deleting the sessions they own. */
  close(): Promise<void>;
}

interface Entry {
  transport: StreamableHTTPServerTransport;
  owner: string | null;
  api: Loopback;
  owned: Set<string>;
  idle: NodeJS.Timeout | undefined;
  closing: Promise<void> | undefined;
}

function jsonRpcError(res: Response, status: number, message: string): void {
  // `detail` as every error of this API; the JSON-RPC fields for MCP clients.
  res.status(status).json({ detail: message, jsonrpc: "2.0", error: { code: -32000, message }, id: null });
}

/** The headers a tool's REST call carries: the caller's key, and its request id for the log. */
function forwardedHeaders(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof req.headers.authorization === "string") headers.authorization = req.headers.authorization;
  const id = req.id;
  // The API keeps request ids of up to 128 characters.
  if (typeof id === "string" || typeof id === "number")
    headers["x-request-id"] = `mcp-${String(id)}`.slice(0, 128);
  return headers;
}

export function mcpEndpoint(opts: McpOptions): McpEndpoint {
  const { logger } = opts;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30 * 60_000;
  const entries = new Map<string, Entry>();
  const router = Router();
  const json = express.json({ limit: opts.jsonLimitBytes ?? 5 * 1024 * 1024, type: () => true });

  /** Ends the MCP session once: deletes its sessions, closes its transport. */
  function end(sessionId: string, entry: Entry, why: string): Promise<void> {
    entry.closing ??= (async () => {
      entries.delete(sessionId);
      clearTimeout(entry.idle);
      const owned = [...entry.owned];
      entry.owned.clear();
      await Promise.all(
        owned.map((id) =>
          entry.api.json("DELETE", `/v1/sessions/${encodeURIComponent(id)}`).catch((err: unknown) => {
            // 404: already gone (deleted, expired). Anything else is left to the session's TTL.
            if ((err as { status?: number }).status !== 404) {
              logger.warn(
                { err, session: id, mcpSession: sessionId },
                "could not delete an MCP-owned session",
              );
            }
          }),
        ),
      );
      logger.info({ mcpSession: sessionId, deleted: owned.length, why }, "MCP session ended");
      await entry.transport.close().catch(() => undefined);
    })();
    return entry.closing;
  }

  function touch(sessionId: string, entry: Entry): void {
    clearTimeout(entry.idle);
    entry.idle = setTimeout(() => void end(sessionId, entry, "idle"), idleTimeoutMs);
    entry.idle.unref();
  }

  /** The entry of a request's Mcp-Session-Id, if it exists and belongs to the caller's key. */
  function existing(req: Request): [string, Entry] | undefined {
    const sid = req.headers["mcp-session-id"];
    if (typeof sid !== "string") return undefined;
    const entry = entries.get(sid);
    if (!entry || entry.closing || entry.owner !== contextOf(req).owner) return undefined;
    return [sid, entry];
  }

  router.post("/", json, async (req, res) => {
    const found = existing(req);
    if (found) {
      touch(...found);
      await found[1].transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.headers["mcp-session-id"] !== undefined) {
      return jsonRpcError(res, 404, "unknown or ended MCP session: send initialize without Mcp-Session-Id");
    }
    if (!isInitializeRequest(req.body)) {
      return jsonRpcError(res, 400, "no Mcp-Session-Id: the first request must be initialize");
    }

    const entry: Entry = {
      transport: undefined as unknown as StreamableHTTPServerTransport,
      owner: contextOf(req).owner,
      api: createLoopback(loopbackBaseUrl(req), forwardedHeaders(req)),
      owned: new Set(),
      idle: undefined,
      closing: undefined,
    };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        entries.set(sid, entry);
        touch(sid, entry);
      },
      onsessionclosed: (sid) => end(sid, entry, "closed by the client"),
    });
    entry.transport = transport;
    transport.onclose = () => {
      if (transport.sessionId) void end(transport.sessionId, entry, "transport closed");
    };
    const server = new McpServer({ name: "code-interpreter", version: API_VERSION });
    registerTools(server, {
      api: entry.api,
      owned: entry.owned,
      defaultIdleTimeoutSeconds: Math.max(1, Math.ceil(idleTimeoutMs / 1000)),
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  // No standalone server-to-client stream: the tools never send unsolicited messages, and an
  // endless GET would hold the server's graceful shutdown until its deadline. The transport
  // spec's answer for that is 405; answers to POSTs still stream.
  router.get("/", (_req, res) => {
    res.setHeader("Allow", "POST, DELETE");
    jsonRpcError(res, 405, "this server offers no standalone SSE stream on GET /mcp; use POST");
  });
  // DELETE: the client ends the MCP session (and with it the sessions it created).
  router.delete("/", async (req, res) => {
    const found = existing(req);
    if (!found) return jsonRpcError(res, 404, "unknown or ended MCP session");
    await found[1].transport.handleRequest(req, res);
  });

  return {
    router,
    get size() {
      return entries.size;
    },
    async close() {
      await Promise.all([...entries].map(([sid, entry]) => end(sid, entry, "server closing")));
    },
  };
}
