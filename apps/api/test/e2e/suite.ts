/**
 * The API's end-to-end suite over real HTTP, written once and run per backend:
 *
 *   describeApiE2E("docker", async () => ({ baseUrl, backendKind, inspect, ... }));
 *
 * Every test runs real code in real containers/pods. `inspect` looks at the platform directly
 * (dockerode, the Kubernetes API), never through our backend, so the assertions check what
 * actually exists. Tests only ever look at resources this env's backend created (`createdNames`)
 * or the test created itself: other suites may use the same engine at the same time.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRUNCATION_MARKER, isSessionId } from "@code-interpreter/core";
import { EXECUTOR_NAME_PREFIX } from "@code-interpreter/core/backend-kit";
import { ContractChecker } from "./contract.js";
import {
  BashExecResponse,
  CreateSessionResponse,
  ExecuteResponse,
  ONYX_SESSIONS_MIN_VERSION,
  StreamErrorEvent,
  StreamOutputEvent,
  StreamResultEvent,
  onyxHealth,
  onyxVersionGte,
} from "./onyx-models.js";
import { makePng } from "./support.js";

export interface ExecOutput {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** Direct access to the platform (not through the backend under test). */
export interface PlatformInspector {
  /** A container/pod of this name exists (in any state). */
  containerExists(name: string): Promise<boolean>;
  /** It exists and is running. */
  isRunning(name: string): Promise<boolean>;
  labels(name: string): Promise<Record<string, string>>;
  /** Runs a command in it through the platform (docker exec / pods/exec). */
  exec(name: string, cmd: string[], opts?: { user?: string }): Promise<ExecOutput>;
  /**
   * Names of every container/pod the backend under test asked the platform to create, in
   * order (recorded at the platform client). Lets a test find *its* executors.
   */
  createdNames(): readonly string[];
  /** Names of the resources now on the platform labelled app=code-interpreter,component=<c>. */
  listLabelled(component: "session" | "executor"): Promise<string[]>;
  /** Starts a long-running resource named `name` without our labels; the env removes it on close(). */
  startUnrelated(name: string): Promise<void>;
  /** Platform-level hardening facts, when the platform has them (Docker: inspect). */
  hardening?(name: string): Promise<{ user: string; networkNone: boolean; readOnlyRoot: boolean }>;
}

export interface E2EEnv {
  /** The API under test, e.g. http://127.0.0.1:41234 (no trailing slash). */
  baseUrl: string;
  /** What GET /health reports as `backend`. */
  backendKind: string;
  /** The config the API under test runs with. */
  limits: { maxOutputBytes: number; maxExecTimeoutMs: number };
  inspect: PlatformInspector;
  /** Makes the API's file store fail `open()` for this file id (stat still answers). */
  failFileOpen(fileId: string): void;
  /** A second API, same config, whose backend talks to an endpoint where nothing answers. */
  startUnreachable?(): Promise<{ baseUrl: string; close(): Promise<void> }>;
  /** A second API on the same platform, its config E2E_ENV plus `overrides` (e.g. more memory). */
  startWith(overrides: Record<string, string>): Promise<{ baseUrl: string; close(): Promise<void> }>;
  /** Stops the API(s) and removes whatever is left of the resources the env created. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ HTTP helpers

interface Answer {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  /** The JSON body (throws when the body is not JSON). */
  body: Record<string, unknown>;
  /** Milliseconds from sending the request to the end of the body. */
  ms: number;
}

interface RequestOpts {
  method?: string;
  json?: unknown;
  body?: Buffer | string;
  headers?: Record<string, string>;
}

/** The service package's version: what /health must report. */
const PKG_VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

/** Set once the API under test is up: every answer `call` gets is checked against its document. */
let contract: ContractChecker | undefined;

async function call(baseUrl: string, path: string, opts: RequestOpts = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: Buffer | string | undefined = opts.body;
  if (opts.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  const method = opts.method ?? (body === undefined ? "GET" : "POST");
  const t0 = performance.now();
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const bytes = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  const text = bytes.toString("utf8");
  contract?.check(method, path, res.status, res.headers.get("content-type") ?? "", bytes);
  let parsed: Record<string, unknown> | undefined;
  return {
    status: res.status,
    headers: res.headers,
    bytes,
    text,
    ms,
    get body() {
      if (parsed === undefined) {
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          throw new Error(`${method} ${path} → ${res.status}: body is not JSON: ${text.slice(0, 300)}`);
        }
      }
      return parsed;
    },
  };
}

