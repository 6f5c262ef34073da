import request from "supertest";
import { describe, expect, it } from "vitest";
import { API_VERSION } from "../src/index.js";
import { makeApp } from "./helpers.js";

describe("GET /health", () => {
  it("200 with backend kind and version when the backend answers", async () => {
    const { app } = makeApp();
    const res = await request(app).get("/health").expect(200);
    expect(res.body).toEqual({ status: "ok", backend: "memory", version: API_VERSION });
    expect(API_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("503 when it does not", async () => {
    const { app, backend } = makeApp();
    backend.available = false;
    const res = await request(app).get("/health").expect(503);
    expect(res.body).toEqual({
      status: "unavailable",
      backend: "memory",
      version: API_VERSION,
      detail: expect.stringMatching(/unavailable/),
    });
  });
});

describe("errors are JSON", () => {
  it("malformed JSON → 400 {detail}", async () => {
    const { app, backend } = makeApp();
    const res = await request(app)
      .post("/v1/execute")
      .set("Content-Type", "application/json")
      .send('{"code": "print(1)",')
      .expect(400);
    expect(res.headers["content-type"]).toMatch(/application\/json/);
    expect(res.body).toEqual({ detail: expect.stringMatching(/^malformed JSON body/) });
    expect(backend.calls).toEqual([]);
  });

  it("reads JSON bodies whatever the Content-Type (curl -d sends form-urlencoded)", async () => {
    const { app } = makeApp();
    await request(app)
      .post("/v1/execute")
      .set("Content-Type", "application/x-www-form-urlencoded")
      .send('{"code": "print(1)"}')
      .expect(200);
    const bad = await request(app)
      .post("/v1/execute")
      .set("Content-Type", "text/plain")
      .send("code=1")
      .expect(400);
    expect(bad.body.detail).toMatch(/malformed JSON/);
  });

  it("a JSON body over the limit → 413", async () => {
    const { app } = makeApp();
    const res = await request(app)
      .post("/v1/execute")
      .send({ code: "x".repeat(6 * 1024 * 1024) })
      .expect(413);
    expect(res.body.detail).toMatch(/larger than/);
  });

  it("unknown route → 404 {detail: 'Not Found'}", async () => {
    const { app } = makeApp();
    for (const [method, path] of [
      ["get", "/nope"],
      ["post", "/v1/nothing"],
      ["get", "/v1/execute"],
      ["patch", "/v1/sessions"],
    ] as const) {
      const res = await request(app)[method](path).expect(404);
      expect(res.body).toEqual({ detail: "Not Found" });
      expect(res.headers["content-type"]).toMatch(/application\/json/);
    }
  });

  it("sends a request id and no x-powered-by", async () => {
    const { app } = makeApp();
    const res = await request(app).get("/health").set("X-Request-Id", "abc-123").expect(200);
    expect(res.headers["x-request-id"]).toBe("abc-123");
    expect(res.headers["x-powered-by"]).toBeUndefined();
    const other = await request(app).get("/health").set("X-Request-Id", "bad id with spaces").expect(200);
    expect(other.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("GET /metrics", () => {
  it("exposes execution and session counters in Prometheus format", async () => {
    const { app } = makeApp({ backend: { run: () => ({ exitCode: 1 }) } });
    await request(app).post("/v1/execute").send({ code: "x" }).expect(200);
    const s = (await request(app).post("/v1/sessions").expect(201)).body;
    await request(app).delete(`/v1/sessions/${s.session_id}`).expect(204);
    const res = await request(app).get("/metrics").expect(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.text).toContain('code_interpreter_executions_total{route="execute",outcome="nonzero_exit"} 1');
    expect(res.text).toContain("code_interpreter_execution_duration_seconds_bucket");
    expect(res.text).toContain("code_interpreter_sessions_created_total 1");
    expect(res.text).toContain("code_interpreter_sessions_deleted_total 1");
  });
});

describe("auth", () => {
  const env = { API_KEYS: "key-a, key-b" };

  it("leaves /health open", async () => {
    const { app } = makeApp({ env });
    await request(app).get("/health").expect(200);
  });

  it("401 without a key, with a wrong key or a wrong scheme, on every other route", async () => {
    const { app, backend, files } = makeApp({ env });
    for (const auth of [
      undefined,
      "Bearer nope",
      "Basic a2V5LWE=",
      "Bearer ",
      "key-a",
      "Bearer key-a key-b",
    ]) {
      for (const [method, path] of [
        ["get", "/v1/files"],
        ["post", "/v1/execute"],
        ["get", "/v1/sessions"],
        ["get", "/metrics"],
        ["get", "/no-such-route"],
      ] as const) {
        const r = request(app)[method](path);
        if (auth !== undefined) r.set("Authorization", auth);
        const res = await r.expect(401);
        expect(res.body).toEqual({ detail: expect.any(String) });
        expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
      }
    }
    await request(app).post("/v1/files").attach("file", Buffer.from("x"), "x").expect(401);
    expect(backend.calls).toEqual([]);
    expect(files.puts).toBe(0);
  });

  it("accepts any configured key, case-insensitive scheme", async () => {
    const { app } = makeApp({ env });
    await request(app).get("/v1/files").set("Authorization", "Bearer key-a").expect(200);
    await request(app).get("/v1/files").set("Authorization", "bearer key-b").expect(200);
  });

  it("key B cannot see key A's sessions or files (404, not 403)", async () => {
    const { app, backend } = makeApp({ env });
    const A = { Authorization: "Bearer key-a" };
    const B = { Authorization: "Bearer key-b" };

    const s = (await request(app).post("/v1/sessions").set(A).expect(201)).body;
    await request(app).get(`/v1/sessions/${s.session_id}`).set(B).expect(404);
    await request(app).delete(`/v1/sessions/${s.session_id}`).set(B).expect(404);
    await request(app).post(`/v1/sessions/${s.session_id}/execute`).set(B).send({ code: "x" }).expect(404);
    await request(app).put(`/v1/sessions/${s.session_id}/files/a.txt`).set(B).send("x").expect(404);
    expect((await request(app).get("/v1/sessions").set(B).expect(200)).body).toEqual({ sessions: [] });
    expect((await request(app).get("/v1/sessions").set(A).expect(200)).body.sessions).toHaveLength(1);
    await request(app).get(`/v1/sessions/${s.session_id}`).set(A).expect(200);

    const f = (
      await request(app).post("/v1/files").set(A).attach("file", Buffer.from("secret"), "s.txt").expect(201)
    ).body;
    await request(app).get(`/v1/files/${f.file_id}`).set(B).expect(404);
    await request(app).delete(`/v1/files/${f.file_id}`).set(B).expect(404);
    expect((await request(app).get("/v1/files").set(B).expect(200)).body).toEqual({ files: [] });
    await request(app)
      .post("/v1/execute")
      .set(B)
      .send({ code: "x", files: [{ path: "s.txt", file_id: f.file_id }] })
      .expect(404);
    expect(backend.callsTo("execute")).toHaveLength(0);
    await request(app).get(`/v1/files/${f.file_id}`).set(A).expect(200);

    // The backend saw the owner tag, never the key.
    const created = backend.callsTo("createSession")[0]?.args[0] as { owner: string };
    expect(created.owner).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(backend.calls)).not.toContain("key-a");
  });

  it("MAX_SESSIONS counts per key when keys are configured", async () => {
    const { app } = makeApp({ env: { ...env, MAX_SESSIONS: "1" } });
    await request(app).post("/v1/sessions").set("Authorization", "Bearer key-a").expect(201);
    await request(app).post("/v1/sessions").set("Authorization", "Bearer key-a").expect(429);
    await request(app).post("/v1/sessions").set("Authorization", "Bearer key-b").expect(201);
  });
});
