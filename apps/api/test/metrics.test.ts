/** /metrics: the HTTP, session, execution and admission series, by name and by value. */
import { pino } from "pino";
import request from "supertest";
import { describe, expect, it } from "vitest";
import type { WarmPoolEvents, WarmPoolMonitor } from "@code-interpreter/core";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createApp } from "../src/index.js";
import { MemoryFileStore, testConfig } from "./helpers.js";

/** The value of one series in Prometheus text format (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

function setup(env: Record<string, string> = {}, run?: ConstructorParameters<typeof InMemoryBackend>[0]) {
  const backend = new InMemoryBackend({ kind: "docker", ...run });
  const app = createApp({
    backend,
    files: new MemoryFileStore(),
    config: testConfig(env),
    logger: pino({ level: "silent" }),
  });
  const scrape = async () => (await request(app).get("/metrics").expect(200)).text;
  return { app, backend, scrape };
}

describe("/metrics", () => {
  it("counts requests by route template (never by id) and status, with durations", async () => {
    const { app, scrape } = setup();
    const before = await scrape();
    expect(before).toContain("# TYPE code_interpreter_http_requests_total counter");
    expect(before).toContain("# TYPE code_interpreter_http_request_duration_seconds histogram");

    const sid = (await request(app).post("/v1/sessions").send({}).expect(201)).body.session_id as string;
    await request(app).post(`/v1/sessions/${sid}/bash`).send({ cmd: "true" }).expect(200);
    await request(app).post(`/v1/sessions/${sid}/bash`).send({ cmd: "true" }).expect(200);
    await request(app).get("/v1/nowhere").expect(404);

    const text = await scrape();
    expect(text).not.toContain(sid);
    const bash = { method: "POST", route: "/v1/sessions/:id/bash", status: "200" };
    expect(sample(text, "code_interpreter_http_requests_total", bash)).toBe(2);
    expect(sample(text, "code_interpreter_http_request_duration_seconds_count", bash)).toBe(2);
    expect(
      sample(text, "code_interpreter_http_requests_total", {
        method: "POST",
        route: "/v1/sessions",
        status: "201",
      }),
    ).toBe(1);
    expect(
      sample(text, "code_interpreter_http_requests_total", {
        method: "GET",
        route: "unmatched",
        status: "404",
      }),
    ).toBe(1);
    // The scrape before counts too: /metrics is a route like the others.
    expect(sample(text, "code_interpreter_http_requests_total", { route: "/metrics", status: "200" })).toBe(
      1,
    );
  });

  it("labels errors raised inside a router with the template as well", async () => {
    const { app, scrape } = setup();
    await request(app)
      .get("/v1/sessions/not-a-session-id")
      .expect((r) => expect(r.status).toBeGreaterThanOrEqual(400));
    const text = await scrape();
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("code_interpreter_http_requests_total{") &&
          l.includes('method="GET"') &&
          !l.includes("/metrics"),
      );
    expect(line).toContain('route="/v1/sessions/:id"');
  });

  it("the live sessions gauge follows the backend", async () => {
    const { app, scrape } = setup();
    expect(sample(await scrape(), "code_interpreter_sessions_live")).toBe(0);
    const a = (await request(app).post("/v1/sessions").send({}).expect(201)).body.session_id as string;
    await request(app).post("/v1/sessions").send({}).expect(201);
    expect(sample(await scrape(), "code_interpreter_sessions_live")).toBe(2);
    await request(app).delete(`/v1/sessions/${a}`).expect(204);
    expect(sample(await scrape(), "code_interpreter_sessions_live")).toBe(1);
  });

  it("the in-flight executions gauge counts a running execution", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { app, scrape } = setup({}, { run: async () => (await gate, { stdout: "done" }) });
    const running = request(app)
      .post("/v1/execute")
      .send({ code: "x" })
      .then((r) => r);
    let during: number | undefined;
    for (let i = 0; i < 100 && during !== 1; i++) {
      during = sample(await scrape(), "code_interpreter_executions_in_flight", { route: "execute" });
      if (during !== 1) await new Promise((r) => setTimeout(r, 10));
    }
    expect(during).toBe(1);
    release();
    expect((await running).status).toBe(200);
    expect(sample(await scrape(), "code_interpreter_executions_in_flight", { route: "execute" })).toBe(0);
  });

  it("counts refused admissions (429 at MAX_SESSIONS)", async () => {
    const { app, scrape } = setup({ MAX_SESSIONS: "1" });
    expect(await scrape()).toContain("# TYPE code_interpreter_admissions_refused_total counter");
    await request(app).post("/v1/sessions").send({}).expect(201);
    await request(app).post("/v1/sessions").send({}).expect(429);
    await request(app).post("/v1/sessions").send({}).expect(429);
    const text = await scrape();
    expect(sample(text, "code_interpreter_admissions_refused_total", { route: "/v1/sessions" })).toBe(2);
    expect(
      sample(text, "code_interpreter_http_requests_total", {
        method: "POST",
        route: "/v1/sessions",
        status: "429",
      }),
    ).toBe(2);
  });

  it("the same series for any backend; the info series says which", async () => {
    const docker = await setup().scrape();
    const k8s = await (async () => {
      const backend = new InMemoryBackend({ kind: "kubernetes" });
      const app = createApp({
        backend,
        files: new MemoryFileStore(),
        config: testConfig(),
        logger: pino({ level: "silent" }),
      });
      return (await request(app).get("/metrics")).text;
    })();
    const names = (t: string) =>
      t
        .split("\n")
        .filter((l) => l.startsWith("# TYPE"))
        .sort();
    expect(names(k8s)).toEqual(names(docker));
    expect(sample(k8s, "code_interpreter_info", { backend: "kubernetes" })).toBe(1);
    expect(sample(docker, "code_interpreter_info", { backend: "docker" })).toBe(1);
    expect(sample(k8s, "code_interpreter_sessions_live")).toBe(0);
  });
});

describe("/metrics: the warm pool series", () => {
  it("reads the pool's size at scrape time and counts hits, misses, latencies, refill failures and reaps", async () => {
    let events: WarmPoolEvents = {};
    let ready = 2;
    const backend = Object.assign(new InMemoryBackend({ kind: "docker" }), {
      warmPool: {
        stats: () => ({ size: 2, ready, creating: 0 }),
        observe: (e: WarmPoolEvents) => {
          events = e;
          return () => undefined;
        },
        drain: async () => 0,
      } satisfies WarmPoolMonitor,
    });
    const app = createApp({
      backend,
      files: new MemoryFileStore(),
      config: testConfig(),
      logger: pino({ level: "silent" }),
    });
    const scrape = async () => (await request(app).get("/metrics").expect(200)).text;
    expect(sample(await scrape(), "code_interpreter_warm_pool_size")).toBe(2);
    events.claim?.("hit", "session", 0.004);
    events.claim?.("hit", "executor", 0.003);
    events.claim?.("miss", "session", 0.001);
    events.refillFailed?.(new Error("engine busy"));
    events.reaped?.("max-age");
    ready = 1;
    const text = await scrape();
    expect(sample(text, "code_interpreter_warm_pool_size")).toBe(1);
    expect(sample(text, "code_interpreter_warm_pool_hits_total", { kind: "session" })).toBe(1);
    expect(sample(text, "code_interpreter_warm_pool_hits_total", { kind: "executor" })).toBe(1);
    expect(sample(text, "code_interpreter_warm_pool_misses_total", { kind: "session" })).toBe(1);
    expect(
      sample(text, "code_interpreter_warm_pool_claim_duration_seconds_count", {
        kind: "session",
        outcome: "hit",
      }),
    ).toBe(1);
    expect(sample(text, "code_interpreter_warm_pool_refill_failures_total")).toBe(1);
    expect(sample(text, "code_interpreter_warm_pool_reaped_total", { reason: "max-age" })).toBe(1);
  });
});
