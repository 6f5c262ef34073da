/**
 * /mcp with the MCP SDK's own client over streamable HTTP, against the real server on the
 * real Docker engine: tools listed with JSON-schema inputs, one-shot Python, a session with
 * bash and files, tool errors, API-key auth, and an MCP session's own sessions deleted (their
 * containers gone) when it ends.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createRequire } from "node:module";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorLimits, loadConfig } from "../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { pino } from "pino";
import { createApp } from "../src/index.js";
import { E2E_ENV, requireDockerEngine } from "./e2e/support.js";

/** The api package's version: what the MCP server announces. */
const PKG_VERSION = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
const KEY = `mcp-${randomUUID()}`;
const OTHER_KEY = `mcp-other-${randomUUID()}`;
const config = loadConfig({ ...E2E_ENV, API_KEYS: `${KEY},${OTHER_KEY}` });
const docker = new Dockerode();
interface Running {
  baseUrl: string;
  close(): Promise<void>;
}
let server: Running;
let dir: string;

/** createApp (real Docker backend, local file store) on 127.0.0.1:0. */
async function listen(mcpIdleTimeoutMs?: number): Promise<Running> {
  const backend = createDockerBackend({
    docker: new Dockerode(),
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
  });
  const files = new LocalFileStore({
    dir,
    maxFileBytes: config.maxFileSizeBytes,
    ttlSeconds: config.fileTtlSec,
  });
  const app = createApp({ backend, files, config, logger: pino({ level: "silent" }), mcpIdleTimeoutMs });
  const http = createServer(app);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  return {
    baseUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      await backend.close();
    },
  };
}

