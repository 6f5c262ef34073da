/**
 * Issue 8's fuzz test: several hundred generated malformed requests over every route of the
 * OpenAPI document, against the real Docker backend — wrong JSON types, broken JSON, raw
 * bytes, wrong and odd content types and charsets, content encodings with garbage or real
 * compressed bodies, invalid percent-encoding and traversal in path parameters, garbage
 * queries, wrong methods, missing Content-Length, bodies over the limit. Every answer must be
 * below 500, every error `{"detail": string}` JSON, and once the sessions the fuzz legitimately
 * created are deleted, no executor container of this run may be left on the engine.
 *
 * Generation is fast-check's (see the api README for why); a failure prints the seed and the
 * shrunk request. Runtime is bounded (interruptAfterTimeLimit) but must reach MIN_RUNS.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import Dockerode from "dockerode";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSessionId } from "@code-interpreter/core";
import { executorLimits, loadConfig } from "../../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { trackCreatedContainers } from "./docker-platform.js";
import { E2E_ENV, listenApp, requireDockerEngine, type RunningHttp } from "./support.js";

const MIN_RUNS = 400;
const MAX_RUNS = 1000;
const TIME_LIMIT_MS = 55_000;

const config = loadConfig({ ...E2E_ENV, DEFAULT_EXEC_TIMEOUT_MS: "3000" });

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
  /** Send Content-Length (else chunked). */
  withLength: boolean;
}

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

// A connection per request: a server that closes a connection after an answer (413, a parse error)
// must not turn into a client-side ECONNRESET on the next request reusing it.
const agent = new Agent({ keepAlive: false, maxSockets: 4 });

function send(baseUrl: string, r: FuzzRequest): Promise<Answer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers };
    if (r.body && r.withLength) headers["content-length"] = String(r.body.length);
    // Without a length the body goes chunked (for every method: Node would otherwise send a
    // GET/HEAD body unframed, i.e. as garbage after the request, which the server rightly
    // answers with a second, 400 response that this one-request client cannot read).
    if (r.body && !r.withLength) headers["transfer-encoding"] = "chunked";
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: r.method, path: r.path, headers, agent, timeout: 30_000 },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(parts),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    // A server may answer early (413, 404 before reading the body) and close while the body is
    // still being written: the answer counts, the write error on the socket does not.
    req.on("socket", (socket) => socket.on("error", () => undefined));
    req.on("error", reject);
    req.end(r.body ?? undefined);
  });
}

// ------------------------------------------------------------------ generators

/** Values of every JSON type, including the edges a validator must not trip over. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("", " ", "\u0000", "../../etc/passwd", "/abs", "a//b", "%ff", "\ud800", "x".repeat(300)),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 0.5, 1.0000001),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }),
  fc.constant([{ path: "a.txt", file_id: "nope" }]),
  fc.constant({ __proto__: { polluted: true } }),
);

const FIELDS = [
  "code",
  "cmd",
  "stdin",
  "timeout_ms",
  "last_line_interactive",
  "files",
  "ttl_seconds",
  "idle_timeout_seconds",
  "metadata",
  "path",
  "file_id",
  "__proto__",
  "constructor",
];

/** JSON bodies with hostile field values (a few happen to be valid: those must work too). */
const jsonBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 5 })
    .map((o) => Buffer.from(JSON.stringify(o))),
  hostileValue.map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
);

const rawBody: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: jsonBody },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '{"code": "1",',
        "{",
        "[",
        '{"code": "\\ud800"}',
        "\u0000\u0000",
        "--x\r\n\r\n",
        "null",
        "1e999",
      )
      .map((t) => Buffer.from(t)),
  },
  // Over the 5 MiB JSON limit (built once, shared).
  { weight: 1, arbitrary: fc.constant(Buffer.from(`{"code": "${"x".repeat(6 * 1024 * 1024)}"}`)) },
);