/** The response must be a JSON error `{detail: string}` with one of these statuses. */
function expectError(a: Answer, statuses: number[]): void {
  expect(statuses, `status ${a.status}, body ${a.text.slice(0, 300)}`).toContain(a.status);
  expect(a.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  expect(typeof a.body.detail).toBe("string");
  expect(a.text).not.toMatch(/\bat .+\.(js|ts):\d+/); // no stack trace
}

function multipart(field: string, filename: string, content: Buffer, contentType?: string) {
  const boundary = `----e2e${randomBytes(12).toString("hex")}`;
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
    (contentType ? `Content-Type: ${contentType}\r\n` : "") +
    "\r\n";
  return {
    body: Buffer.concat([Buffer.from(head, "utf8"), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

export interface SseEvent {
  event: string;
  data: string;
  /** performance.now() when the event's terminating blank line arrived. */
  at: number;
}

/**
 * Reads a text/event-stream as it arrives, the way the onyx client does: `event:` and `data:`
 * lines, values stripped, an event ends at a blank line; `id:`, `retry:` and comments ignored.
 * Calls `onEvent` for each one as soon as it is complete.
 */
export async function readSse(res: Response, onEvent?: (ev: SseEvent) => void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  let eventType: string | null = null;
  let dataLines: string[] = [];
  const line = (l: string) => {
    if (l === "") {
      if (eventType !== null && dataLines.length > 0) {
        const ev = { event: eventType, data: dataLines.join("\n"), at: performance.now() };
        events.push(ev);
        onEvent?.(ev);
      }
      eventType = null;
      dataLines = [];
    } else if (l.startsWith("event:")) {
      eventType = l.slice("event:".length).trim();
    } else if (l.startsWith("data:")) {
      dataLines.push(l.slice("data:".length).trim());
    }
  };
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffered.search(/\r\n|\r|\n/)) !== -1) {
      const sep = buffered.startsWith("\r\n", nl) ? 2 : 1;
      line(buffered.slice(0, nl));
      buffered = buffered.slice(nl + sep);
    }
  }
  buffered += decoder.decode();
  if (buffered) line(buffered);
  // The onyx client warns about an incomplete trailing event; a correct server leaves none.
  expect({ eventType, dataLines }, "incomplete trailing SSE event").toEqual({
    eventType: null,
    dataLines: [],
  });
  return events;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Timing assertions (an answer within 2.5 s, removal within 5 s) get one retry: this suite shares
 * a 2-core machine with other Docker suites, and one slow engine call under a load of 10 is not
 * a bug. A systematic miss still fails both tries.
 */
const TIMING_RETRY = 1;

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

// ------------------------------------------------------------------ the suite

export function describeApiE2E(name: string, setup: () => Promise<E2EEnv>): void {
  describe(`API end to end over HTTP: ${name}`, { timeout: 60_000 }, () => {
    let env: E2EEnv;
    const sessions = new Set<string>();

    const api = (path: string, opts?: RequestOpts) => call(env.baseUrl, path, opts);

    async function upload(content: Buffer, filename: string): Promise<string> {
      const form = new FormData();
      form.append("file", new Blob([content]), filename);
      const res = await fetch(`${env.baseUrl}/v1/files`, { method: "POST", body: form });
      const body = (await res.json()) as { file_id: string; size_bytes: number };
      expect(res.status).toBe(201);
      expect(body.size_bytes).toBe(content.length);
      return body.file_id;
    }

    async function createSession(body: Record<string, unknown> = {}): Promise<string> {
      const res = await api("/v1/sessions", { json: { ttl_seconds: 300, ...body } });
      expect(res.status, res.text).toBe(201);
      const id = res.body.session_id as string;
      sessions.add(id);
      return id;
    }

    async function deleteSession(id: string): Promise<void> {
      const res = await api(`/v1/sessions/${id}`, { method: "DELETE" });
      expect(res.status, res.text).toBe(204);
      sessions.delete(id);
    }

    /** Names the backend created since `mark` (an index into createdNames()). */
    const createdSince = (mark: number, prefix: string) =>
      env.inspect
        .createdNames()
        .slice(mark)
        .filter((n) => n.startsWith(prefix));

    beforeAll(async () => {
      env = await setup();
      contract = undefined;
      const doc = await call(env.baseUrl, "/openapi.json");
      expect(doc.status).toBe(200);
      contract = new ContractChecker(doc.body as unknown as ConstructorParameters<typeof ContractChecker>[0]);
    }, 60_000);

    afterAll(async () => {
      if (!env) return;
      for (const id of sessions) await api(`/v1/sessions/${id}`, { method: "DELETE" }).catch(() => undefined);
      await env.close();
    }, 60_000);

    it("GET /health: ok, with the backend kind", async () => {
      const res = await api("/health");
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: "ok", backend: env.backendKind });
    });

    // -------------------------------------------------------------- issue 2: sessions

    describe("sessions", () => {
      it("creates a hardened, labelled session with the staged file; get, list, delete", async () => {
        const content = Buffer.concat([Buffer.from("id,value\n1,\u00e9\r\n"), randomBytes(4096)]);
        const fileId = await upload(content, "data.bin");

        const created = await api("/v1/sessions", {
          json: {
            files: [{ path: "input/data.bin", file_id: fileId }],
            ttl_seconds: 300,
            metadata: { e2e: name },
          },
        });
        expect(created.status, created.text).toBe(201);
        const id = created.body.session_id as string;
        sessions.add(id);
        expect(isSessionId(id)).toBe(true);
        expect(created.body).toMatchObject({ status: "running", metadata: { e2e: name } });

        // The platform itself: a running container named after the session, with our labels.
        expect(await env.inspect.isRunning(id)).toBe(true);
        expect(await env.inspect.labels(id)).toMatchObject({ app: "code-interpreter", component: "session" });

        // The staged bytes, read by the engine, not by our backend.
        const cat = await env.inspect.exec(id, ["cat", "/workspace/input/data.bin"]);
        expect(cat.exitCode).toBe(0);
        expect(sha256(cat.stdout)).toBe(sha256(content));

        const uid = await env.inspect.exec(id, ["id", "-u"]);
        expect(uid.stdout.toString().trim()).toBe("65532");
        const etc = await env.inspect.exec(id, ["sh", "-c", "echo x > /etc/e2e-probe"]);
        expect(etc.exitCode).not.toBe(0);
        expect(etc.stderr.toString()).toMatch(/read-only|permission denied/i);
        if (env.inspect.hardening) {
          expect(await env.inspect.hardening(id)).toEqual({
            user: expect.stringMatching(/^65532(:65532)?$/),
            networkNone: true,
            readOnlyRoot: true,
          });
        }

        const got = await api(`/v1/sessions/${id}`);
        expect(got.status).toBe(200);
        expect(got.body).toMatchObject({
          session_id: id,
          status: "running",
          expires_at: created.body.expires_at,
        });
        const list = await api("/v1/sessions");
        expect(list.status).toBe(200);
        expect((list.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id)).toContain(id);

        const del = await api(`/v1/sessions/${id}`, { method: "DELETE" });
        expect(del.status).toBe(204);
        sessions.delete(id);
        await waitFor(`${id} to be gone`, async () => !(await env.inspect.containerExists(id)), 10_000);
        expectError(await api(`/v1/sessions/${id}`, { method: "DELETE" }), [404]);
        expectError(await api(`/v1/sessions/${id}`), [404]);
        const after = await api("/v1/sessions");
        expect((after.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id)).not.toContain(
          id,
        );
      });

      it("DELETE never touches a container that is not one of our sessions", async () => {
        // Named exactly like a session, but without our labels: the label check must hold.
        const lookalike = `code-session-${randomUUID()}`;
        const plain = `ci-e2e-unrelated-${randomBytes(4).toString("hex")}`;
        await env.inspect.startUnrelated(lookalike);
        await env.inspect.startUnrelated(plain);

        expectError(await api(`/v1/sessions/${lookalike}`, { method: "DELETE" }), [404]);
        expectError(await api(`/v1/sessions/${plain}`, { method: "DELETE" }), [404]);
        expectError(await api(`/v1/sessions/${lookalike}`), [404]);
        expect(await env.inspect.isRunning(lookalike)).toBe(true);
        expect(await env.inspect.isRunning(plain)).toBe(true);
      });

      it("a staging failure removes the half-made session container and answers an error", async () => {
        const good = await upload(Buffer.from("fine"), "good.txt");
        const bad = await upload(Buffer.from("this one cannot be read"), "bad.txt");
        env.failFileOpen(bad);
        const mark = env.inspect.createdNames().length;

        const res = await api("/v1/sessions", {
          json: {
            files: [
              { path: "good.txt", file_id: good },
              { path: "bad.txt", file_id: bad },
            ],
          },
        });
        expectError(res, [500, 502, 503]);
        if (isSessionId(res.body.session_id)) sessions.add(res.body.session_id);

        // The failure really happened after a container was made (staging), not before.
        const made = createdSince(mark, "code-session-");
        expect(made).toHaveLength(1);
        // Docker removes at once; a pod is gone once its grace period has run (1 s).
        for (const n of made)
          await waitFor(`${n} to be removed`, async () => !(await env.inspect.containerExists(n)), 5_000);
        const labelled = await env.inspect.listLabelled("session");
        expect(labelled.filter((n) => made.includes(n))).toEqual([]);
        const list = await api("/v1/sessions");
        expect((list.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id)).not.toContain(
          made[0],
        );
      });

      it("an unreachable platform: /health and the session routes answer 503 with {detail}", async (ctx) => {
        if (!env.startUnreachable) return ctx.skip();
        const dead = await env.startUnreachable();
        try {
          const health = await call(dead.baseUrl, "/health");
          expect(health.status).toBe(503);
          expect(health.body).toMatchObject({ status: "unavailable", backend: env.backendKind });
          expectError(await call(dead.baseUrl, "/v1/sessions", { json: {} }), [503]);
          expectError(await call(dead.baseUrl, "/v1/sessions"), [503]);
          expectError(await call(dead.baseUrl, `/v1/sessions/code-session-${randomUUID()}`), [503]);
          expectError(await call(dead.baseUrl, "/v1/execute", { json: { code: "1" } }), [503]);
        } finally {
          await dead.close();
        }
      });
    });

    // -------------------------------------------------------------- issue 3: running code

    describe("one-shot execution", () => {
      it("print('hi') → stdout hi, exit 0", async () => {
        const res = await api("/v1/execute", { json: { code: "print('hi')" } });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({
          stdout: "hi\n",
          stderr: "",
          exit_code: 0,
          timed_out: false,
          files: [],
        });
      });

      it("last_line_interactive prints the value of a bare last expression", async () => {
        const res = await api("/v1/execute", {
          json: { code: "x = 2\nx * 21", last_line_interactive: true },
        });
        expect(res.body).toMatchObject({ stdout: "42\n", exit_code: 0 });
      });

      it("a failing script: traceback on stderr, non-zero exit code", async () => {
        const res = await api("/v1/execute", {
          json: { code: "def f():\n    raise ValueError('boom')\nf()" },
        });
        expect(res.status).toBe(200);
        expect(res.body.stderr).toMatch(/Traceback \(most recent call last\)/);
        expect(res.body.stderr).toMatch(/ValueError: boom/);
        expect(res.body.exit_code).not.toBe(0);
        expect(res.body.exit_code).not.toBeNull();
        expect(res.body.timed_out).toBe(false);
      });

      it("stdin reaches input()", async () => {
        const res = await api("/v1/execute", {
          json: { code: "a = input()\nb = input()\nprint(f'{a}+{b}')", stdin: "left\nright\n" },
        });
        expect(res.body).toMatchObject({ stdout: "left+right\n", exit_code: 0 });
      });

      it(
        "an endless loop times out in time and its executor container is gone",
        { retry: TIMING_RETRY },
        async () => {
          const mark = env.inspect.createdNames().length;
          const res = await api("/v1/execute", { json: { code: "while True: pass", timeout_ms: 1000 } });
          expect(res.status).toBe(200);
          expect(res.body).toMatchObject({ timed_out: true, exit_code: null });
          expect(res.ms).toBeLessThan(2500);

          const mine = createdSince(mark, EXECUTOR_NAME_PREFIX);
          expect(mine).toHaveLength(1);
          await waitFor(
            `executor ${mine[0]} to be removed`,
            async () => !(await env.inspect.containerExists(mine[0]!)),
            5_000,
          );
          expect(await env.inspect.listLabelled("executor")).not.toContain(mine[0]);
        },
      );

      it("timeout_ms above MAX_EXEC_TIMEOUT_MS → 422, nothing created", async () => {
        const mark = env.inspect.createdNames().length;
        const over = env.limits.maxExecTimeoutMs + 1;
        expectError(await api("/v1/execute", { json: { code: "1", timeout_ms: over } }), [422]);
        expectError(await api("/v1/execute/stream", { json: { code: "1", timeout_ms: over } }), [422]);
        expect(env.inspect.createdNames().length).toBe(mark);
      });

      it("5 MB of output is cut at MAX_OUTPUT_BYTES and the server's memory stays flat", async () => {
        const code =
          "import sys\nfor _ in range(50):\n    sys.stdout.write('y' * 100_000)\nsys.stderr.write('e' * 5_000_000)";
        const run = async () => {
          const res = await api("/v1/execute", { json: { code, timeout_ms: 20_000 } });
          expect(res.status, res.text.slice(0, 300)).toBe(200);
          return res.body as { stdout: string; stderr: string; exit_code: number | null };
        };
        const first = await run(); // warm-up: connection pools, JIT, lazily loaded modules
        const limit = env.limits.maxOutputBytes;
        expect(first.stdout).toHaveLength(limit + TRUNCATION_MARKER.length);
        expect(first.stdout.endsWith(TRUNCATION_MARKER)).toBe(true);
        expect(first.stdout.slice(0, limit)).toBe("y".repeat(limit));
        expect(first.stderr).toHaveLength(limit + TRUNCATION_MARKER.length);
        expect(first.stderr.endsWith(TRUNCATION_MARKER)).toBe(true);
        expect(first.exit_code).toBe(0);

        const before = process.memoryUsage().rss;
        // Three at once: a server that buffered the output would hold 3 × 10 MB (plus copies).
        const runs = await Promise.all([run(), run(), run()]);
        for (const r of runs) expect(r.stdout).toHaveLength(limit + TRUNCATION_MARKER.length);
        const grownMb = (process.memoryUsage().rss - before) / (1024 * 1024);
        console.info(
          `[e2e ${name}] RSS growth over 3 concurrent runs of 10 MB output: ${grownMb.toFixed(1)} MB`,
        );
        expect(grownMb).toBeLessThan(40);
      });

      it("binary round-trip: a PNG in, a byte-identical copy out, the unchanged input left out", async () => {
        const png = makePng();
        const fileId = await upload(png, "image.png");
        const res = await api("/v1/execute", {
          json: {
            code: [
              "import os, shutil, zlib",
              "os.makedirs('out', exist_ok=True)",
              "shutil.copyfile('in/image.png', 'out/copy.png')",
              "data = open('out/copy.png', 'rb').read()",
              "print(data[:8] == b'\\x89PNG\\r\\n\\x1a\\n', len(data))",
            ].join("\n"),
            files: [{ path: "in/image.png", file_id: fileId }],
          },
        });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({ stdout: `True ${png.length}\n`, exit_code: 0 });
        const files = res.body.files as Array<{ path: string; kind: string; file_id: string | null }>;
        expect(files).toContainEqual({ path: "out/copy.png", kind: "file", file_id: expect.any(String) });
        expect(files.map((f) => f.path)).not.toContain("in/image.png");
        expect(files.filter((f) => f.kind === "file")).toHaveLength(1);

        const copy = files.find((f) => f.path === "out/copy.png")!;
        expect(copy.file_id).not.toBe(fileId);
        const down = await api(`/v1/files/${copy.file_id}`);
        expect(down.status).toBe(200);
        expect(down.headers.get("content-type")).toMatch(/^application\/octet-stream/);
        expect(down.headers.get("content-disposition")).toBe('attachment; filename="copy.png"');
        expect(down.bytes.equals(png)).toBe(true);
      });

      it("unsafe or unknown inputs: 422 for ../x and absolute paths, 404 for an unknown file id", async () => {
        const fileId = await upload(Buffer.from("x"), "x.txt");
        for (const path of ["../x", "/etc/x", "a/../../x"]) {
          expectError(
            await api("/v1/execute", { json: { code: "1", files: [{ path, file_id: fileId }] } }),
            [422],
          );
        }
        expectError(
          await api("/v1/execute", { json: { code: "1", files: [{ path: "x", file_id: "0".repeat(32) }] } }),
          [404],
        );
      });
    });

    describe("streaming", () => {
      it(
        "the first output arrives while the code still runs, then exactly one result",
        { retry: TIMING_RETRY },
        async () => {
          const res = await fetch(`${env.baseUrl}/v1/execute/stream`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              code: "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second', flush=True)",
              timeout_ms: 10_000,
            }),
          });
          expect(res.status).toBe(200);
          expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
          const events = await readSse(res);
          const outputs = events.filter((e) => e.event === "output");
          const results = events.filter((e) => e.event === "result");
          expect(results).toHaveLength(1);
          expect(events.at(-1)!.event).toBe("result");
          expect(events.filter((e) => e.event === "error")).toEqual([]);

          // Chunking is not part of the contract ("first" and "\n" may come apart): take the
          // event with which the stdout seen so far first contains the whole first line.
          let seen = "";
          const firstOut = outputs.find((e) => {
            const o = JSON.parse(e.data) as { stream: string; data: string };
            if (o.stream === "stdout") seen += o.data;
            return seen.startsWith("first\n");
          })!;
          expect(seen).toBe("first\n");
          const result = results[0]!;
          expect(result.at - firstOut.at, "first output must arrive ~1 s before the result").toBeGreaterThan(
            700,
          );
          const stdout = outputs
            .map((e) => JSON.parse(e.data) as { stream: string; data: string })
            .filter((o) => o.stream === "stdout")
            .map((o) => o.data)
            .join("");
          expect(stdout).toBe("first\nsecond\n");
          expect(JSON.parse(result.data)).toMatchObject({ exit_code: 0, timed_out: false, files: [] });
        },
      );

      it(
        "a client that disconnects mid-stream gets its executor container removed",
        { retry: TIMING_RETRY },
        async () => {
          const mark = env.inspect.createdNames().length;
          const controller = new AbortController();
          const res = await fetch(`${env.baseUrl}/v1/execute/stream`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              code: "import time\nprint('started', flush=True)\ntime.sleep(30)",
              timeout_ms: 30_000,
            }),
            signal: controller.signal,
          });
          expect(res.status).toBe(200);
          let sawOutput!: () => void;
          const started = new Promise<void>((r) => (sawOutput = r));
          const reading = readSse(res, (ev) => {
            if (ev.event === "output") sawOutput();
          }).catch(() => undefined); // the abort ends the read with an AbortError
          await started;

          const mine = createdSince(mark, EXECUTOR_NAME_PREFIX);
          expect(mine).toHaveLength(1);
          expect(await env.inspect.isRunning(mine[0]!)).toBe(true);

          controller.abort();
          await reading;
          const took = await waitFor(
            `executor ${mine[0]} to be removed after the disconnect`,
            async () => !(await env.inspect.containerExists(mine[0]!)),
            8_000,
          );
          expect(took).toBeLessThan(5_000);
        },
      );
    });

    describe("session execution and files", () => {
      it("a timeout in a session kills the program, not the session", { retry: TIMING_RETRY }, async () => {
        const id = await createSession();
        const res = await api(`/v1/sessions/${id}/execute`, {
          json: { code: "while True: pass", timeout_ms: 1000 },
        });
        expect(res.status, res.text).toBe(200);
        expect(res.body).toMatchObject({ timed_out: true, exit_code: null });
        expect(res.ms).toBeLessThan(2500);

        expect(await env.inspect.isRunning(id)).toBe(true);
        const next = await api(`/v1/sessions/${id}/execute`, { json: { code: "print('still here')" } });
        expect(next.body).toMatchObject({ stdout: "still here\n", exit_code: 0, timed_out: false });
        const sh = await api(`/v1/sessions/${id}/bash`, { json: { cmd: "echo ok" } });
        expect(sh.body).toMatchObject({ stdout: "ok\n", exit_code: 0 });
        expectError(
          await api(`/v1/sessions/${id}/execute`, {
            json: { code: "1", timeout_ms: env.limits.maxExecTimeoutMs + 1 },
          }),
          [422],
        );
        await deleteSession(id);
      });

      it("state persists across calls; raw file PUT/GET/list; unsafe paths and unknown sessions", async () => {
        const id = await createSession();
        const w = await api(`/v1/sessions/${id}/execute`, {
          json: { code: "import json\njson.dump({'answer': 42, 'who': 'e2e'}, open('state.json', 'w'))" },
        });
        expect(w.body).toMatchObject({ exit_code: 0, stderr: "" });
        const r = await api(`/v1/sessions/${id}/bash`, { json: { cmd: "cat state.json" } });
        expect(r.body).toMatchObject({ exit_code: 0, timed_out: false });
        expect(JSON.parse(r.body.stdout as string)).toEqual({ answer: 42, who: "e2e" });

        const bytes = Buffer.concat([Buffer.from([0, 13, 10, 255, 254]), randomBytes(70_000)]);
        const put = await api(`/v1/sessions/${id}/files/data/in.bin`, {
          method: "PUT",
          body: bytes,
          headers: { "content-type": "application/octet-stream" },
        });
        expect(put.status, put.text).toBe(201);
        expect(put.body).toEqual({ path: "data/in.bin", size_bytes: bytes.length });

        const py = await api(`/v1/sessions/${id}/execute`, {
          json: {
            code: "import hashlib\nd = open('data/in.bin', 'rb').read()\nprint(len(d), hashlib.sha256(d).hexdigest())",
          },
        });
        expect(py.body).toMatchObject({ stdout: `${bytes.length} ${sha256(bytes)}\n`, exit_code: 0 });

        const got = await api(`/v1/sessions/${id}/files/data/in.bin`);
        expect(got.status).toBe(200);
        expect(got.bytes.equals(bytes)).toBe(true);

        const list = await api(`/v1/sessions/${id}/files`);
        expect(list.status).toBe(200);
        const entries = list.body.files as Array<{ path: string; kind: string; size_bytes: number }>;
        expect(entries).toContainEqual({ path: "data/in.bin", kind: "file", size_bytes: bytes.length });
        expect(entries).toContainEqual(expect.objectContaining({ path: "data", kind: "directory" }));
        expect(entries).toContainEqual(expect.objectContaining({ path: "state.json", kind: "file" }));

        // Unsafe paths. A literal "../x" is resolved away by the URL itself (→ another route,
        // 404); the encoded forms reach the route and are refused (422) or not found (404).
        for (const p of ["..%2Fx", "data%2F..%2F..%2Fx", "%2Fetc%2Fpasswd"]) {
          expectError(await api(`/v1/sessions/${id}/files/${p}`), [404, 422]);
          expectError(
            await api(`/v1/sessions/${id}/files/${p}`, { method: "PUT", body: Buffer.from("no") }),
            [404, 422],
          );
        }
        expectError(
          await api(`/v1/sessions/${id}/files/../x`, { method: "PUT", body: Buffer.from("no") }),
          [404, 422],
        );
        expectError(await api(`/v1/sessions/${id}/files/nope.txt`), [404]);
        // Nothing landed outside the workspace (and the workspace has no stray "x").
        const stray = await env.inspect.exec(id, ["sh", "-c", "ls /x /workspace/x 2>/dev/null; true"]);
        expect(stray.stdout.toString()).toBe("");

        const unknown = `code-session-${randomUUID()}`;
        expectError(await api(`/v1/sessions/${unknown}`), [404]);
        expectError(await api(`/v1/sessions/${unknown}/execute`, { json: { code: "1" } }), [404]);
        expectError(await api(`/v1/sessions/${unknown}/bash`, { json: { cmd: "true" } }), [404]);
        expectError(await api(`/v1/sessions/${unknown}/files`), [404]);
        expectError(await api(`/v1/sessions/${unknown}/files/a.txt`), [404]);
        expectError(
          await api(`/v1/sessions/${unknown}/files/a.txt`, { method: "PUT", body: Buffer.from("a") }),
          [404],
        );
        expectError(await api(`/v1/sessions/${unknown}`, { method: "DELETE" }), [404]);
        expectError(await api("/v1/sessions/not-a-session/files"), [404]);

        await deleteSession(id);
      });
    });

    describe("issue 11: file copy into a session, pagination, session streams", () => {
      it("POST /v1/sessions/{id}/files copies stored bytes into the running container", async () => {
        const id = await createSession();
        const bytes = Buffer.concat([Buffer.from([0, 13, 10, 255]), randomBytes(50_000)]);
        const fileId = await upload(bytes, "copy-me.bin");
        const res = await api(`/v1/sessions/${id}/files`, {
          json: { path: "in/copied.bin", file_id: fileId },
        });
        expect(res.status, res.text).toBe(201);
        expect(res.body).toEqual({ path: "in/copied.bin", size_bytes: bytes.length });
        // Read by the platform, not through our backend.
        const cat = await env.inspect.exec(id, ["cat", "/workspace/in/copied.bin"]);
        expect(sha256(cat.stdout)).toBe(sha256(bytes));
        const py = await api(`/v1/sessions/${id}/execute`, {
          json: { code: "import os\nprint(os.path.getsize('in/copied.bin'))" },
        });
        expect(py.body).toMatchObject({ stdout: `${bytes.length}\n`, exit_code: 0 });
        expectError(
          await api(`/v1/sessions/${id}/files`, { json: { path: "../x", file_id: fileId } }),
          [422],
        );
        expectError(await api(`/v1/sessions/${id}/files`, { json: { path: "x", file_id: "nope" } }), [404]);
        await deleteSession(id);
        await api(`/v1/files/${fileId}`, { method: "DELETE" });
      });

      it("lists page with limit and next_cursor over real sessions and a real workspace", async () => {
        const mine = [await createSession(), await createSession(), await createSession()];
        // Other suites may have sessions on the same engine: walk every page, keep ours.
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 1000; i++) {
          const page = await api(`/v1/sessions?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
          expect(page.status, page.text).toBe(200);
          const ids = (page.body.sessions as Array<{ session_id: string }>).map((s) => s.session_id);
          expect(ids.length).toBeLessThanOrEqual(2);
          seen.push(...ids);
          cursor = page.body.next_cursor as string | undefined;
          if (cursor === undefined) break;
        }
        expect(new Set(seen).size).toBe(seen.length);
        // (Creation times may tie at the platform's resolution; ties go by id.)
        expect(seen.filter((id) => mine.includes(id)).sort()).toEqual([...mine].sort());

        const id = mine[0]!;
        const mk = await api(`/v1/sessions/${id}/bash`, { json: { cmd: "mkdir -p d && touch a b c d/e" } });
        expect(mk.body).toMatchObject({ exit_code: 0 });
        const paths: string[] = [];
        cursor = undefined;
        for (let i = 0; i < 10; i++) {
          const page = await api(`/v1/sessions/${id}/files?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
          paths.push(...(page.body.files as Array<{ path: string }>).map((f) => f.path));
          cursor = page.body.next_cursor as string | undefined;
          if (cursor === undefined) break;
        }
        expect(paths).toEqual(["a", "b", "c", "d", "d/e"]);
        for (const s of mine) await deleteSession(s);
      });

      it("execute/stream and bash/stream in a session: live output, then one result; state persists", async () => {
        const id = await createSession();
        const stream = async (path: string, body: unknown) => {
          const res = await fetch(`${env.baseUrl}/v1/sessions/${id}/${path}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          expect(res.status).toBe(200);
          expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
          return readSse(res);
        };
        const py = await stream("execute/stream", {
          code: "open('n.txt', 'w').write('41')\nprint('one', flush=True)\nint(open('n.txt').read()) + 1",
        });
        expect(py.map((e) => e.event)).toContain("output");
        expect(py.at(-1)!.event).toBe("result");
        const out = py
          .filter((e) => e.event === "output")
          .map((e) => (JSON.parse(e.data) as { data: string }).data)
          .join("");
        expect(out).toBe("one\n42\n");
        // The workspace is the session's: the next streamed call sees the file.
        const again = await stream("bash/stream", { cmd: "cat n.txt" });
        expect(again.filter((e) => e.event === "output").map((e) => JSON.parse(e.data))).toEqual([
          { stream: "stdout", data: "41" },
        ]);
        const sh = await stream("bash/stream", { cmd: "echo out; echo err >&2; exit 3" });
        expect(JSON.parse(sh.at(-1)!.data)).toMatchObject({ exit_code: 3, timed_out: false, files: [] });
        await deleteSession(id);
        const gone = await fetch(`${env.baseUrl}/v1/sessions/${id}/bash/stream`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ cmd: "true" }),
        });
        expect(gone.status).toBe(404);
        expect(await gone.json()).toEqual({ detail: expect.any(String) });
      });

      it("the malformed requests of issue 8 answer 4xx JSON on the real server", async () => {
        const id = await createSession();
        for (const enc of ["gzip", "deflate", "br"]) {
          expectError(
            await api("/v1/execute", {
              body: Buffer.from("garbage, not compressed"),
              headers: { "content-type": "application/json", "content-encoding": enc },
            }),
            [400],
          );
        }
        expectError(await api(`/v1/sessions/${id}/files/%ff%fe`), [400]);
        expectError(
          await api(`/v1/sessions/${id}/files/%ff%fe`, { method: "PUT", body: Buffer.from("x") }),
          [400],
        );
        await deleteSession(id);
      });
    });

    // -------------------------------------------------------------- onyx client compatibility

    describe("onyx code-interpreter client compatibility", () => {
      /** Checks a value against the pydantic models of onyx's client (ExecuteResponse etc.). */
      function expectWorkspaceFiles(
        files: unknown,
      ): Array<{ path: string; kind: string; file_id: string | null }> {
        expect(Array.isArray(files)).toBe(true);
        for (const f of files as Array<Record<string, unknown>>) {
          expect(typeof f.path).toBe("string");
          expect(["file", "directory"]).toContain(f.kind);
          expect(f.file_id === undefined || f.file_id === null || typeof f.file_id === "string").toBe(true);
        }
        return files as Array<{ path: string; kind: string; file_id: string | null }>;
      }
      function expectExecFields(r: Record<string, unknown>, withOutput: boolean): void {
        if (withOutput) {
          expect(typeof r.stdout).toBe("string");
          expect(typeof r.stderr).toBe("string");
        }
        expect(r.exit_code === null || Number.isInteger(r.exit_code)).toBe(true);
        expect(typeof r.timed_out).toBe("boolean");
        expect(Number.isInteger(r.duration_ms)).toBe(true); // pydantic `int`
        expect(r.duration_ms as number).toBeGreaterThanOrEqual(0);
        expectWorkspaceFiles(r.files);
      }

      it("health, upload (multipart field `file`), execute, download, stream, delete — as onyx sends them", async () => {
        // health(): status == "ok" and a MAJOR.MINOR.PATCH version.
        const health = await api("/health");
        expect(health.status).toBe(200);
        expect(health.body.status).toBe("ok");
        expect(health.body.version).toMatch(/^\d+\.\d+\.\d+([-+].*)?$/);

        // upload_file(): requests' files={"file": (filename, bytes)} — a part without Content-Type.
        const csv = Buffer.from("name,score\nada,3\nbob,4\n");
        const form = multipart("file", "scores.csv", csv);
        const up = await api("/v1/files", { body: form.body, headers: { "content-type": form.contentType } });
        expect(up.status, up.text).toBe(201);
        expect(up.body).toEqual({
          file_id: expect.any(String),
          filename: "scores.csv",
          size_bytes: csv.length,
        });
        const fileId = up.body.file_id as string;

        const listed = await api("/v1/files");
        const meta = (listed.body.files as Array<Record<string, unknown>>).find((f) => f.file_id === fileId);
        expect(meta).toMatchObject({ file_id: fileId, filename: "scores.csv", size_bytes: csv.length });
        expect(typeof meta!.upload_time).toBe("number");
        expect(Math.abs((meta!.upload_time as number) - Date.now() / 1000)).toBeLessThan(300);

        // execute(): payload is exactly {code, timeout_ms, files}.
        const code = [
          "import csv, os",
          "rows = list(csv.DictReader(open('scores.csv')))",
          "os.makedirs('outputs', exist_ok=True)",
          "open('outputs/total.txt', 'w').write(str(sum(int(r['score']) for r in rows)))",
          "print('rows', len(rows))",
        ].join("\n");
        const ex = await api("/v1/execute", {
          json: {
            code,
            timeout_ms: 30_000 > env.limits.maxExecTimeoutMs ? env.limits.maxExecTimeoutMs : 30_000,
            files: [{ path: "scores.csv", file_id: fileId }],
          },
        });
        expect(ex.status, ex.text).toBe(200);
        expectExecFields(ex.body, true);
        expect(ex.body).toMatchObject({ stdout: "rows 2\n", stderr: "", exit_code: 0, timed_out: false });
        const files = expectWorkspaceFiles(ex.body.files);
        const total = files.find((f) => f.path === "outputs/total.txt");
        expect(total).toMatchObject({ kind: "file", file_id: expect.any(String) });
        expect(files.map((f) => f.path)).not.toContain("scores.csv");

        // download_file(): raw bytes.
        const down = await api(`/v1/files/${total!.file_id}`);
        expect(down.status).toBe(200);
        expect(down.text).toBe("7");

        // execute_streaming(): raw `event:` / `data:` lines.
        const res = await fetch(`${env.baseUrl}/v1/execute/stream`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            code: "import sys\nprint('out line')\nprint('err line', file=sys.stderr)\nn = open('made.txt', 'w').write('m')",
            timeout_ms: 10_000,
          }),
        });
        expect(res.status).toBe(200);
        const events = await readSse(res);
        for (const ev of events) expect(["output", "result", "error"]).toContain(ev.event);
        const outputs = events
          .filter((e) => e.event === "output")
          .map((e) => JSON.parse(e.data) as Record<string, unknown>);
        for (const o of outputs) {
          expect(["stdout", "stderr"]).toContain(o.stream);
          expect(typeof o.data).toBe("string");
        }
        const joined = (s: string) =>
          outputs
            .filter((o) => o.stream === s)
            .map((o) => o.data)
            .join("");
        expect(joined("stdout")).toBe("out line\n");
        expect(joined("stderr")).toBe("err line\n");
        const results = events.filter((e) => e.event === "result");
        expect(results).toHaveLength(1);
        const result = JSON.parse(results[0]!.data) as Record<string, unknown>;
        expectExecFields(result, false);
        expect(result).toMatchObject({ exit_code: 0, timed_out: false });
        expect(expectWorkspaceFiles(result.files)).toContainEqual({
          path: "made.txt",
          kind: "file",
          file_id: expect.any(String),
        });

        // A timed-out run as onyx reads it: exit_code None, timed_out True, int duration.
        const slow = await api("/v1/execute", {
          json: { code: "import time\ntime.sleep(10)", timeout_ms: 1000 },
        });
        expectExecFields(slow.body, true);
        expect(slow.body).toMatchObject({ exit_code: null, timed_out: true });

        // delete_file(): any 2xx.
        const del = await api(`/v1/files/${fileId}`, { method: "DELETE" });
        expect(del.status).toBeGreaterThanOrEqual(200);
        expect(del.status).toBeLessThan(300);
        expectError(await api(`/v1/files/${fileId}`), [404]);
      });
    });

    describe("onyx client session methods (field names and types of its pydantic models)", () => {
      it("health gate, create_session with files, execute_bash_in_session, execute, execute_streaming, delete_session", async () => {
        // health(): what the client's @requires gate reads.
        const health = onyxHealth((await api("/health")).body);
        expect(health.healthy).toBe(true);
        expect(health.version).toBe(PKG_VERSION);
        expect(onyxVersionGte(health.version, ONYX_SESSIONS_MIN_VERSION)).toBe(
          onyxVersionGte(PKG_VERSION, ONYX_SESSIONS_MIN_VERSION),
        );

        // upload_file(): files={"file": (filename, bytes)}.
        const csv = Buffer.from("n\n1\n2\n3\n");
        const form = multipart("file", "nums.csv", csv);
        const up = await api("/v1/files", { body: form.body, headers: { "content-type": form.contentType } });
        expect(up.status, up.text).toBe(201);
        const fileId = up.body.file_id as string;

        // create_session(ttl_seconds=60, files=[...]): payload {"ttl_seconds", "files"}.
        const t0 = Date.now() / 1000;
        const created = await api("/v1/sessions", {
          json: { ttl_seconds: 60, files: [{ path: "nums.csv", file_id: fileId }] },
        });
        expect(created.status, created.text).toBe(201);
        const session = CreateSessionResponse.parse(created.body);
        sessions.add(session.session_id);
        expect(session.expires_at).toBeGreaterThan(t0 + 50);
        expect(session.expires_at).toBeLessThan(t0 + 120);

        // execute_bash_in_session(id, cmd): payload {"cmd", "timeout_ms": 30000}.
        const bash = await api(`/v1/sessions/${session.session_id}/bash`, {
          json: {
            cmd: "test -f nums.csv && printf 'rows=%s' $(tail -n +2 nums.csv | wc -l)",
            timeout_ms: 30_000,
          },
        });
        expect(bash.status, bash.text).toBe(200);
        expect(BashExecResponse.parse(bash.body)).toMatchObject({
          stdout: "rows=3",
          exit_code: 0,
          timed_out: false,
        });
        const slow = await api(`/v1/sessions/${session.session_id}/bash`, {
          json: { cmd: "sleep 10", timeout_ms: 1000 },
        });
        expect(BashExecResponse.parse(slow.body)).toMatchObject({ exit_code: null, timed_out: true });

        // execute() / execute_streaming(): payload {"code", "timeout_ms", "files"?}.
        const ex = await api("/v1/execute", { json: { code: "print(6 * 7)", timeout_ms: 30_000 } });
        expect(ExecuteResponse.parse(ex.body)).toMatchObject({ stdout: "42\n", exit_code: 0 });
        const res = await fetch(`${env.baseUrl}/v1/execute/stream`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ code: "print('s')", timeout_ms: 30_000 }),
        });
        expect(res.status).toBe(200);
        const models = { output: StreamOutputEvent, result: StreamResultEvent, error: StreamErrorEvent };
        const events = (await readSse(res)).map((e) => {
          const model = models[e.event as keyof typeof models];
          expect(model, `unknown event ${e.event}`).toBeDefined();
          return { event: e.event, data: model.parse(JSON.parse(e.data)) };
        });
        expect(events.at(-1)).toMatchObject({ event: "result", data: { exit_code: 0 } });

        // delete_session(id): any 2xx; then it is gone.
        const del = await api(`/v1/sessions/${session.session_id}`, { method: "DELETE" });
        expect(del.status).toBeGreaterThanOrEqual(200);
        expect(del.status).toBeLessThan(300);
        sessions.delete(session.session_id);
        expectError(
          await api(`/v1/sessions/${session.session_id}/bash`, { json: { cmd: "true", timeout_ms: 30_000 } }),
          [404],
        );
        await api(`/v1/files/${fileId}`, { method: "DELETE" });
      });
    });

    describe("issue 9: a session is an interpreter that remembers (the resident agent)", () => {
      const run = (id: string, code: string, more: Record<string, unknown> = {}) =>
        api(`/v1/sessions/${id}/execute`, { json: { code, ...more } });

      it("variables, functions, imports and a 100 MB object persist across calls; reset clears them", async () => {
        // The e2e API runs with MEMORY_LIMIT_MB=128, too little for a 100 MB object beside the
        // agent and its kernel: this test has an API of its own with 256 MB sessions.
        const big = await env.startWith({ MEMORY_LIMIT_MB: "256" });
        const bigApi = (path: string, opts?: RequestOpts) => call(big.baseUrl, path, opts);
        const run = (id: string, code: string, more: Record<string, unknown> = {}) =>
          bigApi(`/v1/sessions/${id}/execute`, { json: { code, ...more } });
        const created = await bigApi("/v1/sessions", { json: { ttl_seconds: 300 } });
        expect(created.status, created.text).toBe(201);
        const id = created.body.session_id as string;
        sessions.add(id);
        try {
          const first = await run(id, "x = 5");
          expect(first.body).toMatchObject({ exit_code: 0, state_reset: null });
          expect((await run(id, "print(x)")).body).toMatchObject({ stdout: "5\n", exit_code: 0 });
          await run(id, "def twice(v):\n    return 2 * v");
          await run(id, "import json");
          expect((await run(id, "print(twice(21))")).body).toMatchObject({ stdout: "42\n", exit_code: 0 });
          expect((await run(id, "print(json.dumps({'a': x}))")).body).toMatchObject({
            stdout: '{"a": 5}\n',
          });
          expect((await run(id, "blob = bytearray(100 * 1024 * 1024)")).body).toMatchObject({ exit_code: 0 });
          for (let i = 0; i < 9; i++)
            expect((await run(id, `y = ${i}`)).body).toMatchObject({ exit_code: 0 });
          expect((await run(id, "len(blob)")).body).toMatchObject({ stdout: `${100 * 1024 * 1024}\n` });
          // Bash shares the workspace, not the Python state; it does not disturb it.
          expect((await bigApi(`/v1/sessions/${id}/bash`, { json: { cmd: "echo $x" } })).body).toMatchObject({
            stdout: "\n",
            exit_code: 0,
          });
          const reset = await run(id, "print('blob' in globals(), 'x' in globals())", { reset: true });
          expect(reset.body).toMatchObject({ stdout: "False False\n", exit_code: 0 });
          expect(reset.body.state_reset).toEqual({ reason: expect.any(String) });
          expect((await run(id, "print('after')")).body).toMatchObject({
            stdout: "after\n",
            state_reset: null,
          });
          expectError(await run(id, "1", { reset: "yes" }), [422]);
          expect((await bigApi(`/v1/sessions/${id}`, { method: "DELETE" })).status).toBe(204);
          sessions.delete(id);
        } finally {
          await big.close();
        }
      });

      it("a timeout interrupts the cell and keeps the state", { retry: TIMING_RETRY }, async () => {
        const id = await createSession();
        await run(id, "x = 1");
        const res = await run(id, "while True:\n    pass", { timeout_ms: 1000 });
        expect(res.body).toMatchObject({ timed_out: true, exit_code: null, state_reset: null });
        expect(res.ms).toBeLessThan(2500);
        expect((await run(id, "print(x)")).body).toMatchObject({ stdout: "1\n", state_reset: null });
        await deleteSession(id);
      });

      it("a cell that ignores the interrupt is killed: the response says the state was reset", async () => {
        const id = await createSession();
        await run(id, "x = 1");
        const res = await run(
          id,
          "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
          { timeout_ms: 1000 },
        );
        expect(res.body).toMatchObject({ timed_out: true, exit_code: null });
        expect(res.body.state_reset).toEqual({ reason: expect.stringMatching(/restarted|interrupt/) });
        expect(res.ms).toBeLessThan(10_000);
        const next = await run(id, "print('x' in globals())");
        expect(next.body).toMatchObject({ stdout: "False\n", exit_code: 0, state_reset: null });
        await deleteSession(id);
      });

      /** Reads a streamed body until `text` was seen (null: to its end); what it read. */
      const readUntil = async (reader: ReadableStreamDefaultReader<Uint8Array>, text: string | null) => {
        let seen = "";
        while (text === null || !seen.includes(text)) {
          const { value, done } = await reader.read();
          if (done) break;
          seen += new TextDecoder().decode(value);
        }
        return seen;
      };

      /** Processes in the session whose command line starts with `/bin/sleep <prefix>`. */
      const sleepers = async (id: string, prefix: string) => {
        const ps = await env.inspect.exec(id, [
          "python3",
          "-c",
          `import os\nn = 0\nfor p in os.listdir('/proc'):\n    try:\n        c = open('/proc/%s/cmdline' % p, 'rb').read()\n    except Exception:\n        continue\n    n += c.startswith(b'/bin/sleep\\x00${prefix}')\nprint(n)`,
        ]);
        return Number(ps.stdout.toString().trim());
      };

      for (const how of ["timeout", "client disconnect"] as const)
        it(`a cell's ${how} kills every process it started (subprocess, os.system, double-forked); the state stays`, async () => {
          const id = await createSession();
          await run(id, "x = 1");
          const code = [
            "import os, subprocess",
            "p = subprocess.Popen(['/bin/sleep', '411'])",
            "os.system('env -i /bin/sleep 412 &')",
            "if os.fork() == 0:",
            "    os.setsid()",
            "    if os.fork() == 0:",
            "        os.execv('/bin/sleep', ['/bin/sleep', '413'])",
            "    os._exit(0)",
            "print('started', flush=True)",
            "while True:",
            "    pass",
          ].join("\n");
          const abort = new AbortController();
          const res = await fetch(`${env.baseUrl}/v1/sessions/${id}/execute/stream`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ code, timeout_ms: how === "timeout" ? 3000 : 30_000 }),
            signal: abort.signal,
          });
          expect(res.status).toBe(200);
          const reader = res.body!.getReader();
          let seen = await readUntil(reader, "started");
          expect(await sleepers(id, "41")).toBe(3);
          if (how === "timeout") {
            seen += await readUntil(reader, null);
            expect(seen).toMatch(/"timed_out":\s*true/);
          } else abort.abort();
          await waitFor(
            "the cell's processes to be killed",
            async () => (await sleepers(id, "41")) === 0,
            5_000,
          );
          // (after a disconnect the interrupted cell may still be ending: 409 until it has)
          let next = await run(id, "print(x, p.poll())");
          for (let i = 0; i < 50 && next.status === 409; i++) {
            await new Promise((r) => setTimeout(r, 100));
            next = await run(id, "print(x, p.poll())");
          }
          expect(next.body).toMatchObject({ stdout: "1 -9\n", state_reset: null });
          await deleteSession(id);
        });

      it("a client that leaves /bash/stream gets every process of the call killed, env -i children too", async () => {
        const id = await createSession();
        const abort = new AbortController();
        const res = await fetch(`${env.baseUrl}/v1/sessions/${id}/bash/stream`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            cmd: "env -i /bin/sleep 301 & setsid env -i /bin/sleep 302 & echo started; wait",
            timeout_ms: 30_000,
          }),
          signal: abort.signal,
        });
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        const seen = await readUntil(reader, "started");
        expect(seen).toContain("started");
        expect(await sleepers(id, "30")).toBe(2);
        abort.abort();
        await waitFor(
          "the call's processes to be killed",
          async () => (await sleepers(id, "30")) === 0,
          10_000,
        );
        // The session still answers.
        expect((await api(`/v1/sessions/${id}/bash`, { json: { cmd: "echo ok" } })).body).toMatchObject({
          stdout: "ok\n",
        });
        await deleteSession(id);
      });

      it("code that kills the agent: a clear answer, then a fresh agent that says the state was lost", async () => {
        const id = await createSession();
        await run(id, "x = 1");
        const killed = await run(id, "import os\nos.kill(os.getppid(), 9)", { timeout_ms: 5000 });
        expect(killed.ms).toBeLessThan(15_000);
        if (killed.status !== 200) expectError(killed, [500, 502, 503]);
        const next = await run(id, "print('x' in globals())");
        expect(next.status, next.text).toBe(200);
        expect(next.body).toMatchObject({ stdout: "False\n", exit_code: 0 });
        expect(next.body.state_reset).toEqual({ reason: expect.any(String) });

        // kill -9 -1 from bash: every process of the code's uid, the agent included.
        await run(id, "y = 2");
        const all = await api(`/v1/sessions/${id}/bash`, { json: { cmd: "kill -9 -1", timeout_ms: 5000 } });
        expect(all.ms).toBeLessThan(15_000);
        if (all.status !== 200) expectError(all, [500, 502, 503]);
        const after = await run(id, "print('y' in globals())");
        expect(after.status, after.text).toBe(200);
        expect(after.body).toMatchObject({ stdout: "False\n", exit_code: 0 });
        expect(after.body.state_reset).toEqual({ reason: expect.any(String) });
        expect(await env.inspect.isRunning(id)).toBe(true);
        await deleteSession(id);
      });
    });

    it("every answer above matched the server's OpenAPI document (status, JSON schema)", () => {
      expect(contract?.checked ?? 0).toBeGreaterThan(50);
    });

    // Last: after the sessions are deleted, nothing this API created is left on the platform.
    it("leaves no container/pod behind", async () => {
      for (const id of [...sessions]) await deleteSession(id);
      const names = env.inspect.createdNames();
      expect(names.length).toBeGreaterThan(10);
      const left: string[] = [];
      await waitFor(
        "every created container/pod to be gone",
        async () => {
          left.length = 0;
          for (const n of names) if (await env.inspect.containerExists(n)) left.push(n);
          return left.length === 0;
        },
        10_000,
      ).catch(() => undefined);
      expect(left).toEqual([]);
    });
  });
}
