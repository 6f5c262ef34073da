/**
 * Helpers for the session-lifetime tests (issue 4) on the real Docker engine: an API server
 * (in-process or as a child process), a small HTTP client, engine access for seeding and
 * checking containers, log capture, and cleanup of everything a test created.
 *
 * Sessions are isolated per test by a random API key: everything a test creates carries the
 * key's owner label, so cleanup and "nothing left behind" checks never look at other people's
 * containers (colleagues run Docker tests on the same engine at the same time).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Dockerode from "dockerode";
import { pino, type Logger } from "pino";
import { ownerTag } from "@code-interpreter/core";
import { LABEL_OWNER, newLifetime, sessionTags } from "@code-interpreter/core/backend-kit";
import { executorLimits, type Config } from "../../src/config.js";
import {
  createDockerBackend,
  type DockerBackend,
  type DockerBackendOptions,
} from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { startServer, type RunningServer } from "../../src/index.js";
import { testConfig } from "../helpers.js";

export const IMAGE = process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest";
export const docker = new Dockerode();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Env for a lifecycle test: small executors, the given overrides. */
export function lifecycleEnv(env: Record<string, string> = {}): Record<string, string> {
  return {
    EXECUTOR_IMAGE: IMAGE,
    MAX_FILE_SIZE_MB: "10",
    MEMORY_LIMIT_MB: "128",
    CPU_TIME_LIMIT_SEC: "10",
    MAX_EXEC_TIMEOUT_MS: "30000",
    DEFAULT_EXEC_TIMEOUT_MS: "10000",
    SHUTDOWN_TIMEOUT_SECONDS: "5",
    // These tests count containers: no warm pool (its own tests: e2e/warm-pool.e2e.test.ts).
    WARM_POOL_SIZE: "0",
    ...env,
  };
}

export function dockerBackend(config: Config, extra: Partial<DockerBackendOptions> = {}): DockerBackend {
  return createDockerBackend({
    docker,
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
    ...extra,
  });
}

/** Log lines captured from a pino logger (parsed JSON). */
export interface LogCapture {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
}

export function captureLogs(level: pino.Level = "info"): LogCapture {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n"))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** A JSON client for one API key. */
export class Client {
  constructor(
    readonly url: string,
    readonly key: string,
  ) {}

  get owner(): string {
    return ownerTag(this.key);
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> & { detail?: string } }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    if (text) {
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { raw: text };
      }
    }
    return { status: res.status, body: parsed };
  }

  async raw(path: string): Promise<{ status: number; bytes: Buffer }> {
    const res = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.key}` } });
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
  }

  async upload(name: string, bytes: Buffer): Promise<string> {
    const form = new FormData();
    form.append("file", new Blob([bytes]), name);
    const res = await fetch(`${this.url}/v1/files`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.key}` },
      body: form,
    });
    if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { file_id: string }).file_id;
  }

  /** POST /v1/sessions; throws unless 201. */
  async createSession(body: Record<string, unknown> = {}): Promise<SessionJson> {
    const r = await this.call("POST", "/v1/sessions", body);
    if (r.status !== 201) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as unknown as SessionJson;
  }

  bash(id: string, cmd: string, timeoutMs = 10_000) {
    return this.call("POST", `/v1/sessions/${id}/bash`, { cmd, timeout_ms: timeoutMs });
  }
}

export interface SessionJson {
  session_id: string;
  status: string;
  created_at: number;
  expires_at: number;
  last_active_at: number;
  max_expires_at: number;
  idle_timeout_seconds: number | null;
  metadata: Record<string, string>;
}

/** A session time (unix seconds, possibly fractional) as integer milliseconds. */
export const ms = (seconds: number): number => Math.round(seconds * 1000);

/** An in-process API server on 127.0.0.1:<free port> with a Docker backend and a local file store. */
export interface TestServer {
  running: RunningServer;
  backend: DockerBackend;
  client: Client;
  config: Config;
  logs: LogCapture;
  close(): Promise<void>;
}

