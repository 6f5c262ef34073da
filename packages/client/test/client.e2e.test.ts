/**
 * The client against the real server on the real Docker engine: one-shot runs (streaming
 * callbacks in order, staged and produced files), sessions (create with files, bash, run,
 * session files, keepalive, `await using` removes the container), pagination, typed errors.
 * Never skipped: without an engine, setup fails and says how to get one.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthError,
  CodeInterpreter,
  CodeInterpreterError,
  NotFoundError,
  ValidationError,
  type Session,
} from "../src/index.js";
import { startTestServer, type TestServer } from "./server.js";

/** What the server's /health reports: the API package's version. */
const API_PACKAGE_VERSION = (
  createRequire(import.meta.url)("@code-interpreter/api/package.json") as { version: string }
).version;
const KEY = `key-${randomUUID()}`;
let server: TestServer;
let client: CodeInterpreter;
const created: Session[] = [];

beforeAll(async () => {
  server = await startTestServer({ API_KEYS: KEY });
  client = new CodeInterpreter({ baseUrl: server.baseUrl, apiKey: KEY });
}, 60_000);

afterAll(async () => {
  await Promise.all(created.map((s) => s[Symbol.asyncDispose]()));
  await server?.close();
}, 60_000);

async function newSession(opts: Parameters<CodeInterpreter["sessions"]["create"]>[0] = {}): Promise<Session> {
  const s = await client.sessions.create(opts);
  created.push(s);
  return s;
}

describe("one-shot execution", () => {
  it("health answers with the backend and version", async () => {
    const h = await client.health();
    expect(h).toMatchObject({ status: "ok", backend: "docker" });
    expect(h.version).toBe(API_PACKAGE_VERSION);
  });

  it("runs Python and returns its output and exit code", async () => {
    const r = await client.execute("print('hi')\n6 * 7");
    expect(r).toMatchObject({ stdout: "hi\n42\n", stderr: "", exitCode: 0, timedOut: false, files: [] });
    expect(r.durationMs).toBeGreaterThan(0);
    expect(r.stateReset).toBeUndefined(); // sessions only
  }, 60_000);

  it("streams stdout and stderr to the callbacks in the order they are printed", async () => {
    // Chunks of one stream may be split anywhere (print writes text and end separately):
    // adjacent pieces of the same stream are joined, the order between streams is kept.
    const events: string[] = [];
    const push = (tag: string, d: string) => {
      const last = events.at(-1);
      if (last?.startsWith(tag)) events[events.length - 1] = last + d;
      else events.push(tag + d);
    };
    const code = [
      "import sys, time",
      "print('one', flush=True); time.sleep(0.3)",
      "print('two', file=sys.stderr, flush=True); time.sleep(0.3)",
      "print('three', flush=True)",
    ].join("\n");
    const r = await client.execute(code, {
      onStdout: (d) => push("out:", d),
      onStderr: (d) => push("err:", d),
    });
    expect(events).toEqual(["out:one\n", "err:two\n", "out:three\n"]);
    expect(r).toMatchObject({ stdout: "one\nthree\n", stderr: "two\n", exitCode: 0, timedOut: false });
  }, 60_000);

  it("stages uploaded files and returns the files the code writes", async () => {
    const up = await client.files.upload("a,b\n1,2\n", "in.csv");
    expect(up).toMatchObject({ filename: "in.csv", sizeBytes: 8 });
    const r = await client.execute(
      "data = open('data/in.csv').read()\nopen('out.txt', 'w').write(data.upper())",
      { files: [{ path: "data/in.csv", fileId: up.id }], lastLineInteractive: false },
    );
    expect(r.exitCode).toBe(0);
    const out = r.files.find((f) => f.path === "out.txt");
    expect(out).toBeDefined();
    expect(new TextDecoder().decode(await client.files.download(out!.fileId))).toBe("A,B\n1,2\n");
    const listed = await client.files.list({ pageSize: 1 }).toArray();
    expect(listed.map((f) => f.id)).toEqual(expect.arrayContaining([up.id, out!.fileId]));
    expect(listed.every((f) => f.uploadTime instanceof Date)).toBe(true);
    await client.files.delete(up.id);
    await expect(client.files.download(up.id)).rejects.toBeInstanceOf(NotFoundError);
  }, 60_000);

  it("reports a timeout as timedOut with a null exit code", async () => {
    const r = await client.execute("import time\nprint('start', flush=True)\ntime.sleep(30)", {
      timeoutMs: 1500,
    });
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    expect(r.stdout).toContain("start");
  }, 60_000);
});

describe("cancelling", () => {
  it("an aborted execute rejects at once with the abort reason, also while streaming", async () => {
    for (const stream of [false, true]) {
      const controller = new AbortController();
      const started = Date.now();
      const run = client.execute("import time\nprint('x', flush=True)\ntime.sleep(20)", {
        signal: controller.signal,
        ...(stream ? { onStdout: () => controller.abort(new Error("stop")) } : {}),
      });
      if (!stream) setTimeout(() => controller.abort(new Error("stop")), 1_000);
      await expect(run).rejects.toThrow("stop");
      expect(Date.now() - started).toBeLessThan(10_000);
    }
  }, 60_000);
});