beforeAll(async () => {
  await requireDockerEngine();
  dir = await mkdtemp(join(tmpdir(), "ci-api-mcp-"));
  server = await listen();
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

async function connect(
  key = KEY,
  baseUrl = server.baseUrl,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** A tool's result: the JSON in its text content, and whether it is an error. */
async function call(client: Client, name: string, args: Record<string, unknown>) {
  const result = await client.callTool({ name, arguments: args });
  const content = result.content as Array<{ type: string; text: string }>;
  expect(content[0]?.type).toBe("text");
  const text = content[0]!.text;
  return { isError: result.isError === true, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

async function containerExists(name: string): Promise<boolean> {
  try {
    await docker.getContainer(name).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

async function restGet(path: string, key = KEY): Promise<number> {
  const res = await fetch(server.baseUrl + path, { headers: { authorization: `Bearer ${key}` } });
  await res.body?.cancel();
  return res.status;
}

describe("/mcp", () => {
  it("lists the tools, each with a JSON-schema input", async () => {
    const { client } = await connect();
    try {
      // The server announces the service's version (the api package's, as /health does).
      expect(client.getServerVersion()).toMatchObject({ name: "code-interpreter", version: PKG_VERSION });
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        "bash_in_session",
        "create_session",
        "delete_session",
        "execute_in_session",
        "execute_python",
        "list_session_files",
        "read_session_file",
        "write_session_file",
      ]);
      for (const t of tools) {
        expect(t.description).toBeTruthy();
        // Hints for agent hosts: reads are read-only, nothing reaches outside the sandbox.
        expect(t.annotations?.readOnlyHint).toBe(t.name.startsWith("read_") || t.name.startsWith("list_"));
        expect(t.annotations?.openWorldHint).toBe(false);
        expect(t.inputSchema.type).toBe("object");
      }
      const run = tools.find((t) => t.name === "execute_python")!;
      expect(run.inputSchema.required).toEqual(["code"]);
      expect(Object.keys(run.inputSchema.properties ?? {})).toEqual(
        expect.arrayContaining(["code", "timeout_ms", "stdin", "files"]),
      );
    } finally {
      await client.close();
    }
  }, 60_000);

  it("execute_python runs Python once and returns the REST answer", async () => {
    const { client } = await connect();
    try {
      const r = await call(client, "execute_python", {
        code: "import sys\nprint('hi')\nprint('e', file=sys.stderr)\n6 * 7",
      });
      expect(r.isError).toBe(false);
      expect(r.json()).toMatchObject({ stdout: "hi\n42\n", stderr: "e\n", exit_code: 0, timed_out: false });

      const bad = await call(client, "execute_python", { code: "1", timeout_ms: 10_000_000 });
      expect(bad.isError).toBe(true);
      expect(bad.text).toMatch(/^422: .*timeout_ms/);
    } finally {
      await client.close();
    }
  }, 60_000);

  it("creates a session, runs bash and Python in it, writes, reads and lists files", async () => {
    const { client, transport } = await connect();
    let sessionId = "";
    try {
      const created = await call(client, "create_session", { ttl_seconds: 300, metadata: { via: "mcp" } });
      expect(created.isError).toBe(false);
      sessionId = created.json().session_id as string;
      expect(sessionId).toMatch(/^code-session-/);
      // The MCP idle timeout (30 min) is the session's too when the caller sets none.
      expect(created.json()).toMatchObject({
        status: "running",
        metadata: { via: "mcp" },
        idle_timeout_seconds: 1800,
      });

      const bash = await call(client, "bash_in_session", {
        session_id: sessionId,
        cmd: "echo hi > a.txt && cat a.txt",
      });
      expect(bash.json()).toMatchObject({ stdout: "hi\n", exit_code: 0 });

      const py = await call(client, "execute_in_session", {
        session_id: sessionId,
        code: "open('a.txt').read().upper()",
      });
      expect(py.json()).toMatchObject({ stdout: "'HI\\n'\n", exit_code: 0 });
      // Two calls share the session's Python state (issue 9).
      await call(client, "execute_in_session", { session_id: sessionId, code: "x = 41" });
      const shared = await call(client, "execute_in_session", { session_id: sessionId, code: "x + 1" });
      expect(shared.json()).toMatchObject({ stdout: "42\n", exit_code: 0, state_reset: null });

      const w = await call(client, "write_session_file", {
        session_id: sessionId,
        path: "d/b.txt",
        content: "héllo",
      });
      expect(w.json()).toMatchObject({ path: "d/b.txt", size_bytes: 6 });
      const bin = await call(client, "write_session_file", {
        session_id: sessionId,
        path: "bin.dat",
        content: Buffer.from([0xff, 0, 1]).toString("base64"),
        encoding: "base64",
      });
      expect(bin.json()).toMatchObject({ size_bytes: 3 });

      expect(
        (await call(client, "read_session_file", { session_id: sessionId, path: "d/b.txt" })).json(),
      ).toEqual({
        path: "d/b.txt",
        encoding: "utf8",
        size_bytes: 6,
        content: "héllo",
      });
      // Not UTF-8: answered as base64 even though text was asked for.
      expect(
        (await call(client, "read_session_file", { session_id: sessionId, path: "bin.dat" })).json(),
      ).toMatchObject({
        encoding: "base64",
        content: "/wAB",
      });

      const list = (await call(client, "list_session_files", { session_id: sessionId })).json();
      expect(list.files).toEqual(
        expect.arrayContaining([
          { path: "a.txt", kind: "file", size_bytes: 3 },
          { path: "d", kind: "directory", size_bytes: 0 },
          { path: "d/b.txt", kind: "file", size_bytes: 6 },
        ]),
      );

      const missing = await call(client, "read_session_file", { session_id: sessionId, path: "nope.txt" });
      expect(missing.isError).toBe(true);
      expect(missing.text).toMatch(/^404: /);
      for (const path of ["../x", "a/../../x", "/etc/passwd", "a//b"]) {
        const unsafe = await call(client, "write_session_file", { session_id: sessionId, path, content: "" });
        expect(unsafe.isError).toBe(true);
        expect(unsafe.text).toMatch(/^422: /);
      }
      // Not a session id (".." would otherwise resolve to another route): 404 as on REST.
      for (const id of ["..", "../../execute", `${sessionId}/..`]) {
        const r = await call(client, "bash_in_session", { session_id: id, cmd: "true" });
        expect(r.isError).toBe(true);
        expect(r.text).toMatch(/^404: /);
      }

      // The session is an ordinary session of the same key on the REST API.
      expect(await restGet(`/v1/sessions/${sessionId}`)).toBe(200);
      expect(await restGet(`/v1/sessions/${sessionId}`, OTHER_KEY)).toBe(404);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
    // Ending the MCP session deleted the session it created: the container is gone.
    expect(sessionId).not.toBe("");
    expect(await containerExists(sessionId)).toBe(false);
    expect(await restGet(`/v1/sessions/${sessionId}`)).toBe(404);
  }, 120_000);

  it("delete_session deletes a session now", async () => {
    const { client, transport } = await connect();
    try {
      const id = (await call(client, "create_session", {})).json().session_id as string;
      expect(await containerExists(id)).toBe(true);
      expect((await call(client, "delete_session", { session_id: id })).json()).toEqual({ deleted: id });
      expect(await containerExists(id)).toBe(false);
      const again = await call(client, "delete_session", { session_id: id });
      expect(again.isError).toBe(true);
      expect(again.text).toMatch(/^404: /);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  }, 120_000);

  it("needs an API key (401 with the API's error shape), and an MCP session is its key's alone", async () => {
    const init = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    };
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const anonymous = await fetch(`${server.baseUrl}/mcp`, {
      method: "POST",
      headers,
      body: JSON.stringify(init),
    });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ detail: expect.stringMatching(/API key/) });

    await expect(connect("wrong-key")).rejects.toThrow();

    const { client, transport } = await connect();
    try {
      const sid = transport.sessionId!;
      expect(sid).toBeTruthy();
      const list = { jsonrpc: "2.0", id: 2, method: "tools/list", params: {} };
      const foreign = await fetch(`${server.baseUrl}/mcp`, {
        method: "POST",
        headers: {
          ...headers,
          authorization: `Bearer ${OTHER_KEY}`,
          "mcp-session-id": sid,
          "mcp-protocol-version": "2025-03-26",
        },
        body: JSON.stringify(list),
      });
      expect(foreign.status).toBe(404);
      expect(await foreign.json()).toMatchObject({ detail: expect.stringMatching(/MCP session/) });
      // The owner still uses it.
      expect((await client.listTools()).tools.length).toBe(8);
    } finally {
      await transport.terminateSession();
      await client.close();
    }
  }, 60_000);

  it("GET /mcp is 405: no standalone stream that would hold a graceful shutdown", async () => {
    const res = await fetch(`${server.baseUrl}/mcp`, {
      headers: { authorization: `Bearer ${KEY}`, accept: "text/event-stream" },
    });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST, DELETE");
    expect(await res.json()).toMatchObject({ detail: expect.stringMatching(/POST/) });
  });

  it("an idle MCP session ends and deletes its sessions", async () => {
    const idle = await listen(1500);
    try {
      const { client } = await connect(KEY, idle.baseUrl);
      const created = (await call(client, "create_session", { idle_timeout_seconds: 600 })).json();
      const id = created.session_id as string;
      expect(created.idle_timeout_seconds).toBe(600);
      expect(await containerExists(id)).toBe(true);
      const deadline = Date.now() + 20_000;
      while ((await containerExists(id)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 250));
      expect(await containerExists(id)).toBe(false);
      // The MCP session is gone too: its id is answered 404 and the client's call fails.
      await expect(client.listTools()).rejects.toThrow();
      await client.close();
    } finally {
      await idle.close();
    }
  }, 60_000);
});