export async function startTestServer(opts: {
  env?: Record<string, string>;
  key?: string;
  reaper?: boolean;
  filesDir?: string;
  backend?: Partial<DockerBackendOptions>;
}): Promise<TestServer> {
  const key = opts.key ?? `lc-${randomUUID()}`;
  const config = testConfig(lifecycleEnv({ API_KEYS: key, ...opts.env }));
  const ownDir = opts.filesDir ? null : await mkdtemp(join(tmpdir(), "ci-lifecycle-"));
  const dir = opts.filesDir ?? (ownDir as string);
  const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 3600 });
  const backend = dockerBackend(config, opts.backend);
  const logs = captureLogs();
  const running = await startServer({
    backend,
    files,
    config,
    logger: logs.logger,
    host: "127.0.0.1",
    port: 0,
    reaper: opts.reaper ?? true,
    abortGraceMs: 2_000,
  });
  return {
    running,
    backend,
    client: new Client(running.url, key),
    config,
    logs,
    async close() {
      await running.close();
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
    },
  };
}

export async function exists(nameOrId: string): Promise<boolean> {
  try {
    await docker.getContainer(nameOrId).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

export async function isRunning(nameOrId: string): Promise<boolean> {
  try {
    return (await docker.getContainer(nameOrId).inspect()).State.Running;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Polls until `check` is true; returns the elapsed ms, or null on timeout. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  stepMs = 100,
): Promise<number | null> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) return null;
    await sleep(stepMs);
  }
}

/** Waits until the container no longer exists; the moment it was first seen gone (unix ms), or null. */
export async function goneBy(nameOrId: string, deadline: number): Promise<number | null> {
  for (;;) {
    if (!(await exists(nameOrId))) return Date.now();
    if (Date.now() > deadline) return null;
    await sleep(100);
  }
}

/** Names of session containers (any state) labelled with this owner. */
export async function ownedSessionContainers(owner: string): Promise<string[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: ["app=code-interpreter", "component=session", `${LABEL_OWNER}=${owner}`] },
  });
  return list.map((c) => (c.Names[0] ?? "").replace(/^\//, ""));
}

/** Containers this test process created outside the API (seeds); removed by removeTracked(). */
const tracked = new Set<string>();
export const track = (name: string): string => {
  tracked.add(name);
  return name;
};

/** Force-removes tracked containers and every session container of the given owners. */
export async function removeTracked(owners: string[] = []): Promise<void> {
  const names = new Set(tracked);
  for (const o of owners) for (const n of await ownedSessionContainers(o)) names.add(n);
  await Promise.all(
    [...names].map(async (n) => {
      try {
        await docker.getContainer(n).remove({ force: true });
      } catch {
        // already gone
      }
      tracked.delete(n);
    }),
  );
}

/** Starts a plain `sleep` container from the executor image with the given name and labels. */
export async function seedContainer(name: string, labels: Record<string, string>): Promise<string> {
  track(name);
  const c = await docker.createContainer({
    name,
    Image: IMAGE,
    Cmd: ["sleep", "600"],
    Labels: labels,
    HostConfig: { NetworkMode: "none", AutoRemove: false },
  });
  await c.start();
  return c.id;
}

/**
 * A container that looks exactly like a session (name, identity labels, lifetime labels,
 * owner) but whose PID 1 is `sleep`, not the keeper: a session whose keeper failed. Only the
 * API (its expiry check, its reaper) can end it.
 */
export async function seedKeeperlessSession(opts: {
  owner: string;
  createdAt?: number;
  ttlSeconds: number;
  maxLifetimeSeconds?: number;
}): Promise<{ id: string; expiresAt: number }> {
  const id = `code-session-${randomUUID()}`;
  const lifetime = newLifetime(
    opts.createdAt ?? Date.now(),
    opts.ttlSeconds,
    opts.maxLifetimeSeconds ?? 3600,
    null,
  );
  const tags = sessionTags(lifetime, { owner: opts.owner, metadata: { seeded: "keeperless" } });
  await seedContainer(id, { ...tags.labels, ...tags.annotations });
  return { id, expiresAt: lifetime.expiresAt };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}