describe("sessions", () => {
  it("creates a session with files and metadata; bash, run, files, keepalive", async () => {
    const up = await client.files.upload(new Uint8Array([0, 1, 2, 255]), "blob.bin");
    const s = await newSession({
      files: [{ path: "in/blob.bin", fileId: up.id }],
      ttlSeconds: 300,
      metadata: { chat_id: "abc" },
    });
    expect(s.id).toMatch(/^code-session-[0-9a-f-]{36}$/);
    expect(s.info).toMatchObject({ status: "running", metadata: { chat_id: "abc" } });
    expect(s.info.expiresAt.getTime() - s.info.createdAt.getTime()).toBeCloseTo(300_000, -3);
    expect(await server.containerExists(s.id)).toBe(true);

    const ls = await s.bash("od -An -tu1 in/blob.bin | tr -s ' '");
    expect(ls).toMatchObject({ stdout: " 0 1 2 255\n", exitCode: 0, files: [] });
    expect((await s.bash("exit 3")).exitCode).toBe(3);

    const run = await s.run("import os\nsorted(os.listdir('in'))");
    expect(run).toMatchObject({ stdout: "['blob.bin']\n", exitCode: 0 });
    // A session remembers: variables and imports persist between runs (issue 9).
    expect((await s.run("x = 5")).stateReset).toBeNull();
    expect((await s.run("print(x + len(os.listdir('in')))")).stdout).toBe("6\n");
    // Streamed in a session: the callbacks see the output, the result carries state_reset.
    const seen: string[] = [];
    const streamed = await s.run("print(x)", { onStdout: (d) => void seen.push(d) });
    expect([seen.join(""), streamed.stdout, streamed.stateReset]).toEqual(["5\n", "5\n", null]);
    // reset: true starts a fresh interpreter, and the result says why its state is gone.
    const fresh = await s.run("print('x' in globals())", { reset: true });
    expect(fresh.stdout).toBe("False\n");
    expect(fresh.stateReset).toEqual({ reason: expect.any(String) });

    const written = await s.files.write("notes/a b.txt", "hello ✓");
    expect(written).toMatchObject({ path: "notes/a b.txt", sizeBytes: Buffer.byteLength("hello ✓") });
    expect(await s.files.readText("notes/a b.txt")).toBe("hello ✓");
    expect((await s.bash("cat 'notes/a b.txt'")).stdout).toBe("hello ✓");
    const copied = await s.files.copy(up.id, "copy.bin");
    expect(copied).toMatchObject({ path: "copy.bin", sizeBytes: 4 });
    expect(Array.from(await s.files.read("copy.bin"))).toEqual([0, 1, 2, 255]);

    const entries = await s.files.list({ pageSize: 2 }).toArray();
    expect(entries).toEqual(
      expect.arrayContaining([
        { path: "in/blob.bin", kind: "file", sizeBytes: 4 },
        { path: "notes", kind: "directory", sizeBytes: 0 },
        { path: "notes/a b.txt", kind: "file", sizeBytes: Buffer.byteLength("hello ✓") },
        { path: "copy.bin", kind: "file", sizeBytes: 4 },
      ]),
    );

    const before = s.info.expiresAt.getTime();
    const kept = await s.keepalive(500);
    expect(kept.expiresAt.getTime()).toBeGreaterThan(before);
    expect((await s.refresh()).expiresAt.getTime()).toBe(kept.expiresAt.getTime());

    const again = await client.sessions.get(s.id);
    expect(again.info.metadata).toEqual({ chat_id: "abc" });
  }, 120_000);

  it("lists the caller's sessions across pages", async () => {
    const a = await newSession();
    const b = await newSession();
    const ids: string[] = [];
    for await (const s of client.sessions.list({ pageSize: 1 })) ids.push(s.id);
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(new Set(ids).size).toBe(ids.length);
  }, 120_000);

  it("`await using` deletes the session and its container when the scope ends", async () => {
    let id = "";
    {
      await using s = await client.sessions.create({ ttlSeconds: 120 });
      id = s.id;
      expect((await s.bash("echo inside")).stdout).toBe("inside\n");
      expect(await server.containerExists(id)).toBe(true);
    }
    expect(await server.containerExists(id)).toBe(false);
    await expect(client.sessions.get(id)).rejects.toBeInstanceOf(NotFoundError);
  }, 120_000);

  it("delete() twice: the second is a NotFoundError", async () => {
    const s = await client.sessions.create();
    await s.delete();
    const err = await s.delete().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ status: 404 });
    expect((err as NotFoundError).requestId).toBeTruthy();
  }, 120_000);
});

describe("typed errors", () => {
  it("a wrong or missing key is an AuthError (401)", async () => {
    for (const apiKey of [undefined, "wrong"]) {
      const bad = new CodeInterpreter({ baseUrl: server.baseUrl, apiKey, maxRetries: 0 });
      const err = await bad.sessions
        .list()
        .toArray()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect(err).toBeInstanceOf(CodeInterpreterError);
      expect(err).toMatchObject({ status: 401 });
    }
  });

  it("an unknown session is a NotFoundError (404)", async () => {
    const err = await client.sessions.get(`code-session-${randomUUID()}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).detail).toMatch(/not found/i);
  });

  it("invalid fields are a ValidationError (422) with the server's detail", async () => {
    const err = await client.execute("1", { timeoutMs: 10_000_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).detail).toMatch(/timeout_ms/);
    const s = await newSession();
    await expect(s.files.write("../escape", "x")).rejects.toBeInstanceOf(ValidationError);
    await expect(s.files.write("/etc/passwd", "x")).rejects.toBeInstanceOf(ValidationError);
    // An id of dots would resolve to another route in a URL: refused as not found.
    await expect(client.sessions.get("..")).rejects.toBeInstanceOf(NotFoundError);
  }, 60_000);
});
