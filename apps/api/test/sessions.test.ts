import request from "supertest";
import { describe, expect, it } from "vitest";
import { makeApp, binaryParser, msOf } from "./helpers.js";

const UNKNOWN = "code-session-3f2b8c1e-9a4d-4e7f-8b2a-1c2d3e4f5a6b";

describe("/v1/sessions", () => {
  it("creates, gets, lists and deletes a session", async () => {
    const { app } = makeApp();
    const created = await request(app)
      .post("/v1/sessions")
      .send({ ttl_seconds: 600, idle_timeout_seconds: 60, metadata: { chat_id: "abc" } })
      .expect(201);
    const s = created.body;
    expect(s).toEqual({
      session_id: expect.stringMatching(/^code-session-[0-9a-f-]{36}$/),
      status: "running",
      created_at: expect.any(Number),
      expires_at: expect.any(Number),
      last_active_at: expect.any(Number),
      metadata: { chat_id: "abc" },
      idle_timeout_seconds: 60,
      max_expires_at: expect.any(Number),
    });
    expect(msOf(s.expires_at) - msOf(s.created_at)).toBe(600_000);
    expect(msOf(s.max_expires_at) - msOf(s.created_at)).toBe(86_400_000);

    expect((await request(app).get(`/v1/sessions/${s.session_id}`).expect(200)).body).toEqual(s);
    expect((await request(app).get("/v1/sessions").expect(200)).body).toEqual({ sessions: [s] });

    await request(app).delete(`/v1/sessions/${s.session_id}`).expect(204);
    await request(app).get(`/v1/sessions/${s.session_id}`).expect(404);
    await request(app).delete(`/v1/sessions/${s.session_id}`).expect(404);
    expect((await request(app).get("/v1/sessions").expect(200)).body).toEqual({ sessions: [] });
  });

  it("defaults: empty body, ttl = max lifetime, no idle timeout, empty metadata", async () => {
    const { app, backend } = makeApp({ env: { SESSION_MAX_LIFETIME_SECONDS: "7200" } });
    const s = (await request(app).post("/v1/sessions").expect(201)).body;
    expect(msOf(s.expires_at) - msOf(s.created_at)).toBe(7_200_000);
    expect(s.idle_timeout_seconds).toBeNull();
    expect(s.metadata).toEqual({});
    expect(backend.callsTo("createSession")[0]?.args[0]).toMatchObject({
      ttlSeconds: 7200,
      idleTimeoutSeconds: null,
      owner: null,
      files: [],
    });
  });

  it("stages files at creation", async () => {
    const { app, backend, files } = makeApp();
    const id = await files.add("hello", "h.txt");
    const s = (
      await request(app)
        .post("/v1/sessions")
        .send({ files: [{ path: "data/h.txt", file_id: id }] })
        .expect(201)
    ).body;
    expect(backend.workspaceOf(s.session_id).get("data/h.txt")?.toString()).toBe("hello");
  });

  describe("create validation (no backend call)", () => {
    it.each([
      ["ttl over the max", { ttl_seconds: 86_401 }, /ttl_seconds/],
      ["ttl zero", { ttl_seconds: 0 }, /ttl_seconds/],
      ["ttl as a string", { ttl_seconds: "60" }, /ttl_seconds/],
      ["idle timeout negative", { idle_timeout_seconds: -1 }, /idle_timeout_seconds/],
      ["idle timeout fractional", { idle_timeout_seconds: 1.5 }, /idle_timeout_seconds/],
      ["metadata not an object", { metadata: ["a"] }, /metadata/],
      ["metadata value not a string", { metadata: { a: 1 } }, /metadata\.a/],
      [
        "metadata too many keys",
        { metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) },
        /metadata/,
      ],
      ["unsafe path", { files: [{ path: "../x", file_id: "abc" }] }, /files\[0\]\.path/],
    ])("%s → 422", async (_n, body, detail) => {
      const { app, backend } = makeApp();
      const res = await request(app).post("/v1/sessions").send(body).expect(422);
      expect(res.body.detail).toMatch(detail);
      expect(backend.calls).toEqual([]);
    });

    it("unknown file_id → 404", async () => {
      const { app, backend } = makeApp();
      await request(app)
        .post("/v1/sessions")
        .send({ files: [{ path: "a", file_id: "0".repeat(32) }] })
        .expect(404);
      expect(backend.calls).toEqual([]);
    });
  });

  it.each([
    ["get", "get", ""],
    ["delete", "delete", ""],
    ["execute", "post", "/execute"],
    ["bash", "post", "/bash"],
    ["keepalive", "post", "/keepalive"],
    ["list files", "get", "/files"],
    ["read file", "get", "/files/a.txt"],
    ["write file", "put", "/files/a.txt"],
  ] as const)("a bad id on %s → 404 without a backend call", async (_n, method, suffix) => {
    const { app, backend } = makeApp();
    for (const id of [
      "nope",
      "code-session-",
      "my-container",
      "code-session-3F2B8C1E-9A4D-4E7F-8B2A-1C2D3E4F5A6B",
    ]) {
      const agent = request(app);
      const res = await agent[method](`/v1/sessions/${id}${suffix}`)
        .send({ code: "x", cmd: "x" })
        .expect(404);
      expect(res.body.detail).toMatch(/not found/);
    }
    expect(backend.calls).toEqual([]);
  });

  it("unknown (well-formed) ids are 404 from the backend", async () => {
    const { app } = makeApp();
    await request(app).get(`/v1/sessions/${UNKNOWN}`).expect(404);
    await request(app).post(`/v1/sessions/${UNKNOWN}/execute`).send({ code: "x" }).expect(404);
  });

  it("429 at MAX_SESSIONS, also for concurrent creates", async () => {
    const { app, backend } = makeApp({ env: { MAX_SESSIONS: "3" } });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => request(app).post("/v1/sessions").send({})),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 201, 429, 429, 429]);
    expect(results.find((r) => r.status === 429)?.body.detail).toMatch(/MAX_SESSIONS/);
    expect(backend.size).toBe(3);
    // Deleting one frees a slot.
    const one = results.find((r) => r.status === 201)?.body.session_id as string;
    await request(app).delete(`/v1/sessions/${one}`).expect(204);
    await request(app).post("/v1/sessions").send({}).expect(201);
  });

  it("MAX_SESSIONS=0 means unlimited", async () => {
    const { app } = makeApp({ env: { MAX_SESSIONS: "0" } });
    for (let i = 0; i < 5; i++) await request(app).post("/v1/sessions").expect(201);
  });

  it("501 when the backend has no sessions (before validation or id checks)", async () => {
    const { app, backend } = makeApp({
      backend: {
        capabilities: { sessions: false, sessionExec: false, sessionFiles: false, keepalive: false },
      },
    });
    await request(app).post("/v1/sessions").send({ ttl_seconds: -5 }).expect(501);
    await request(app).get("/v1/sessions").expect(501);
    await request(app).get("/v1/sessions/nope").expect(501);
    await request(app).post(`/v1/sessions/${UNKNOWN}/execute`).send({}).expect(501);
    await request(app).post(`/v1/sessions/${UNKNOWN}/bash`).send({}).expect(501);
    await request(app).post(`/v1/sessions/${UNKNOWN}/keepalive`).send({}).expect(501);
    await request(app).get(`/v1/sessions/${UNKNOWN}/files`).expect(501);
    await request(app).put(`/v1/sessions/${UNKNOWN}/files/a`).send("x").expect(501);
    const res = await request(app).get(`/v1/sessions/${UNKNOWN}/files/a`).expect(501);
    expect(res.body.detail).toMatch(/does not support session files/);
    expect(backend.calls).toEqual([]);
  });

  it("keepalive moves expires_at, never past max_expires_at; bad ttl → 422", async () => {
    let now = 1_700_000_000_000;
    const { app } = makeApp({ env: { SESSION_MAX_LIFETIME_SECONDS: "3600" }, backend: { now: () => now } });
    const s = (await request(app).post("/v1/sessions").send({ ttl_seconds: 60 }).expect(201)).body;
    now += 30_000;
    const k = (
      await request(app).post(`/v1/sessions/${s.session_id}/keepalive`).send({ ttl_seconds: 600 }).expect(200)
    ).body;
    expect(msOf(k.expires_at)).toBe(now + 600_000);
    const capped = (
      await request(app)
        .post(`/v1/sessions/${s.session_id}/keepalive`)
        .send({ ttl_seconds: 3600 })
        .expect(200)
    ).body;
    expect(capped.expires_at).toBe(s.max_expires_at);
    await request(app).post(`/v1/sessions/${s.session_id}/keepalive`).send({ ttl_seconds: 3601 }).expect(422);
    await request(app).post(`/v1/sessions/${s.session_id}/keepalive`).send({ ttl_seconds: "x" }).expect(422);
    // No body: extend as far as allowed.
    await request(app).post(`/v1/sessions/${s.session_id}/keepalive`).expect(200);
  });

  it("expired sessions are 404", async () => {
    let now = 1_700_000_000_000;
    const { app } = makeApp({ backend: { now: () => now } });
    const s = (await request(app).post("/v1/sessions").send({ ttl_seconds: 10 }).expect(201)).body;
    now += 11_000;
    await request(app).get(`/v1/sessions/${s.session_id}`).expect(404);
  });

  it("executes Python and bash in the session and moves last_active_at", async () => {
    let now = 1_700_000_000_000;
    const { app, backend } = makeApp({
      backend: {
        now: () => now,
        run: (req, ctx) => {
          if (req.language === "bash") return { stdout: `$ ${req.code}\n`, exitCode: 0 };
          ctx.workspace.set("made.txt", Buffer.from("new"));
          return { stdout: "py\n" };
        },
      },
    });
    const s = (await request(app).post("/v1/sessions").expect(201)).body;
    now += 5_000;
    const py = await request(app)
      .post(`/v1/sessions/${s.session_id}/execute`)
      .send({ code: "open('made.txt','w').write('new')", timeout_ms: 1000 })
      .expect(200);
    expect(py.body).toEqual({
      stdout: "py\n",
      stderr: "",
      exit_code: 0,
      timed_out: false,
      duration_ms: expect.any(Number),
      files: [{ path: "made.txt", kind: "file", file_id: expect.any(String) }],
    });
    const sh = await request(app)
      .post(`/v1/sessions/${s.session_id}/bash`)
      .send({ cmd: "ls -la" })
      .expect(200);
    expect(sh.body).toMatchObject({ stdout: "$ ls -la\n", exit_code: 0, timed_out: false, files: [] });
    expect(backend.callsTo("execInSession")[1]?.args[1]).toMatchObject({
      language: "bash",
      code: "ls -la",
      timeoutMs: 2000,
    });

    const after = (await request(app).get(`/v1/sessions/${s.session_id}`).expect(200)).body;
    expect(msOf(after.last_active_at)).toBe(now);

    await request(app).post(`/v1/sessions/${s.session_id}/execute`).send({}).expect(422);
    await request(app).post(`/v1/sessions/${s.session_id}/bash`).send({ cmd: "" }).expect(422);
    const withFiles = await request(app)
      .post(`/v1/sessions/${s.session_id}/execute`)
      .send({ code: "x", files: [{ path: "a", file_id: "b" }] })
      .expect(422);
    expect(withFiles.body.detail).toMatch(/files: .*PUT/);
  });

  it("writes, lists and reads workspace files with nested paths; bytes round-trip", async () => {
    const { app, backend } = makeApp();
    const s = (await request(app).post("/v1/sessions").expect(201)).body;
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const put = await request(app)
      .put(`/v1/sessions/${s.session_id}/files/dir/sub/data.bin`)
      .set("Content-Type", "application/octet-stream")
      .send(bytes)
      .expect(201);
    expect(put.body).toEqual({ path: "dir/sub/data.bin", size_bytes: 7 });
    // A JSON content type is still stored raw.
    await request(app)
      .put(`/v1/sessions/${s.session_id}/files/conf.json`)
      .set("Content-Type", "application/json")
      .send('{"a": 1}')
      .expect(201);
    expect(backend.workspaceOf(s.session_id).get("conf.json")?.toString()).toBe('{"a": 1}');

    const list = await request(app).get(`/v1/sessions/${s.session_id}/files`).expect(200);
    expect(list.body.files).toEqual(
      expect.arrayContaining([
        { path: "dir/sub/data.bin", kind: "file", size_bytes: 7 },
        { path: "dir", kind: "directory", size_bytes: 0 },
      ]),
    );

    const get = await request(app)
      .get(`/v1/sessions/${s.session_id}/files/dir/sub/data.bin`)
      .buffer(true)
      .parse(binaryParser)
      .expect(200);
    expect(get.headers["content-type"]).toBe("application/octet-stream");
    expect(get.headers["content-disposition"]).toBe('attachment; filename="data.bin"');
    expect(Buffer.compare(get.body as Buffer, bytes)).toBe(0);

    await request(app).get(`/v1/sessions/${s.session_id}/files/missing.txt`).expect(404);
  });

  it("rejects unsafe workspace paths and oversize writes", async () => {
    const { app } = makeApp();
    const s = (await request(app).post("/v1/sessions").expect(201)).body;
    const base = `/v1/sessions/${s.session_id}/files`;
    await request(app).put(`${base}/a/%2E%2E/%2E%2E/etc/passwd`).send("x").expect(422);
    await request(app).get(`${base}/a//b`).expect(422);
    const big = await request(app).put(`${base}/big.bin`).send(Buffer.alloc(1025)).expect(413);
    expect(big.body.detail).toMatch(/1024/);
  });
});
