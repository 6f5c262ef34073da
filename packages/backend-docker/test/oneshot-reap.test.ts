import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { buffer as readAll } from "node:stream/consumers";
import { SessionNotFoundError, type OneShotRequest } from "@code-interpreter/core";
import { LABEL_REAP_AFTER } from "@code-interpreter/core/backend-kit";
import {
  IMAGE,
  cleanup,
  docker,
  exists,
  gone,
  makeBackend,
  plainExec,
  sessionReq,
  staged,
  startPlainContainer,
  track,
} from "./helpers.js";

const backend = makeBackend();

afterAll(async () => {
  await backend.close();
  await cleanup();
});

/** Learns the executor container names the backend creates (they are random). */
const executorNames: string[] = [];
const origCreate = docker.createContainer.bind(docker);
docker.createContainer = ((opts: Parameters<typeof origCreate>[0]) => {
  if (opts.name?.startsWith("code-exec-")) executorNames.push(track(opts.name));
  if (opts.name?.startsWith("code-session-")) track(opts.name);
  return origCreate(opts);
}) as typeof docker.createContainer;

const req = (code: string, extra: Partial<OneShotRequest> = {}): OneShotRequest => ({
  language: "python",
  code,
  timeoutMs: 10_000,
  maxOutputBytes: 100_000,
  files: [],
  ...extra,
});

describe("one-shot execute", () => {
  it("runs with staged files, collects output files and removes the container", async () => {
    const input = randomBytes(10_000);
    const got: Array<{ path: string; bytes: Buffer }> = [];
    const r = await backend.execute(
      req(
        "import shutil\nshutil.copy('data/in.bin', 'out.bin')\nprint(open('data/in.bin','rb').read()[:0])\n6 * 7",
        {
          files: [staged("data/in.bin", input)],
          collectFiles: async (f) => {
            got.push({ path: f.path, bytes: await readAll(f.content) });
            return "id-1";
          },
        },
      ),
    );
    expect(r).toMatchObject({ stdout: "b''\n42\n", stderr: "", exitCode: 0, timedOut: false });
    expect(got.map((g) => g.path)).toEqual(["out.bin"]);
    expect(got[0]!.bytes.equals(input)).toBe(true);
    const name = executorNames.at(-1)!;
    expect(await exists(name)).toBe(false);
  });

  it("streams output events while running", async () => {
    const events: Array<{ data: string; at: number }> = [];
    const r = await backend.execute(
      req("import time\nprint('a', flush=True)\ntime.sleep(0.3)\nprint('b')", {
        onOutput: (e) => events.push({ data: `${e.stream}:${e.data}`, at: Date.now() }),
      }),
    );
    expect(r.stdout).toBe("a\nb\n");
    expect(events.map((e) => e.data.replace(/^stdout:/, "")).join("")).toBe("a\nb\n");
    const a = events.find((e) => e.data.includes("a"))!;
    const b = events.find((e) => e.data.includes("b"))!;
    expect(b.at - a.at).toBeGreaterThanOrEqual(200); // "a" arrived while the code still ran
  });

  it("is removed after a timeout", async () => {
    const t0 = Date.now();
    const r = await backend.execute(req("print('x', flush=True)\nwhile True: pass", { timeoutMs: 1000 }));
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await exists(executorNames.at(-1)!)).toBe(false);
  });

  it("is removed after an abort", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1500);
    const t0 = Date.now();
    const r = await backend.execute(req("while True: pass", { timeoutMs: 30_000, signal: ac.signal }));
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBeNull();
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(await exists(executorNames.at(-1)!)).toBe(false);
  });

  it("is removed after an error (staging fails)", async () => {
    const n = executorNames.length;
    await expect(
      backend.execute(
        req("print(1)", { files: [{ path: "x", size: 3, open: () => Promise.reject(new Error("gone")) }] }),
      ),
    ).rejects.toMatchObject({ status: 500 });
    expect(executorNames.length).toBe(n + 1);
    expect(await exists(executorNames.at(-1)!)).toBe(false);
  });

  it("runs hardened too", async () => {
    const r = await backend.execute(
      req("", {
        language: "bash",
        code: "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; touch /etc/x",
      }),
    );
    expect(r.stdout).toMatch(/^65532\nCapEff:\s+0+\nNoNewPrivs:\s+1\n$/);
    expect(r.exitCode).not.toBe(0);
  });
});

