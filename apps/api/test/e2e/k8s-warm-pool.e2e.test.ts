/**
 * The warm pool end to end over HTTP with EXECUTOR_BACKEND=kubernetes (issue 10): two API
 * instances, each with the backend the binary builds from its config (WARM_POOL_SIZE=3), on
 * backend-k8s's fake apiserver (pods backed by real Docker containers). The claim path is
 * proven by the pool's metrics, not by timing; pods are inspected in the fake's store.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "@code-interpreter/core";
import { LocalFileStore } from "@code-interpreter/files-client";
import { createBackendFromConfig } from "../../src/cli.js";
import { loadConfig } from "../../src/config.js";
import { FakeApiServer, kubeconfigFor, uniqueNamespace } from "./k8s-platform.js";
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
const POOL_LABEL = "code-interpreter.dev/pool";
const namespace = uniqueNamespace();
const config = loadConfig({
  ...E2E_ENV,
  EXECUTOR_BACKEND: "kubernetes",
  KUBERNETES_EXECUTOR_NAMESPACE: namespace,
  KUBERNETES_IMAGE_PULL_POLICY: "IfNotPresent",
  KUBERNETES_POD_READY_TIMEOUT_SEC: "30",
  WARM_POOL_SIZE: String(SIZE),
  WARM_POOL_MAX_AGE_SECONDS: "300",
});

interface Api {
  http: RunningHttp;
  backend: Backend;
}
interface PodView {
  metadata?: { uid?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string };
}
const apis: Api[] = [];
let fake: FakeApiServer;
let dir = "";
let kubeconfig = "";

/** Builds the backend exactly as the binary does, with KUBECONFIG set only for the call. */
async function startApi(): Promise<Api> {
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = kubeconfig;
  let backend: Backend;
  try {
    backend = await createBackendFromConfig(config, pino({ level: "silent" }));
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
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

const pod = (name: string) => fake.getPod(namespace, name) as PodView | undefined;
/** Live pods (not terminating) whose labels pass `filter`. */
const pods = (filter: (labels: Record<string, string>) => boolean) =>
  fake.podNames(namespace).filter((n) => {
    const p = pod(n);
    return p && !p.metadata?.deletionTimestamp && filter(p.metadata?.labels ?? {});
  });
const members = () => pods((l) => l[POOL_LABEL] !== undefined);
const hits = async (kind: "session" | "executor") =>
  (
    await Promise.all(apis.map((a) => metric(a, `code_interpreter_warm_pool_hits_total{kind="${kind}"}`)))
  ).reduce((x, y) => x + y, 0);

async function createSession(api: Api): Promise<string> {
  const r = await call(api, "POST", "/v1/sessions", { ttl_seconds: 300 });
  expect(r.status).toBe(201);
  return r.body.session_id as string;
}

beforeAll(async () => {
  await requireDockerEngine();
  dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-k8s-pool-"));
  fake = await new FakeApiServer().start();
  kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, kubeconfigFor(fake, namespace));
});

afterAll(async () => {
  await apis[0]?.backend.warmPool?.drain();
  await Promise.all(apis.map((a) => a.http.close()));
  // Nothing of the pool is left behind: no member.
  expect(members()).toEqual([]);
  await fake?.stop();
  await rm(dir, { recursive: true, force: true });
}, 120_000);

describe("warm pool over HTTP on Kubernetes (fake apiserver)", () => {
  it("fills to WARM_POOL_SIZE; POST /v1/sessions claims a member pod; the pool refills", async () => {
    const api = await startApi();
    await poolSize(api, SIZE);
    const before = new Map(members().map((n) => [n, pod(n)!.metadata!.uid]));
    expect(before.size).toBe(SIZE);
    const h = await hits("session");
    const id = await createSession(api);
    expect(await hits("session")).toBe(h + 1);
    // The session is a member pod that was already running: same name, same uid.
    expect(before.get(id)).toBe(pod(id)!.metadata!.uid);
    const run = await call(api, "POST", `/v1/sessions/${id}/execute`, { code: "x = 6\nx * 7" });
    expect(run.body).toMatchObject({ stdout: "42\n", exit_code: 0 });
    await poolSize(api, SIZE);
    expect(members()).toHaveLength(SIZE);
    expect((await call(api, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
  });

  it("GET /v1/sessions never shows pool members, and a member is no session to reach by name", async () => {
    const api = apis[0]!;
    const listed = (
      (await call(api, "GET", "/v1/sessions?limit=1000")).body.sessions as Array<{ session_id: string }>
    ).map((s) => s.session_id);
    const m = members();
    expect(m.length).toBeGreaterThan(0);
    for (const name of m) expect(listed).not.toContain(name);
    expect((await call(api, "GET", `/v1/sessions/${m[0]!}`)).status).toBe(404);
    expect((await call(api, "DELETE", `/v1/sessions/${m[0]!}`)).status).toBe(404);
    expect(pod(m[0]!)?.status?.phase).toBe("Running");
  });

  it("two API processes doing 20 concurrent creates never hand out the same session or pod", async () => {
    const [a, b] = [apis[0]!, await startApi()];
    await poolSize(b, SIZE);
    const h = await hits("session");
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => createSession(i % 2 ? a : b)));
    expect(new Set(ids).size).toBe(20);
    expect(new Set(ids.map((id) => pod(id)!.metadata!.uid)).size).toBe(20);
    expect(await hits("session")).toBeGreaterThan(h);
    const hosts = await Promise.all(
      ids.map(
        async (id, i) =>
          (await call(i % 2 ? b : a, "POST", `/v1/sessions/${id}/bash`, { cmd: "hostname" })).body.stdout,
      ),
    );
    expect(new Set(hosts).size).toBe(20);
    for (const id of ids) expect((await call(a, "DELETE", `/v1/sessions/${id}`)).status).toBe(204);
  }, 180_000);

  it("one-shots from the pool: 10 runs never see each other's marker, and leave no pod behind", async () => {
    const api = apis[0]!;
    await poolSize(api, SIZE);
    const h = await hits("executor");
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
    expect(await hits("executor")).toBeGreaterThan(h);
    // Removed off the response's path, but removed: only unclaimed members stay.
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      left = pods((l) => l[POOL_LABEL] === undefined);
      if (left.length === 0) break;
      await sleep(100);
    }
    expect(left).toEqual([]);
  }, 180_000);
});
