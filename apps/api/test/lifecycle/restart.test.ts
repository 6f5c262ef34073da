/**
 * Issue 4: the API as a real child process (`node apps/api/dist/main.js`) on the real engine.
 * SIGKILL loses nothing: a new process on the same config lists and uses every live session
 * (staged files intact, Python variables still set) and reaps what expired while no API ran. SIGTERM drains in-flight
 * requests, refuses new connections, exits 0 within the shutdown timeout (cutting what runs
 * longer) and keeps sessions. Everything left is removed by owner label afterwards.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { statSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Client,
  goneBy,
  isRunning,
  lifecycleEnv,
  ms,
  removeTracked,
  seedKeeperlessSession,
  sleep,
  waitFor,
  type SessionJson,
} from "./helpers.js";

const API_DIR = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = join(API_DIR, "dist", "main.js");
const INTERVAL_S = 1;
const SHUTDOWN_TIMEOUT_S = 5;
const SLACK_MS = 3_000;

/** The child runs dist/: rebuild apps/api when it is missing or older than src/. */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  let built = 0;
  try {
    built = statSync(MAIN).mtimeMs;
  } catch {
    built = 0;
  }
  if (built >= newest(join(API_DIR, "src"))) return;
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: API_DIR, stdio: "inherit" });
}

interface ChildApi {
  child: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts main.js with exactly `env` (plus PATH/HOME); resolves with the URL it logs. */
async function startApi(env: Record<string, string>): Promise<ChildApi> {
  const base: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DOCKER_HOST"]) if (process.env[k]) base[k] = process.env[k] as string;
  const child = spawn(process.execPath, [MAIN], {
    env: { ...base, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let buf = "";
  let onUrl: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => (onUrl = resolve));
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (typeof rec.url === "string" && String(rec.msg).includes("listening on")) onUrl(rec.url);
      } catch {
        stderr.push(line);
      }
    }
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
  const first = await Promise.race([
    url,
    exited.then((e) => new Error(`the API exited early (${JSON.stringify(e)}): ${stderr.join("")}`)),
    sleep(30_000).then(() => new Error(`the API did not log its URL within 30 s: ${stderr.join("")}`)),
  ]);
  if (first instanceof Error) {
    child.kill("SIGKILL");
    throw first;
  }
  return { child, url: first, logs, stderr, exited };
}

/** A fresh TCP connection (no keep-alive pool): resolves with the status or the error code. */
function freshGet(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.setTimeout(5_000, () => req.destroy(new Error("timeout")));
  });
}

