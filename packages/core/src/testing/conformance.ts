/**
 * Backend conformance suite: the behaviour every Backend must share, written once and run
 * by each backend's own tests (Docker against the real engine, Kubernetes against its fake
 * apiserver). Uses vitest (an optional peer dependency of core); import it only from tests:
 *
 *   describeBackendConformance("docker", async () => ({ backend, cleanup: () => ... }));
 */
import { Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, SessionInfo } from "../backend.js";
import { NotFoundError, SessionNotFoundError } from "../errors.js";
import { TRUNCATION_MARKER } from "../output.js";
import { BINARY, MAX_OUT, collector, py, staged } from "./conformance-fixtures.js";
import { describeSessionLayerRows } from "./conformance-layer.js";

export interface ConformanceHarness {
  backend: Backend;
  /** Releases what makeBackend created (the suite deletes its own sessions first). */
  cleanup(): Promise<void>;
}

export interface ConformanceOptions {
  /** Session lifetime cap the backend was built with (default 3600): keepalive must stop there. */
  sessionMaxLifetimeSeconds?: number;
  /** Timeout for the program of the timeout test (default 1500 ms). */
  execTimeoutMs?: number;
  /**
   * The backend may end an expired session by itself (e.g. Docker's keeper exits at expiry and
   * AutoRemove deletes the container), so the reaper may find nothing left to report. The
   * session must be gone either way. Default false: the reaper must report it.
   */
  selfExpiring?: boolean;
}