describe("keepalive", () => {
  it("moves expiresAt later, never past maxExpiresAt", async () => {
    const b = makeBackend({ sessionMaxLifetimeSeconds: 120 });
    const s = await b.createSession(sessionReq({ ttlSeconds: 30 }));
    track(s.id);
    expect(s.maxExpiresAt - s.createdAt).toBe(120_000);
    const k1 = await b.keepalive(s.id, 60);
    expect(k1.expiresAt).toBeGreaterThan(s.expiresAt);
    expect(k1.expiresAt).toBeLessThanOrEqual(s.maxExpiresAt);
    const k2 = await b.keepalive(s.id, 100_000);
    expect(k2.expiresAt).toBe(s.maxExpiresAt);
    // Another backend instance (another API process) sees the same state.
    const other = makeBackend({ sessionMaxLifetimeSeconds: 120 });
    expect((await other.getSession(s.id)).expiresAt).toBe(s.maxExpiresAt);
    await expect(b.keepalive(s.id, 0)).rejects.toMatchObject({ status: 422 });
    await b.deleteSession(s.id);
    await Promise.all([b.close(), other.close()]);
  });
});

describe("reap", () => {
  it("removes an expired session, spares foreign and one-label containers", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 2 }));
    track(s.id);
    const plain = `ci-test-plain-${randomUUID()}`;
    const oneLabel = `code-session-${randomUUID()}`;
    const fakeExecutor = `code-exec-${randomUUID()}`;
    await startPlainContainer(plain, { app: "code-interpreter", component: "session" });
    await startPlainContainer(oneLabel, { app: "code-interpreter" });
    // An executor-named container without the component label, long past its reap-after.
    await startPlainContainer(fakeExecutor, { app: "code-interpreter", [LABEL_REAP_AFTER]: "1" });

    expect((await backend.reap()).reaped.map((x) => x.id)).not.toContain(s.id);
    const later = s.expiresAt + 500;
    const report = await backend.reap(later);
    const mine = report.reaped.find((x) => x.id === s.id);
    if (mine) expect(mine.reason).toBe("expired");
    expect(report.failed.filter((f) => [s.id, plain, oneLabel, fakeExecutor].includes(f.id))).toEqual([]);
    expect(await gone(s.id)).toBe(true);
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    for (const n of [plain, oneLabel, fakeExecutor]) {
      expect((await docker.getContainer(n).inspect()).State.Running).toBe(true);
    }
  });

  it("lets an expired session end itself through its keeper", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 2 }));
    track(s.id);
    expect(await gone(s.id, 15_000)).toBe(true);
  });

  it("ends an idle session through its keeper", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 600, idleTimeoutSeconds: 2 }));
    track(s.id);
    await expect(backend.getSession(s.id)).resolves.toMatchObject({ id: s.id, idleTimeoutSeconds: 2 });
    expect(await gone(s.id, 15_000)).toBe(true);
  });

  it("removes orphaned executors past their reap-after", async () => {
    const name = `code-exec-${randomUUID()}`;
    track(name);
    const c = await docker.createContainer({
      name,
      Image: IMAGE,
      Cmd: ["sleep", "600"],
      Labels: { app: "code-interpreter", component: "executor", [LABEL_REAP_AFTER]: "1" },
      HostConfig: { NetworkMode: "none" },
    });
    await c.start();
    const report = await backend.reap();
    expect(report.reaped).toContainEqual({ id: name, reason: "orphaned-executor" });
    expect(await gone(name)).toBe(true);
  });

  it("is safe when several reapers run at once", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 2 }));
    track(s.id);
    const others = [makeBackend(), makeBackend()];
    const reports = await Promise.all([backend, ...others].map((b) => b.reap(s.expiresAt + 500)));
    expect(
      reports.flatMap((r) => r.failed).filter((f) => f.id === s.id),
      JSON.stringify(reports),
    ).toEqual([]);
    expect(await gone(s.id)).toBe(true);
    await Promise.all(others.map((b) => b.close()));
  });
});

describe("many sessions", () => {
  it("20 sessions created and deleted concurrently leave nothing behind", async () => {
    const sessions = await Promise.all(Array.from({ length: 20 }, () => backend.createSession(sessionReq())));
    sessions.forEach((s) => track(s.id));
    const listed = new Set((await backend.listSessions()).map((s) => s.id));
    for (const s of sessions) expect(listed.has(s.id)).toBe(true);
    await Promise.all(sessions.map((s) => backend.deleteSession(s.id)));
    for (const s of sessions) expect(await gone(s.id)).toBe(true);
  });
});

describe("session state file", () => {
  it("is written by the backend as root", async () => {
    const s = await backend.createSession(sessionReq());
    track(s.id);
    await backend.keepalive(s.id, 60);
    const ls = await plainExec(s.id, ["stat", "-c", "%u %a", "/run/code-interpreter/state.json"]);
    expect(ls.stdout.toString().trim()).toBe("0 644");
    await backend.deleteSession(s.id);
  });
});
