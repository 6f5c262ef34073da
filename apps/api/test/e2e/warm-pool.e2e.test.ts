/**
 * The warm pool end to end over HTTP on the real engine (issue 10): two API instances
 * (createApp + the backend made from the server's own config, WARM_POOL_SIZE=3) on one engine.
 * The claim path is proven by the pool's metrics, not by timing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Dockerode from "dockerode";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "@code-interpreter/core";
import { LocalFileStore } from "@code-interpreter/files-client";
import { createBackendFromConfig } from "../../src/cli.js";
import { loadConfig } from "../../src/config.js";
import {
  E2E_ENV,
  apiClient,
  listenApp,
  metricValue,
  requireDockerEngine,
  waitForPoolSize,
  type RunningHttp,
} from "./support.js";

const SIZE = 3;
const config = loadConfig({ ...E2E_ENV, WARM_POOL_SIZE: String(SIZE), WARM_POOL_MAX_AGE_SECONDS: "300" });
const docker = new Dockerode();

interface Api {
  http: RunningHttp;
  backend: Backend;
}
const apis: Api[] = [];
const created = new Set<string>();
let dir = "";

async function startApi(): Promise<Api> {
  const backend = await createBackendFromConfig(config, pino({ level: "silent" }));
  const files = new LocalFileStore({
    dir,
    maxFileBytes: config.maxFileSizeBytes,
    ttlSeconds: config.fileTtlSec,
  });
  const api = { http: await listenApp({ backend, files, config }), backend };
  apis.push(api);
  return api;
}

const call = (api: Api, method: string, path: string, body?: unknown) =>
  apiClient(api.http.baseUrl)(path, body === undefined ? { method } : { method, json: body });

const metric = (api: Api, series: string) => metricValue(api.http.baseUrl, series);
const poolSize = (api: Api, n: number) => waitForPoolSize(api.http.baseUrl, n);

async function containers(filter: (name: string) => boolean): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ["app=code-interpreter"] } });
  return list.map((c) => (c.Names[0] ?? "").replace(/^\//, "")).filter(filter);
}

async function createSession(api: Api): Promise<string> {
  const r = await call(api, "POST", "/v1/sessions", { ttl_seconds: 300 });
  expect(r.status).toBe(201);
  const id = r.body.session_id as string;
  created.add(id);
  return id;
}

beforeAll(async () => {
  await requireDockerEngine();
  dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-pool-"));
});

afterAll(async () => {
  await Promise.all(
    [...created].map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  await apis[0]?.backend.warmPool?.drain();
  await Promise.all(apis.map((a) => a.http.close()));
  await rm(dir, { recursive: true, force: true });
  // Nothing of the pool is left behind: no member, no claimed one-shot container.
  expect(await containers((n) => n.startsWith("code-pool-"))).toEqual([]);
}, 120_000);

describe("warm pool over HTTP", () => {
  it("fills to WARM_POOL_SIZE; POST /v1/sessions claims a member; the pool refills", async () => {
    const api = await startApi();
    await poolSize(api, SIZE);
    expect(await containers((n) => n.startsWith("code-pool-"))).toHaveLength(SIZE);
    const hits = await metric(api, 'code_interpreter_warm_pool_hits_total{kind="session"}');
    const id = await createSession(api);
    expect(await metric(api, 'code_interpreter_warm_pool_hits_total{kind="session"}')).toBe(hits + 1);
    expect(
      await metric(
        api,
        'code_interpreter_warm_pool_claim_duration_seconds_count{kind="session",outcome="hit"}',
      ),
    ).toBeGreaterThan(0);
    // The claimed session works like any other.
    const run = await call(api, "POST", `/v1/sessions/${id}/execute`, { code: "x = 6\nx * 7" });
    expect(run.body).toMatchObject({ stdout: "42\n", exit_code: 0 });
    await poolSize(api, SIZE);
    expect(await containers((n) => n.startsWith("code-pool-"))).toHaveLength(SIZE);
  });

  it("GET /v1/sessions never shows pool members", async () => {
    const api = apis[0]!;
    const listed = (
      (await call(api, "GET", "/v1/sessions?limit=1000")).body.sessions as Array<{ session_id: string }>
    ).map((s) => s.session_id);
    const members = await containers((n) => n.startsWith("code-pool-"));
    expect(members.length).toBeGreaterThan(0);
    for (const m of members) {
      expect(listed).not.toContain(m);
      expect(listed).not.toContain(m.replace("code-pool-", "code-session-"));
    }
    for (const id of listed) expect(id).toMatch(/^code-session-/);
    // And a member is no session to reach by name either.
    expect((await call(api, "GET", `/v1/sessions/${members[0]!}`)).status).toBe(404);
  });

  it("two API processes doing 20 concurrent creates never hand out the same session or container", async () => {
    const a = apis[0]!;
    const b = await startApi();
    await poolSize(b, SIZE);
    const hitsBefore =
      (await metric(a, 'code_interpreter_warm_pool_hits_total{kind="session"}')) +
      (await metric(b, 'code_interpreter_warm_pool_hits_total{kind="session"}'));
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => createSession(i % 2 ? a : b)));
    expect(new Set(ids).size).toBe(20);
    const containerIds = await Promise.all(
      ids.map(async (id) => (await docker.getContainer(id).inspect()).Id),
    );
    expect(new Set(containerIds).size).toBe(20);
    const hitsAfter =
      (await metric(a, 'code_interpreter_warm_pool_hits_total{kind="session"}')) +
      (await metric(b, 'code_interpreter_warm_pool_hits_total{kind="session"}'));
    expect(hitsAfter).toBeGreaterThan(hitsBefore);
    // Each one answers as itself, through either process.
    const hosts = await Promise.all(
      ids.map(
        async (id, i) =>
          (await call(i % 2 ? b : a, "POST", `/v1/sessions/${id}/bash`, { cmd: "hostname" })).body.stdout,
      ),
    );
    expect(new Set(hosts).size).toBe(20);
    for (const id of ids) {
      expect((await call(a, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
      created.delete(id);
    }
  }, 180_000);

  it("one-shots from the pool: 10 runs never see each other's marker, and leave no container behind", async () => {
    const api = apis[0]!;
    await poolSize(api, SIZE);
    const sessionsBefore = new Set(await containers((n) => n.startsWith("code-session-")));
    const hits = await metric(api, 'code_interpreter_warm_pool_hits_total{kind="executor"}');
    for (let i = 0; i < 10; i++) {
      const code =
        "import os\n" +
        `print(sorted(os.listdir('/workspace')), sorted(os.listdir('/tmp')))\n` +
        `open('/workspace/marker-${i}', 'w').write('x')\nopen('/tmp/marker-${i}', 'w').write('x')`;
      const r = await call(api, "POST", "/v1/execute", { code });
      expect(r.status).toBe(200);
      expect(r.body.exit_code).toBe(0);
      expect(r.body.stdout).not.toMatch(/marker-/);
    }
    expect(await metric(api, 'code_interpreter_warm_pool_hits_total{kind="executor"}')).toBeGreaterThan(hits);
    // Removed off the response's path, but removed: no new session-named or executor container stays.
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = await containers(
        (n) => (n.startsWith("code-session-") && !sessionsBefore.has(n)) || n.startsWith("code-exec-"),
      );
      if (left.length === 0) break;
      await sleep(100);
    }
    expect(left).toEqual([]);
  }, 180_000);
});
