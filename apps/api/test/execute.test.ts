import request from "supertest";
import { describe, expect, it } from "vitest";
import { BackendUnavailableError, TRUNCATION_MARKER } from "@code-interpreter/core";
import { makeApp } from "./helpers.js";

describe("POST /v1/execute", () => {
  it("maps the backend result to the contract's snake_case fields", async () => {
    const { app, backend, files } = makeApp({
      backend: {
        run: (req, ctx) => {
          ctx.workspace.set("out/result.txt", Buffer.from("done"));
          return { stdout: `ran ${req.code.length} chars\n`, stderr: "warn\n", exitCode: 3, durationMs: 12 };
        },
      },
    });
    const res = await request(app).post("/v1/execute").send({ code: "print(1)" }).expect(200);
    expect(res.body).toEqual({
      stdout: "ran 8 chars\n",
      stderr: "warn\n",
      exit_code: 3,
      timed_out: false,
      duration_ms: 12,
      files: [{ path: "out/result.txt", kind: "file", file_id: expect.any(String) }],
    });
    const stored = files.files.get(res.body.files[0].file_id);
    expect(stored?.bytes.toString()).toBe("done");
    expect(stored?.meta.filename).toBe("result.txt");

    const req = backend.callsTo("execute")[0]?.args[0] as Record<string, unknown>;
    expect(req).toMatchObject({
      language: "python",
      code: "print(1)",
      stdin: null,
      timeoutMs: 2000,
      lastLineInteractive: true,
      maxOutputBytes: 1_000_000,
      files: [],
    });
  });

  it("passes stdin, timeout_ms and last_line_interactive through", async () => {
    const { app, backend } = makeApp();
    await request(app)
      .post("/v1/execute")
      .send({ code: "x", stdin: "in", timeout_ms: 5000, last_line_interactive: false })
      .expect(200);
    expect(backend.callsTo("execute")[0]?.args[0]).toMatchObject({
      stdin: "in",
      timeoutMs: 5000,
      lastLineInteractive: false,
    });
  });

  it("reports a timeout as timed_out with exit_code null", async () => {
    const { app } = makeApp({ backend: { run: () => ({ stdout: "partial", timedOut: true }) } });
    const res = await request(app).post("/v1/execute").send({ code: "while True: pass" }).expect(200);
    expect(res.body).toMatchObject({ stdout: "partial", exit_code: null, timed_out: true });
  });

  it("cuts output at MAX_OUTPUT_BYTES", async () => {
    const { app } = makeApp({
      env: { MAX_OUTPUT_BYTES: "10" },
      backend: { run: () => ({ stdout: "0123456789abcdef" }) },
    });
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(200);
    expect(res.body.stdout).toBe(`0123456789${TRUNCATION_MARKER}`);
  });

  it("stages input files with their bytes", async () => {
    let seen = "";
    const { app, files } = makeApp({
      backend: {
        run: (_req, ctx) => {
          seen = ctx.workspace.get("data/in.csv")?.toString() ?? "";
          return {};
        },
      },
    });
    const id = await files.add("a,b\n1,2\n", "in.csv");
    const res = await request(app)
      .post("/v1/execute")
      .send({ code: "x", files: [{ path: "data/in.csv", file_id: id }] })
      .expect(200);
    expect(seen).toBe("a,b\n1,2\n");
    expect(res.body.files).toEqual([]); // unchanged input files are left out
  });

  describe("validation (nothing reaches the backend)", () => {
    it.each([
      ["missing code", {}, /code: is required/],
      ["code of the wrong type", { code: 5 }, /code: must be a string/],
      ["timeout over the max", { code: "x", timeout_ms: 60_001 }, /timeout_ms: must be at most 60000/],
      ["timeout zero", { code: "x", timeout_ms: 0 }, /timeout_ms/],
      ["timeout not an integer", { code: "x", timeout_ms: 1.5 }, /timeout_ms/],
      ["timeout as a string", { code: "x", timeout_ms: "100" }, /timeout_ms/],
      ["stdin not a string", { code: "x", stdin: 1 }, /stdin/],
      [
        "last_line_interactive not a boolean",
        { code: "x", last_line_interactive: "yes" },
        /last_line_interactive/,
      ],
      ["files not an array", { code: "x", files: {} }, /files/],
      ["a body that is not an object", [1, 2], /body/],
    ])("%s → 422", async (_name, body, detail) => {
      const { app, backend } = makeApp();
      const res = await request(app).post("/v1/execute").send(body).expect(422);
      expect(res.body.detail).toMatch(detail);
      expect(backend.calls).toEqual([]);
    });

    it.each(["/etc/passwd", "../x", "a/../../x", "a//b", "", "C:\\x"])(
      "unsafe path %j → 422",
      async (path) => {
        const { app, backend, files } = makeApp();
        const id = await files.add("x");
        const res = await request(app)
          .post("/v1/execute")
          .send({ code: "x", files: [{ path, file_id: id }] })
          .expect(422);
        expect(res.body.detail).toMatch(/files\[0\]\.path/);
        expect(backend.calls).toEqual([]);
      },
    );

    it("duplicate paths → 422", async () => {
      const { app, backend, files } = makeApp();
      const id = await files.add("x");
      await request(app)
        .post("/v1/execute")
        .send({
          code: "x",
          files: [
            { path: "a", file_id: id },
            { path: "a", file_id: id },
          ],
        })
        .expect(422);
      expect(backend.calls).toEqual([]);
    });

    it("unknown file_id → 404 and the backend is never called", async () => {
      const { app, backend, files } = makeApp();
      const good = await files.add("x");
      const res = await request(app)
        .post("/v1/execute")
        .send({
          code: "x",
          files: [
            { path: "a.txt", file_id: good },
            { path: "b.txt", file_id: "ffffffffffffffffffffffffffffffff" },
          ],
        })
        .expect(404);
      expect(res.body.detail).toMatch(/files\[1\]\.file_id/);
      expect(backend.calls).toEqual([]);
    });

    it("another owner's file_id is unknown too", async () => {
      const { app, backend, files } = makeApp();
      const foreign = await files.add("x", "x", "someone-else");
      await request(app)
        .post("/v1/execute")
        .send({ code: "x", files: [{ path: "a.txt", file_id: foreign }] })
        .expect(404);
      expect(backend.calls).toEqual([]);
    });
  });

  it("ignores unknown extra fields", async () => {
    const { app } = makeApp();
    await request(app)
      .post("/v1/execute")
      .send({ code: "x", language: "python", extra: { a: 1 } })
      .expect(200);
  });

  it("answers 503 when the backend is unreachable", async () => {
    const { app, backend } = makeApp();
    backend.available = false;
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(503);
    expect(res.body).toEqual({ detail: expect.stringMatching(/unavailable/) });
  });

  it("answers 503 for a BackendUnavailableError thrown mid-run", async () => {
    const { app } = makeApp({
      backend: {
        run: () => {
          throw new BackendUnavailableError("Docker daemon is not reachable");
        },
      },
    });
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(503);
    expect(res.body).toEqual({ detail: "Docker daemon is not reachable" });
  });

  it("answers 500 {detail} without a stack for unknown errors", async () => {
    const { app } = makeApp({
      backend: {
        run: () => {
          throw new TypeError("secret internals at /srv/app.js:12");
        },
      },
    });
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(500);
    expect(res.body).toEqual({ detail: "Internal Server Error" });
    expect(res.text).not.toMatch(/secret|\.js:|at /);
  });

  it("answers 501 when the backend cannot run one-shot code", async () => {
    const { app, backend } = makeApp({ backend: { capabilities: { oneShot: false } } });
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(501);
    expect(res.body.detail).toMatch(/one-shot/);
    await request(app).post("/v1/execute/stream").send({ code: "x" }).expect(501);
    expect(backend.calls).toEqual([]);
  });
});
