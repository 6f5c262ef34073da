/**
 * Issue 8 item 7: every error that carries a client status keeps it, as JSON `{"detail"}` —
 * decompression failures, invalid percent-encoding in the path, and their siblings.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { brotliCompressSync, gzipSync } from "node:zlib";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { clientErrorHandler, toErrorAnswer } from "../src/index.js";
import { makeApp } from "./helpers.js";

const GARBAGE = Buffer.from("this is not compressed at all \u0000\u00ff", "latin1");

async function harness() {
  const h = makeApp();
  const s = await h.backend.createSession({
    files: [],
    ttlSeconds: 60,
    idleTimeoutSeconds: null,
    metadata: {},
    owner: null,
  });
  return { ...h, id: s.id };
}

function expectJsonError(res: request.Response, status: number, detail: RegExp): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  expect(res.body).toEqual({ detail: expect.stringMatching(detail) });
}

describe("the five malformed requests of issue 8 answer 4xx JSON", () => {
  for (const encoding of ["gzip", "deflate", "br"]) {
    it(`Content-Encoding: ${encoding} with garbage → 400`, async () => {
      const { app, backend } = await harness();
      for (const path of ["/v1/execute", "/v1/execute/stream", "/v1/sessions"]) {
        const res = await request(app)
          .post(path)
          .set("Content-Type", "application/octet-stream")
          .set("Content-Encoding", encoding)
          .send(GARBAGE);
        expectJsonError(res, 400, /could not be decompressed/);
      }
      expect(backend.callsTo("execute")).toEqual([]);
    });
  }

  it("invalid percent-encoding in a session file path, GET and PUT → 400", async () => {
    const { app, id } = await harness();
    expectJsonError(await request(app).get(`/v1/sessions/${id}/files/%ff%fe`), 400, /percent-encoded/);
    expectJsonError(
      await request(app).put(`/v1/sessions/${id}/files/%ff%fe`).send("x"),
      400,
      /percent-encoded/,
    );
  });
});

describe("their siblings", () => {
  it("invalid percent-encoding anywhere in a path parameter → 400", async () => {
    const { app } = await harness();
    for (const path of [
      "/v1/sessions/%ff",
      "/v1/files/%ff",
      "/v1/files/%E0%A4%A",
      "/v1/sessions/%c0%af/files",
    ]) {
      expectJsonError(await request(app).get(path), 400, /percent-encoded/);
    }
    expectJsonError(await request(app).delete("/v1/files/%ff"), 400, /percent-encoded/);
  });

  it("an unsupported Content-Encoding → 415 naming the ones we take", async () => {
    const { app } = await harness();
    for (const encoding of ["zstd-nope", "compress", "gzip, gzip", "x"]) {
      const res = await request(app)
        .post("/v1/execute")
        .set("Content-Type", "application/json")
        .set("Content-Encoding", encoding)
        .send("{}");
      expectJsonError(res, 415, /unsupported content encoding.*gzip, deflate or br/);
    }
  });

  it("a compressed body that decompresses is accepted; a decompression bomb is 413", async () => {
    const { app } = await harness();
    // (A JSON body whatever the Content-Type; octet-stream keeps supertest from re-encoding it.)
    const ok = await request(app)
      .post("/v1/execute")
      .set("Content-Type", "application/octet-stream")
      .set("Content-Encoding", "gzip")
      .send(gzipSync(JSON.stringify({ code: "print(1)" })));
    expect(ok.status, ok.text).toBe(200);
    const bomb = brotliCompressSync(Buffer.from(`{"code": "${"x".repeat(8 * 1024 * 1024)}"}`));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const big = await request(app)
      .post("/v1/execute")
      .set("Content-Type", "application/octet-stream")
      .set("Content-Encoding", "br")
      .send(bomb);
    expectJsonError(big, 413, /larger than/);
  });

  it("a charset other than UTF-8 → 415", async () => {
    const { app } = await harness();
    for (const charset of ["latin1", "koi8-r", "utf-7x"]) {
      const res = await request(app)
        .post("/v1/execute")
        .set("Content-Type", `application/json; charset=${charset}`)
        .send("{}");
      expectJsonError(res, 415, /unsupported charset/);
    }
  });

  it("JSON that is not an object → 400 or 422, never 500", async () => {
    const { app } = await harness();
    for (const body of ["null", '"str"', "1", "[]", "[1,2]", "{", "\u0000", "{}}"]) {
      const res = await request(app).post("/v1/execute").set("Content-Type", "application/json").send(body);
      expect([400, 422], `${JSON.stringify(body)} → ${res.status} ${res.text}`).toContain(res.status);
      expect(res.body).toEqual({ detail: expect.any(String) });
    }
  });

  it("multipart without a boundary, or cut short → 400", async () => {
    const { app } = await harness();
    expectJsonError(
      await request(app).post("/v1/files").set("Content-Type", "multipart/form-data").send("xx"),
      400,
      /multipart/,
    );
    expectJsonError(
      await request(app)
        .post("/v1/files")
        .set("Content-Type", "multipart/form-data; boundary=b")
        .send("--b\r\n"),
      400,
      /multipart/,
    );
  });

  it("an unexposed 4xx from a library keeps its status with the status text", () => {
    expect(toErrorAnswer(Object.assign(new Error("secret internals"), { status: 418 }))).toEqual({
      status: 418,
      detail: "I'm a Teapot",
      unexpected: false,
    });
    expect(toErrorAnswer(Object.assign(new Error("x"), { statusCode: 405, expose: true }))).toMatchObject({
      status: 405,
      detail: "x",
    });
    expect(toErrorAnswer(Object.assign(new Error("server side"), { status: 502 }))).toMatchObject({
      status: 500,
      detail: "Internal Server Error",
    });
  });
});

describe("requests Node's HTTP parser rejects (clientError)", () => {
  async function raw(payload: string): Promise<string> {
    const { app } = makeApp();
    const server = createServer(app);
    server.on("clientError", clientErrorHandler);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      const socket = connect(port, "127.0.0.1");
      await once(socket, "connect");
      socket.end(payload);
      let text = "";
      socket.setEncoding("utf8");
      for await (const chunk of socket) text += chunk as string;
      return text;
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }

  it("oversized headers → 431 JSON", async () => {
    const text = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(text).toMatch(/\r\n\r\n\{"detail":"the request's headers are too large"\}$/);
  });

  it("a malformed Content-Length or request line → 400 JSON", async () => {
    for (const payload of [
      "POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "GET /\u0001 HTTP/1.1\r\n\r\n",
    ]) {
      const text = await raw(payload);
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
      expect(text).toMatch(/\{"detail":"malformed HTTP request \(HPE_[A-Z_]+\)"\}$/);
    }
  });
});

describe("Retry-After", () => {
  it("429 at MAX_SESSIONS and 503 with the backend down carry Retry-After", async () => {
    const { app, backend } = makeApp({ env: { MAX_SESSIONS: "1" } });
    await request(app).post("/v1/sessions").expect(201);
    const full = await request(app).post("/v1/sessions").expect(429);
    expect(full.headers["retry-after"]).toBe("2");
    expect(full.body).toEqual({ detail: expect.any(String) });
    backend.available = false;
    const down = await request(app).get("/v1/sessions").expect(503);
    expect(down.headers["retry-after"]).toBe("5");
    const bad = await request(app).post("/v1/sessions").send({ ttl_seconds: "x" }).expect(422);
    expect(bad.headers["retry-after"]).toBeUndefined();
  });
});

describe("routes that store bytes as sent", () => {
  it("a Content-Encoding on an upload or a raw workspace write → 415, nothing stored", async () => {
    const { app, files, backend, id } = await harness();
    const boundary = "b0undary";
    const form = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhi\r\n--${boundary}--\r\n`,
    );
    const up = await request(app)
      .post("/v1/files")
      .set("Content-Type", `multipart/form-data; boundary=${boundary}`)
      .set("Content-Encoding", "gzip")
      .send(gzipSync(form));
    expectJsonError(up, 415, /Content-Encoding "gzip" is not accepted/);
    expect(files.puts).toBe(0);
    const put = await request(app)
      .put(`/v1/sessions/${id}/files/a.txt`)
      .set("Content-Encoding", "br")
      .send(brotliCompressSync(Buffer.from("x")));
    expectJsonError(put, 415, /Content-Encoding "br" is not accepted/);
    expect(backend.callsTo("writeSessionFile")).toEqual([]);
    // identity is fine.
    await request(app)
      .put(`/v1/sessions/${id}/files/a.txt`)
      .set("Content-Encoding", "identity")
      .send("x")
      .expect(201);
  });
});
