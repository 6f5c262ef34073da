/**
 * End to end on the real Docker engine: the API over HTTP (port 0) with the Docker backend
 * and the local file store, as a deployment runs it. Never skipped: with no engine it fails
 * and says how to get one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorLimits } from "../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { startServer, type RunningServer } from "../src/index.js";
import { parseSse, testConfig } from "./helpers.js";
import { requireDockerEngine } from "./e2e/support.js";

const config = testConfig({
  EXECUTOR_IMAGE: process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest",
  MAX_FILE_SIZE_MB: "10",
  MAX_EXEC_TIMEOUT_MS: "30000",
  SESSION_MAX_LIFETIME_SECONDS: "600",
  MEMORY_LIMIT_MB: "128",
  CPU_TIME_LIMIT_SEC: "10",
  SHUTDOWN_TIMEOUT_SECONDS: "5",
});
const backend = createDockerBackend({
  image: config.executorImage,
  limits: executorLimits(config),
  sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
  maxFileBytes: config.maxFileSizeBytes,
});
describe("API on the real Docker engine", () => {
  let running: RunningServer;
  let dir: string;
  let url: string;
  const created: string[] = [];

  const json = async (path: string, body?: unknown, method = body === undefined ? "GET" : "POST") => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  beforeAll(async () => {
    await requireDockerEngine();
    dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-"));
    const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 600 });
    running = await startServer({
      backend,
      files,
      config,
      logger: pino({ level: "silent" }),
      host: "127.0.0.1",
      port: 0,
      reaper: false,
    });
    url = running.url;
  });

  afterAll(async () => {
    for (const id of created) await json(`/v1/sessions/${id}`, undefined, "DELETE");
    await running?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers /health with the docker backend", async () => {
    expect(await json("/health")).toMatchObject({ status: 200, body: { status: "ok", backend: "docker" } });
  });

  it("runs one-shot code: REPL last line, staged input, produced files round-trip", async () => {
    const form = new FormData();
    form.append("file", new Blob([Buffer.from("a,b\n1,2\n")]), "in.csv");
    const up = await fetch(`${url}/v1/files`, { method: "POST", body: form });
    expect(up.status).toBe(201);
    const { file_id } = (await up.json()) as { file_id: string };

    const res = await json("/v1/execute", {
      code: [
        "rows = open('data/in.csv').read().splitlines()",
        "open('out.bin', 'wb').write(bytes(range(256)))",
        "print(len(rows))",
        "6 * 7",
      ].join("\n"),
      files: [{ path: "data/in.csv", file_id }],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ stdout: "2\n42\n", stderr: "", exit_code: 0, timed_out: false });
    const produced = res.body.files as Array<{ path: string; kind: string; file_id: string }>;
    expect(produced.map((f) => f.path)).toEqual(["out.bin"]);
    const down = await fetch(`${url}/v1/files/${produced[0]!.file_id}`);
    expect(down.headers.get("content-disposition")).toBe('attachment; filename="out.bin"');
    expect(
      Buffer.from(await down.arrayBuffer()).equals(Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    ).toBe(true);
  });

  it("times out with exit_code null and keeps the output so far", async () => {
    const res = await json("/v1/execute", {
      code: "print('before', flush=True)\nwhile True: pass",
      timeout_ms: 1000,
    });
    expect(res.body).toMatchObject({ stdout: "before\n", exit_code: null, timed_out: true });
  });

  it("rejects bad input before touching Docker", async () => {
    expect((await json("/v1/execute", { code: "1", timeout_ms: 30_001 })).status).toBe(422);
    expect((await json("/v1/execute", { code: "1", files: [{ path: "../x", file_id: "a" }] })).status).toBe(
      422,
    );
    expect(
      (await json("/v1/execute", { code: "1", files: [{ path: "x", file_id: "0".repeat(32) }] })).status,
    ).toBe(404);
  });

  it("streams output events before the single result", async () => {
    const res = await fetch(`${url}/v1/execute/stream`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        code: "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\nprint('e', file=sys.stderr)",
        timeout_ms: 10_000,
      }),
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event);
    expect(names.at(-1)).toBe("result");
    expect(names.filter((n) => n === "result")).toHaveLength(1);
    const out = events
      .filter((e) => e.event === "output")
      .map((e) => e.data as { stream: string; data: string });
    expect(
      out
        .filter((o) => o.stream === "stdout")
        .map((o) => o.data)
        .join(""),
    ).toBe("0\n1\n2\n");
    expect(
      out
        .filter((o) => o.stream === "stderr")
        .map((o) => o.data)
        .join(""),
    ).toBe("e\n");
    expect(events.at(-1)?.data).toMatchObject({ exit_code: 0, timed_out: false, files: [] });
  });

  it("runs a session: staged file, python + bash, workspace files, keepalive, delete", async () => {
    const form = new FormData();
    form.append("file", new Blob([Buffer.from("hello")]), "h.txt");
    const { file_id } = (await (await fetch(`${url}/v1/files`, { method: "POST", body: form })).json()) as {
      file_id: string;
    };
    const c = await json("/v1/sessions", {
      files: [{ path: "in/h.txt", file_id }],
      ttl_seconds: 120,
      metadata: { test: "e2e" },
    });
    expect(c.status).toBe(201);
    const id = c.body.session_id as string;
    created.push(id);
    expect(c.body).toMatchObject({ status: "running", metadata: { test: "e2e" } });

    const py = await json(`/v1/sessions/${id}/execute`, { code: "x = open('in/h.txt').read()\nx.upper()" });
    expect(py.body).toMatchObject({ stdout: "'HELLO'\n", exit_code: 0 });
    // State persists in the workspace between calls.
    await json(`/v1/sessions/${id}/execute`, { code: "open('made.txt', 'w').write('made')" });
    const sh = await json(`/v1/sessions/${id}/bash`, { cmd: "cat made.txt; echo; ls in" });
    expect(sh.body).toMatchObject({ stdout: "made\nh.txt\n", exit_code: 0, files: [] });

    const bytes = Buffer.from([0, 255, 10, 13, 1, 2]);
    const put = await fetch(`${url}/v1/sessions/${id}/files/deep/dir/b.bin`, { method: "PUT", body: bytes });
    expect(put.status).toBe(201);
    expect(await put.json()).toEqual({ path: "deep/dir/b.bin", size_bytes: 6 });
    const got = await fetch(`${url}/v1/sessions/${id}/files/deep/dir/b.bin`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    const list = await json(`/v1/sessions/${id}/files`);
    expect(list.body.files).toEqual(
      expect.arrayContaining([
        { path: "made.txt", kind: "file", size_bytes: 4 },
        { path: "deep/dir/b.bin", kind: "file", size_bytes: 6 },
      ]),
    );

    const k = await json(`/v1/sessions/${id}/keepalive`, { ttl_seconds: 300 });
    expect(k.body.expires_at as number).toBeGreaterThan(c.body.expires_at as number);

    expect((await json(`/v1/sessions/${id}`, undefined, "DELETE")).status).toBe(204);
    expect((await json(`/v1/sessions/${id}`)).status).toBe(404);
    expect((await json(`/v1/sessions/${id}/bash`, { cmd: "true" })).status).toBe(404);
  });
});
