/**
 * A hung apiserver (issue 13.2) at the HTTP level, with EXECUTOR_BACKEND=kubernetes built the
 * way the binary builds it (`createBackendFromConfig`, KUBECONFIG): every call to the cluster
 * has the KUBERNETES_REQUEST_TIMEOUT_MS deadline, so `/health` and the session routes answer
 * 503 with `{detail}` soon after it instead of hanging with the apiserver.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalFileStore } from "@code-interpreter/files-client";
import { loadConfig } from "../../src/config.js";
import { createBackendFromConfig } from "../../src/index.js";
import { FakeApiServer, kubeconfigFor, uniqueNamespace } from "./k8s-platform.js";
import { E2E_ENV, listenApp, requireDockerEngine, type RunningHttp } from "./support.js";

const DEADLINE_MS = 1500;

describe("kubernetes: a hung apiserver answers 503 within KUBERNETES_REQUEST_TIMEOUT_MS", () => {
  let fake: FakeApiServer;
  let server: RunningHttp;
  let dir: string;

  beforeAll(async () => {
    await requireDockerEngine();
    const namespace = uniqueNamespace();
    const config = loadConfig({
      ...E2E_ENV,
      EXECUTOR_BACKEND: "kubernetes",
      KUBERNETES_EXECUTOR_NAMESPACE: namespace,
      KUBERNETES_POD_READY_TIMEOUT_SEC: "30",
      KUBERNETES_REQUEST_TIMEOUT_MS: String(DEADLINE_MS),
    });
    dir = await mkdtemp(join(tmpdir(), "ci-api-k8s-deadline-"));
    fake = await new FakeApiServer().start();
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, kubeconfigFor(fake, namespace));
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kubeconfig;
    try {
      const backend = await createBackendFromConfig(config, pino({ level: "silent" }));
      const files = new LocalFileStore({
        dir,
        maxFileBytes: config.maxFileSizeBytes,
        ttlSeconds: config.fileTtlSec,
      });
      server = await listenApp({ backend, files, config });
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  afterAll(async () => {
    fake?.resume();
    await server?.close();
    await fake?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function timed(path: string, init: RequestInit = {}) {
    const started = Date.now();
    const res = await fetch(`${server.baseUrl}${path}`, {
      ...init,
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, body, ms: Date.now() - started };
  }

  it("/health, a session read, a create and a one-shot answer 503 soon after the deadline", async () => {
    const healthy = await timed("/health");
    expect(healthy.status).toBe(200);
    const created = await timed("/v1/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ttl_seconds: 120 }),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = String(created.body.session_id ?? created.body.id);

    fake.hang();
    try {
      const calls: Array<[string, RequestInit]> = [
        ["/health", {}],
        [`/v1/sessions/${id}`, {}],
        [`/v1/sessions/code-session-${randomUUID()}`, {}],
        ["/v1/sessions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }],
        [
          "/v1/execute",
          {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ code: "print(1)" }),
          },
        ],
      ];
      for (const [path, init] of calls) {
        const r = await timed(path, init);
        expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(503);
        if (path !== "/health") expect(typeof r.body.detail, path).toBe("string");
        // The deadline plus scheduling slack on a loaded machine; far below a hang.
        expect(r.ms, path).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
        expect(r.ms, path).toBeLessThan(DEADLINE_MS + 4000);
      }
    } finally {
      fake.resume();
    }
    expect((await timed("/health")).status).toBe(200);
  }, 120_000);
});