const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constant("application/json") },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-16",
      "application/json; charset=latin1",
      "application/json; charset=nope",
      "application/json; charset=",
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/octet-stream",
      "multipart/form-data",
      "multipart/form-data; boundary=x",
      "multipart/form-data; boundary=",
      "multipart/mixed; boundary=x",
      "application/json, text/html",
      "*/*",
      ";;;",
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s)) },
);

type Encoding = "gzip" | "deflate" | "br" | string;
const contentEncoding = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Encoding | undefined>(undefined) },
  { weight: 4, arbitrary: fc.constantFrom<Encoding>("gzip", "deflate", "br") },
  {
    weight: 2,
    arbitrary: fc.constantFrom<Encoding>("zstd", "identity", "gzip, br", "compress", "x-gzip", "GZIP", ""),
  },
);

/** Path parameter values: real ids, look-alikes, and broken encodings. */
function paramValue(real: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...real) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        "%ff%fe",
        "%E0%A4%A",
        "%",
        "%zz",
        "%c0%af",
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "%2F",
        "a%2F..%2Fb",
        "code-session-00000000-0000-4000-8000-000000000000",
        "CODE-SESSION-00000000-0000-4000-8000-000000000000",
        "code-session-",
        "x".repeat(3000),
        "%F0%9F%98%80",
        "a/b/c",
        "..",
        ".",
      ),
    },
    { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 30 }).map((s) => encodeURIComponent(s)) },
  );
}

function compress(body: Buffer, encoding: Encoding | undefined, real: boolean): Buffer {
  if (!real || encoding === undefined) return body;
  if (encoding === "gzip") return gzipSync(body);
  if (encoding === "deflate") return deflateSync(body);
  if (encoding === "br") return brotliCompressSync(body);
  return body;
}

// ------------------------------------------------------------------ the test