export function describeBackendConformance(
  name: string,
  makeBackend: () => Promise<ConformanceHarness>,
  opts: ConformanceOptions = {},
): void {
  const maxLifetime = opts.sessionMaxLifetimeSeconds ?? 3600;
  const execTimeoutMs = opts.execTimeoutMs ?? 1500;

  describe(`backend conformance: ${name}`, () => {
    let h: ConformanceHarness;
    let b: Backend;
    let session: SessionInfo;
    const created: string[] = [];

    const create = async (req: Partial<Parameters<Backend["createSession"]>[0]> = {}) => {
      const s = await b.createSession({
        files: [],
        ttlSeconds: 600,
        idleTimeoutSeconds: null,
        metadata: {},
        owner: null,
        ...req,
      });
      created.push(s.id);
      return s;
    };

    beforeAll(async () => {
      h = await makeBackend();
      b = h.backend;
      session = await create({
        files: [staged("data/input.bin", BINARY), staged("hello.txt", "hello\n")],
        metadata: { chat_id: "abc", purpose: "conformance" },
        owner: "owner-a",
      });
    });

    afterAll(async () => {
      if (!b) return;
      for (const id of created) await b.deleteSession(id).catch(() => undefined);
      await b.close().catch(() => undefined);
      await h.cleanup();
    });

    it("creates a running session whose metadata, owner and times read back", async () => {
      expect(session.id).toMatch(/^code-session-[0-9a-f-]{36}$/);
      expect(session.status).toBe("running");
      expect(session.metadata).toEqual({ chat_id: "abc", purpose: "conformance" });
      expect(session.owner).toBe("owner-a");
      expect(session.expiresAt - session.createdAt).toBe(600_000);
      expect(session.maxExpiresAt - session.createdAt).toBe(maxLifetime * 1000);

      const got = await b.getSession(session.id);
      expect(got).toMatchObject({
        id: session.id,
        status: "running",
        metadata: session.metadata,
        createdAt: session.createdAt,
        expiresAt: session.expiresAt,
      });
      const listed = await b.listSessions({ owner: "owner-a" });
      expect(listed.map((s) => s.id)).toContain(session.id);
      expect(listed.find((s) => s.id === session.id)?.metadata).toEqual(session.metadata);
    });

    it("hides a session from other owners", async () => {
      await expect(b.getSession(session.id, { owner: "owner-b" })).rejects.toBeInstanceOf(
        SessionNotFoundError,
      );
      expect((await b.listSessions({ owner: "owner-b" })).map((s) => s.id)).not.toContain(session.id);
      await expect(b.deleteSession(session.id, { owner: "owner-b" })).rejects.toBeInstanceOf(
        SessionNotFoundError,
      );
    });

    it("stages files byte-identically into /workspace", async () => {
      const f = await b.readSessionFile(session.id, "data/input.bin");
      expect(f.sizeBytes).toBe(BINARY.length);
      expect((await readAll(f.content)).equals(BINARY)).toBe(true);
      const r = await b.execInSession(
        session.id,
        py("import hashlib\nprint(hashlib.sha256(open('data/input.bin','rb').read()).hexdigest())"),
      );
      const { createHash } = await import("node:crypto");
      expect(r.stdout.trim()).toBe(createHash("sha256").update(BINARY).digest("hex"));
    });

    it("runs Python: print, last-line value, traceback, stdin", async () => {
      const r1 = await b.execInSession(session.id, py("print('hi')\n2 + 2"));
      expect(r1).toMatchObject({ stdout: "hi\n4\n", stderr: "", exitCode: 0, timedOut: false });

      const r2 = await b.execInSession(session.id, py("x = 1\nx + 1", { lastLineInteractive: false }));
      expect(r2.stdout).toBe("");

      const r3 = await b.execInSession(session.id, py("def f():\n    return 1 / 0\nf()"));
      expect(r3.exitCode).toBe(1);
      expect(r3.stderr).toContain("Traceback (most recent call last)");
      expect(r3.stderr).toContain("ZeroDivisionError");
      expect(r3.stderr).toContain('File "<string>", line 2, in f');

      const r4 = await b.execInSession(
        session.id,
        py("import sys\nprint(sys.stdin.read().upper(), end='')", { stdin: "from stdin\nline 2\n" }),
      );
      expect(r4.stdout).toBe("FROM STDIN\nLINE 2\n");
      const r5 = await b.execInSession(session.id, py("import sys\nprint(repr(sys.stdin.read()))"));
      expect(r5.stdout).toBe("''\n");
    });

    it("runs bash in /workspace as an unprivileged user", async () => {
      const r = await b.execInSession(session.id, {
        language: "bash",
        code: "pwd; id -u; cat hello.txt; echo oops >&2; exit 4",
        timeoutMs: 20_000,
        maxOutputBytes: MAX_OUT,
      });
      const [pwd, uid, hello] = r.stdout.split("\n");
      expect(pwd).toBe("/workspace");
      expect(Number(uid)).not.toBe(0);
      expect(hello).toBe("hello");
      expect(r.stderr).toBe("oops\n");
      expect(r.exitCode).toBe(4);
    });

    it("kills a program on timeout and keeps the session", async () => {
      const started = Date.now();
      const r = await b.execInSession(
        session.id,
        py(
          "import time\nprint('started', flush=True)\nopen('marker.txt','w').write('x')\ntime.sleep(60)\nprint('never')",
          {
            timeoutMs: execTimeoutMs,
          },
        ),
      );
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBeNull();
      expect(r.stdout).toContain("started");
      expect(r.stdout).not.toContain("never");
      expect(Date.now() - started).toBeLessThan(execTimeoutMs + 15_000);
      // The session lives on and the program is gone.
      const after = await b.execInSession(session.id, {
        language: "bash",
        code: "cat marker.txt",
        timeoutMs: 20_000,
        maxOutputBytes: MAX_OUT,
      });
      expect(after.exitCode).toBe(0);
      expect(after.stdout).toBe("x");
      expect((await b.getSession(session.id)).status).toBe("running");
    });

    it("truncates output at maxOutputBytes with the marker", async () => {
      const r = await b.execInSession(
        session.id,
        py("import sys\nprint('a' * 5000)\nsys.stderr.write('b' * 5000)", { maxOutputBytes: 100 }),
      );
      expect(r.stdout).toBe("a".repeat(100) + TRUNCATION_MARKER);
      expect(r.stderr).toBe("b".repeat(100) + TRUNCATION_MARKER);
      expect(r.exitCode).toBe(0);
    });

    it("collects new and changed files, not unchanged inputs", async () => {
      const got = new Map<string, Buffer>();
      const r = await b.execInSession(
        session.id,
        py(
          "import os\nos.makedirs('out/sub', exist_ok=True)\nopen('out/sub/new.txt','w').write('new file')\nopen('hello.txt').read()",
          { collectFiles: collector(got) },
        ),
      );
      expect(r.exitCode).toBe(0);
      expect([...got.keys()]).toEqual(["out/sub/new.txt"]);
      expect(got.get("out/sub/new.txt")?.toString()).toBe("new file");
      expect(r.files).toEqual([{ path: "out/sub/new.txt", kind: "file", fileId: "file-1", sizeBytes: 8 }]);

      const got2 = new Map<string, Buffer>();
      const r2 = await b.execInSession(
        session.id,
        py("open('hello.txt','a').write('more\\n')", { collectFiles: collector(got2) }),
      );
      expect(r2.files.map((f) => f.path)).toEqual(["hello.txt"]);
      expect(got2.get("hello.txt")?.toString()).toBe("hello\nmore\n");
    });

    it("writes, lists and reads session files; missing files are NotFoundError", async () => {
      const body = Buffer.from("line 1\nline 2\n");
      const w = await b.writeSessionFile(session.id, "notes/today.txt", {
        size: body.length,
        content: Readable.from([body]),
      });
      expect(w).toEqual({ path: "notes/today.txt", kind: "file", sizeBytes: body.length });
      const list = await b.listSessionFiles(session.id);
      expect(list).toContainEqual({ path: "notes", kind: "directory", sizeBytes: 0 });
      expect(list).toContainEqual({ path: "notes/today.txt", kind: "file", sizeBytes: body.length });
      expect(list).toContainEqual({ path: "data/input.bin", kind: "file", sizeBytes: BINARY.length });
      const paths = list.map((e) => e.path);
      expect([...paths].sort()).toEqual(paths);
      const f = await b.readSessionFile(session.id, "notes/today.txt");
      expect((await readAll(f.content)).equals(body)).toBe(true);
      const seen = await b.execInSession(session.id, py("print(open('notes/today.txt').read(), end='')"));
      expect(seen.stdout).toBe(body.toString());

      await expect(b.readSessionFile(session.id, "nope/missing.txt")).rejects.toBeInstanceOf(NotFoundError);
      await expect(b.readSessionFile(session.id, "notes")).rejects.toBeInstanceOf(NotFoundError);
    });

    it("moves last activity on use", async () => {
      const before = await b.getSession(session.id);
      await sleep(1100);
      await b.execInSession(session.id, py("1"));
      const after = await b.getSession(session.id);
      expect(after.lastActiveAt).toBeGreaterThan(before.lastActiveAt);
    });

    it("keepalive moves the expiry, capped by the max lifetime", async () => {
      const s = await create({ ttlSeconds: 60 });
      const k1 = await b.keepalive(s.id, 600);
      expect(k1.expiresAt).toBeGreaterThan(s.expiresAt);
      expect(k1.expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
      expect((await b.getSession(s.id)).expiresAt).toBe(k1.expiresAt);
      const k2 = await b.keepalive(s.id, maxLifetime * 10);
      expect(k2.expiresAt).toBe(s.maxExpiresAt);
      // Never earlier than it was.
      const k3 = await b.keepalive(s.id, 1);
      expect(k3.expiresAt).toBe(s.maxExpiresAt);
    });

    it("deletes a session; later calls are SessionNotFoundError", async () => {
      const s = await create();
      await b.deleteSession(s.id);
      await expect(b.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
      await expect(b.deleteSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
      await expect(b.execInSession(s.id, py("1"))).rejects.toBeInstanceOf(SessionNotFoundError);
      expect((await b.listSessions()).map((x) => x.id)).not.toContain(s.id);
    });

    it("answers SessionNotFoundError for ids that are not session ids", async () => {
      for (const id of [
        "code-exec-00000000-0000-4000-8000-000000000000",
        "kube-apiserver",
        "code-session-../x",
        "",
      ]) {
        await expect(b.getSession(id)).rejects.toBeInstanceOf(SessionNotFoundError);
        await expect(b.deleteSession(id)).rejects.toBeInstanceOf(SessionNotFoundError);
        await expect(b.execInSession(id, py("1"))).rejects.toBeInstanceOf(SessionNotFoundError);
      }
      await expect(b.getSession("code-session-00000000-0000-4000-8000-000000000000")).rejects.toBeInstanceOf(
        SessionNotFoundError,
      );
    });

    it("runs one-shot executions with staged and collected files", async () => {
      const got = new Map<string, Buffer>();
      const r = await b.execute({
        ...py(
          "import os\nprint(open('in/data.txt').read().strip())\nopen('result.txt','w').write('done')\nos.getcwd()",
        ),
        files: [staged("in/data.txt", "one-shot input\n")],
        collectFiles: collector(got),
      });
      expect(r.stdout).toBe("one-shot input\n'/workspace'\n");
      expect(r.exitCode).toBe(0);
      expect([...got.keys()]).toEqual(["result.txt"]);
      expect(r.files).toEqual([{ path: "result.txt", kind: "file", fileId: "file-1", sizeBytes: 4 }]);

      const t = await b.execute({
        ...py("import time\ntime.sleep(60)", { timeoutMs: execTimeoutMs }),
        files: [],
      });
      expect(t).toMatchObject({ timedOut: true, exitCode: null });
    });

    describeSessionLayerRows({
      backend: () => b,
      create,
      makeBackend,
      maxLifetimeSeconds: maxLifetime,
    });

    it("reaps an expired session", async () => {
      const s = await create({ ttlSeconds: 2 });
      const wait = s.expiresAt - Date.now() + 500;
      if (wait > 0) await sleep(wait);
      const report = await b.reap();
      if (!opts.selfExpiring) expect(report.reaped).toContainEqual({ id: s.id, reason: "expired" });
      expect(report.failed).toEqual([]);
      expect((await b.listSessions()).map((x) => x.id)).not.toContain(s.id);
      await expect(b.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
      // The main session is untouched.
      expect((await b.getSession(session.id)).status).toBe("running");
    });
  });
}