describe("API restarts (child processes)", { timeout: 180_000 }, () => {
  const key = `lc-restart-${randomUUID()}`;
  let dir: string;
  let env: Record<string, string>;
  let api: Client;
  const children: ChildApi[] = [];
  const live: Array<{ session: SessionJson; path: string; bytes: Buffer }> = [];
  const short: SessionJson[] = [];
  let keeperless: { id: string; expiresAt: number };

  beforeAll(async () => {
    ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), "ci-lifecycle-restart-"));
    env = lifecycleEnv({
      HOST: "127.0.0.1",
      PORT: "0",
      API_KEYS: key,
      FILE_STORAGE_DIR: dir,
      SESSION_REAPER_INTERVAL_SECONDS: String(INTERVAL_S),
      SESSION_MAX_LIFETIME_SECONDS: "600",
      SHUTDOWN_TIMEOUT_SECONDS: String(SHUTDOWN_TIMEOUT_S),
      MAX_SESSIONS: "50",
      LOG_LEVEL: "info",
    });
  });

  afterAll(async () => {
    for (const c of children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    await removeTracked(api ? [api.owner] : []);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("first process: 5 sessions with staged files, 2 short-lived ones, then SIGKILL", async () => {
    const a = await startApi(env);
    children.push(a);
    api = new Client(a.url, key);
    for (let i = 0; i < 5; i++) {
      const bytes = Buffer.concat([Buffer.from(`session ${i}\n`), randomBytes(2048)]);
      const fileId = await api.upload(`in-${i}.bin`, bytes);
      const path = `data/in-${i}.bin`;
      const session = await api.createSession({
        files: [{ path, file_id: fileId }],
        ttl_seconds: 600,
        metadata: { n: String(i) },
      });
      live.push({ session, path, bytes });
    }
    for (let i = 0; i < 2; i++) {
      const fileId = await api.upload(`short-${i}.txt`, Buffer.from(`short ${i}`));
      short.push(await api.createSession({ files: [{ path: "s.txt", file_id: fileId }], ttl_seconds: 3 }));
    }
    // Expires while no API runs, and has no keeper to end it: only the next process can.
    keeperless = await seedKeeperlessSession({ owner: api.owner, ttlSeconds: 4 });
    expect((await api.bash(live[0]!.session.session_id, "echo up")).body).toMatchObject({ stdout: "up\n" });
    // Python state lives in each session's resident agent, not in the API process (issue 9).
    for (const [i, l] of live.entries()) {
      const set = await api.call("POST", `/v1/sessions/${l.session.session_id}/execute`, {
        code: `import hashlib\nsecret = ${i} * 7\ndef shout(s):\n    return s.upper()`,
      });
      expect(set.body).toMatchObject({ exit_code: 0, state_reset: null });
    }

    a.child.kill("SIGKILL");
    expect(await a.exited).toEqual({ code: null, signal: "SIGKILL" });
    for (const l of live) expect(await isRunning(l.session.session_id)).toBe(true);
  });

  it("second process on the same config: all 5 listed and usable, files intact; what expired meanwhile is reaped", async () => {
    // Down until everything short-lived has expired.
    const expiredBy = Math.max(keeperless.expiresAt, ...short.map((s) => ms(s.expires_at))) + 1_000;
    await sleep(Math.max(0, expiredBy - Date.now()));
    expect(await isRunning(keeperless.id), "the keeper-less session needs an API to end it").toBe(true);

    const b = await startApi(env);
    children.push(b);
    const started = Date.now();
    api = new Client(b.url, key);

    const list = await api.call("GET", "/v1/sessions");
    expect(list.status).toBe(200);
    const ids = (list.body.sessions as SessionJson[]).map((s) => s.session_id);
    expect(ids.sort()).toEqual(live.map((l) => l.session.session_id).sort());

    for (const [i, l] of live.entries()) {
      const id = l.session.session_id;
      const got = await api.call("GET", `/v1/sessions/${id}`);
      expect(got.body).toMatchObject({
        session_id: id,
        metadata: { n: String(i) },
        expires_at: l.session.expires_at,
      });
      const r = await api.bash(id, `head -n 1 ${l.path} && wc -c < ${l.path}`);
      expect(r.body).toMatchObject({ exit_code: 0, stdout: `session ${i}\n${l.bytes.length}\n` });
      const file = await api.raw(`/v1/sessions/${id}/files/${l.path}`);
      expect(file.status).toBe(200);
      expect(file.bytes.equals(l.bytes)).toBe(true);
      // The new process opens its own channel to the same agent: the variables are still there.
      const state = await api.call("POST", `/v1/sessions/${id}/execute`, {
        code: "print(secret, shout('ok'), hashlib.sha1(b'').hexdigest()[:4])",
      });
      expect(state.body).toMatchObject({ exit_code: 0, stdout: `${i * 7} OK da39\n`, state_reset: null });
    }

    // Reaped by this process (its first passes), or already ended by their keepers.
    const deadline = started + 2 * INTERVAL_S * 1000 + SLACK_MS;
    expect(
      await goneBy(keeperless.id, deadline),
      "keeper-less session not reaped after restart",
    ).not.toBeNull();
    for (const s of short) {
      expect(await goneBy(s.session_id, deadline)).not.toBeNull();
      expect((await api.call("GET", `/v1/sessions/${s.session_id}`)).status).toBe(404);
    }
    // The log line may trail the removal by a moment.
    const logged = () =>
      Promise.resolve(
        b.logs.some((l) => l.msg === "reaped" && l.session === keeperless.id && l.reason === "expired"),
      );
    expect(
      await waitFor(logged, 5_000, 50),
      "no 'reaped' log line for the keeper-less session",
    ).not.toBeNull();
  });

  it("SIGTERM: the in-flight call finishes, new connections are refused, exit 0 in time, sessions kept", async () => {
    const b = children[1]!;
    const id = live[0]!.session.session_id;
    const inFlight = api.bash(id, "sleep 2; echo done", 10_000).catch((err: unknown) => ({
      status: -1,
      body: { error: String(err) },
    }));
    await sleep(500);
    const t0 = Date.now();
    b.child.kill("SIGTERM");
    await waitFor(async () => b.logs.some((l) => String(l.msg).startsWith("shutting down")), 5_000, 20);
    expect(await freshGet(`${b.url}/health`)).toBe("ECONNREFUSED");

    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ stdout: "done\n", exit_code: 0 });

    const exit = await b.exited;
    const took = Date.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    // Within the shutdown timeout (plus process exit).
    const shutdownLog = b.logs
      .filter((l) => (l.time as number) >= t0)
      .map((l) => `${l.time as number} ${String(l.msg)}`);
    expect(took, shutdownLog.join("\n")).toBeLessThan(SHUTDOWN_TIMEOUT_S * 1000 + 1_000);
    expect(b.logs).toContainEqual(expect.objectContaining({ msg: "shut down" }));

    // Nothing was deleted: every live session is still there, and a new process serves them.
    for (const l of live) expect(await isRunning(l.session.session_id)).toBe(true);
    const c = await startApi(env);
    children.push(c);
    api = new Client(c.url, key);
    const ids = ((await api.call("GET", "/v1/sessions")).body.sessions as SessionJson[]).map(
      (s) => s.session_id,
    );
    expect(ids.sort()).toEqual(live.map((l) => l.session.session_id).sort());
  });

  it("SIGTERM with a call running past the shutdown timeout: cut at the timeout, exit 0, session kept", async () => {
    const c = children[2]!;
    const id = live[1]!.session.session_id;
    const inFlight = api.bash(id, "sleep 25; echo never", 28_000).then(
      (r) => r.status,
      (err: unknown) => String(err),
    );
    await sleep(500);
    const t0 = Date.now();
    c.child.kill("SIGTERM");
    const exit = await c.exited;
    const took = Date.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT_S * 1000 - 100);
    expect(took).toBeLessThan(SHUTDOWN_TIMEOUT_S * 1000 + SLACK_MS);
    expect(await inFlight).not.toBe(200);
    expect(c.logs).toContainEqual(
      expect.objectContaining({ msg: "shutdown timeout: closing remaining connections" }),
    );
    // The cut call killed its program, not the session.
    for (const l of live) expect(await isRunning(l.session.session_id)).toBe(true);
  });
});