describe("fuzz: malformed requests over every route (real Docker backend)", { timeout: 150_000 }, () => {
  let server: RunningHttp;
  let dir: string;
  let created: string[];
  let operations: Array<{ method: string; template: string }>;
  let sessionId: string;
  let fileId: string;
  const madeSessions = new Set<string>();

  beforeAll(async () => {
    await requireDockerEngine();
    dir = await mkdtemp(join(tmpdir(), "ci-api-fuzz-"));
    const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 600 });
    const docker = new Dockerode();
    created = trackCreatedContainers(docker);
    const backend = createDockerBackend({
      docker,
      image: config.executorImage,
      limits: executorLimits(config),
      sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
      maxFileBytes: config.maxFileSizeBytes,
    });
    server = await listenApp({ backend, files, config });

    const doc = JSON.parse(
      (
        await send(server.baseUrl, {
          method: "GET",
          path: "/openapi.json",
          headers: {},
          body: null,
          withLength: false,
        })
      ).body.toString(),
    ) as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([template, ops]) =>
      Object.keys(ops).map((m) => ({ method: m.toUpperCase(), template })),
    );
    const s = await send(server.baseUrl, {
      method: "POST",
      path: "/v1/sessions",
      headers: { "content-type": "application/json" },
      body: Buffer.from('{"ttl_seconds": 300}'),
      withLength: true,
    });
    expect(s.status, s.body.toString()).toBe(201);
    sessionId = (JSON.parse(s.body.toString()) as { session_id: string }).session_id;
    madeSessions.add(sessionId);
    const boundary = "fuzzboundary";
    const up = await send(server.baseUrl, {
      method: "POST",
      path: "/v1/files",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n\r\nhello\r\n--${boundary}--\r\n`,
      ),
      withLength: true,
    });
    expect(up.status, up.body.toString()).toBe(201);
    fileId = (JSON.parse(up.body.toString()) as { file_id: string }).file_id;
  }, 60_000);

  afterAll(async () => {
    agent.destroy();
    if (server) await server.close();
    const docker = new Dockerode();
    await Promise.all(
      (created ?? []).map((n) =>
        docker
          .getContainer(n)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it(`at least ${MIN_RUNS} generated requests: no 5xx, every error {"detail"} JSON`, async () => {
    expect(operations.length).toBeGreaterThan(20);
    const hits = new Map<string, number>();
    const request: fc.Arbitrary<FuzzRequest> = fc
      .record({
        op: fc.constantFrom(...operations),
        method: fc.oneof(
          { weight: 7, arbitrary: fc.constant<string | null>(null) },
          {
            weight: 3,
            arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
          },
        ),
        id: paramValue([sessionId]),
        fileParam: paramValue([fileId, "nope"]),
        pathParam: paramValue(["a.txt", "dir/b.bin", "new.txt"]),
        query: fc.option(
          fc.record({
            limit: fc.option(paramValue(["1", "2", "1000"])),
            cursor: fc.option(paramValue(["WzAsImEiXQ"])),
          }),
        ),
        body: fc.option(rawBody, { freq: 4 }),
        contentType,
        contentEncoding,
        realCompression: fc.boolean(),
        withLength: fc.oneof(
          { weight: 9, arbitrary: fc.constant(true) },
          { weight: 1, arbitrary: fc.constant(false) },
        ),
      })
      .map((g) => {
        hits.set(`${g.op.method} ${g.op.template}`, (hits.get(`${g.op.method} ${g.op.template}`) ?? 0) + 1);
        let path = g.op.template
          .replace("{id}", g.id)
          .replace("{file_id}", g.fileParam)
          .replace("{path}", g.pathParam);
        if (g.query) {
          const q: string[] = [];
          if (g.query.limit !== null) q.push(`limit=${g.query.limit}`);
          if (g.query.cursor !== null) q.push(`cursor=${g.query.cursor}`);
          if (q.length) path += `?${q.join("&")}`;
        }
        const headers: Record<string, string> = {};
        if (g.contentType !== undefined) headers["content-type"] = g.contentType;
        if (g.contentEncoding !== undefined) headers["content-encoding"] = g.contentEncoding;
        const body = g.body === null ? null : compress(g.body, g.contentEncoding, g.realCompression);
        return { method: g.method ?? g.op.method, path, headers, body, withLength: g.withLength };
      });

    let runs = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        runs += 1;
        const a = await send(server.baseUrl, r);
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        const text = a.body.toString("utf8");
        const what = `${r.method} ${r.path.slice(0, 120)} → ${a.status} ${text.slice(0, 200)}`;
        expect(a.status, what).toBeLessThan(500);
        if (a.status === 201 && r.path.split("?")[0] === "/v1/sessions") {
          const id = (JSON.parse(text) as { session_id?: unknown }).session_id;
          if (isSessionId(id)) madeSessions.add(id);
        }
        if (a.status >= 400 && r.method !== "HEAD") {
          expect(a.contentType, what).toMatch(/^application\/json/);
          const parsed = JSON.parse(text) as { detail?: unknown };
          expect(typeof parsed.detail, what).toBe("string");
          expect(text, what).not.toMatch(/\bat .+\.(js|ts):\d+/);
        }
      }),
      { numRuns: MAX_RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
    );
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]);
    console.info(`fuzz: ${runs} requests, statuses ${JSON.stringify(summary)}`);
    expect(runs, `statuses: ${JSON.stringify(summary)}`).toBeGreaterThanOrEqual(MIN_RUNS);
    // The fuzz really exercised the error paths, not just one status, on every operation.
    expect(statuses.size).toBeGreaterThanOrEqual(5);
    expect(operations.filter((o) => !hits.has(`${o.method} ${o.template}`))).toEqual([]);
  });

  it("leaves no executor container behind once its sessions are deleted", async () => {
    for (const id of madeSessions) {
      await send(server.baseUrl, {
        method: "DELETE",
        path: `/v1/sessions/${id}`,
        headers: {},
        body: null,
        withLength: false,
      });
    }
    const docker = new Dockerode();
    const exists = async (name: string) =>
      docker
        .getContainer(name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    const deadline = Date.now() + 15_000;
    let left: string[] = [];
    do {
      left = [];
      for (const n of created) if (await exists(n)) left.push(n);
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    } while (Date.now() < deadline);
    expect(created.length).toBeGreaterThan(0);
    expect(left).toEqual([]);
  }, 60_000);
});
