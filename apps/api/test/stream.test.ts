import { request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import request from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { BackendError } from "@code-interpreter/core";
import { makeApp, parseSse, textParser } from "./helpers.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe("POST /v1/execute/stream", () => {
  it("sends output events while running, then exactly one result", async () => {
    const { app } = makeApp({
      backend: {
        run: async (_req, ctx) => {
          ctx.emit("stdout", "hello\n");
          await new Promise((r) => setTimeout(r, 20));
          ctx.emit("stderr", "oops\n");
          ctx.emit("stdout", 'line with\nnewlines and "quotes"\n');
          ctx.workspace.set("plot.png", Buffer.from("png"));
          return { exitCode: 0, durationMs: 42 };
        },
      },
    });
    const res = await request(app)
      .post("/v1/execute/stream")
      .send({ code: "print('hello')" })
      .buffer(true)
      .parse(textParser)
      .expect(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    const events = parseSse(res.body as string);
    expect(events.map((e) => e.event)).toEqual(["output", "output", "output", "result"]);
    expect(events[0]?.data).toEqual({ stream: "stdout", data: "hello\n" });
    expect(events[1]?.data).toEqual({ stream: "stderr", data: "oops\n" });
    expect(events[2]?.data).toEqual({ stream: "stdout", data: 'line with\nnewlines and "quotes"\n' });
    expect(events[3]?.data).toEqual({
      exit_code: 0,
      timed_out: false,
      duration_ms: 42,
      files: [{ path: "plot.png", kind: "file", file_id: expect.any(String) }],
    });
  });

  it("sends one error event when the backend fails mid-stream", async () => {
    const { app } = makeApp({
      backend: {
        run: (_req, ctx) => {
          ctx.emit("stdout", "before\n");
          throw new BackendError("executor container died");
        },
      },
    });
    const res = await request(app)
      .post("/v1/execute/stream")
      .send({ code: "x" })
      .buffer(true)
      .parse(textParser)
      .expect(200);
    const events = parseSse(res.body as string);
    expect(events.map((e) => e.event)).toEqual(["output", "error"]);
    expect(events[1]?.data).toEqual({ message: "executor container died" });
  });

  it("hides unknown errors behind a generic message", async () => {
    const { app } = makeApp({
      backend: {
        run: () => {
          throw new Error("internal detail");
        },
      },
    });
    const res = await request(app)
      .post("/v1/execute/stream")
      .send({ code: "x" })
      .buffer(true)
      .parse(textParser)
      .expect(200);
    expect(parseSse(res.body as string)).toEqual([
      { event: "error", data: { message: "Internal Server Error" }, id: expect.any(String) },
    ]);
  });

  it("validates before streaming: plain JSON 422/404 and no backend call", async () => {
    const { app, backend } = makeApp();
    const bad = await request(app)
      .post("/v1/execute/stream")
      .send({ code: "x", timeout_ms: 10_000_000 })
      .expect(422);
    expect(bad.headers["content-type"]).toMatch(/application\/json/);
    const missing = await request(app)
      .post("/v1/execute/stream")
      .send({ code: "x", files: [{ path: "a", file_id: "nope" }] })
      .expect(404);
    expect(missing.body.detail).toMatch(/not found/);
    expect(backend.calls).toEqual([]);
  });

  it("aborts the execution's signal when the client disconnects", async () => {
    let aborted!: () => void;
    const abortedP = new Promise<void>((r) => (aborted = r));
    const { app } = makeApp({
      backend: {
        run: (_req, ctx) =>
          new Promise((resolve) => {
            ctx.emit("stdout", "started\n");
            ctx.signal?.addEventListener("abort", () => {
              aborted();
              resolve({ timedOut: true });
            });
          }),
      },
    });
    const server = app.listen(0);
    servers.push(server);
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as AddressInfo;
    const req = httpRequest({
      port,
      method: "POST",
      path: "/v1/execute/stream",
      headers: { "content-type": "application/json" },
    });
    req.on("error", () => undefined);
    req.end(JSON.stringify({ code: "while True: pass" }));
    const res = await new Promise<IncomingMessage>((r) => req.on("response", r));
    // Wait for the first output event, then hang up.
    await new Promise<void>((resolve) => res.once("data", () => resolve()));
    req.destroy();
    await abortedP;
  });
});

describe("POST /v1/sessions/{id}/execute/stream and /bash/stream", () => {
  it("stream a session's Python and bash: output events, then one result; state is the session's", async () => {
    const { app, backend } = makeApp({
      backend: {
        run: (req, ctx) => {
          ctx.emit("stdout", `${req.language}: ${req.code}\n`);
          if (req.language === "python") ctx.workspace.set("made.txt", Buffer.from("x"));
          return { exitCode: 0, durationMs: 7 };
        },
      },
    });
    const id = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;
    const py = await request(app)
      .post(`/v1/sessions/${id}/execute/stream`)
      .send({ code: "x = 1" })
      .buffer(true)
      .parse(textParser)
      .expect(200);
    expect(py.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(parseSse(py.body as string).map((e) => [e.event, e.data])).toEqual([
      ["output", { stream: "stdout", data: "python: x = 1\n" }],
      [
        "result",
        {
          exit_code: 0,
          timed_out: false,
          duration_ms: 7,
          files: [{ path: "made.txt", kind: "file", file_id: expect.any(String) }],
        },
      ],
    ]);
    const sh = await request(app)
      .post(`/v1/sessions/${id}/bash/stream`)
      .send({ cmd: "ls" })
      .buffer(true)
      .parse(textParser)
      .expect(200);
    expect(parseSse(sh.body as string).map((e) => [e.event, e.data])).toEqual([
      ["output", { stream: "stdout", data: "bash: ls\n" }],
      ["result", { exit_code: 0, timed_out: false, duration_ms: 7, files: [] }],
    ]);
    expect(backend.callsTo("execInSession").map((c) => c.args[0])).toEqual([id, id]);
  });

  it("validation and unknown sessions answer JSON before the stream starts", async () => {
    const { app } = makeApp();
    const id = (await request(app).post("/v1/sessions").expect(201)).body.session_id as string;
    const bad = await request(app).post(`/v1/sessions/${id}/bash/stream`).send({ cmd: 1 }).expect(422);
    expect(bad.body).toEqual({ detail: expect.stringMatching(/^cmd: /) });
    await request(app).post(`/v1/sessions/${id}/execute/stream`).send({ code: "1", files: [] }).expect(422);
    await request(app).post("/v1/sessions/not-a-session/execute/stream").send({ code: "1" }).expect(404);
    const gone = await request(app)
      .post("/v1/sessions/code-session-3f2b8c1e-9a4d-4e7f-8b2a-1c2d3e4f5a6b/bash/stream")
      .send({ cmd: "true" })
      .expect(404);
    expect(gone.body).toEqual({ detail: expect.stringMatching(/not found/) });
  });
});
