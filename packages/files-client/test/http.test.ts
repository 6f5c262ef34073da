import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  BackendUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "@code-interpreter/core";
import { HttpFilesClient, LocalFileStore } from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

const LIMIT = 256 * 1024;
let root: string;
let local: LocalFileStore;
let srv: TestServer;
let client: HttpFilesClient;

function chunked(data: Buffer, size = 16 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks, { objectMode: false });
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "files-client-http-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  local = new LocalFileStore({
    dir: join(root, randomBytes(4).toString("hex")),
    maxFileBytes: LIMIT,
    ttlSeconds: 60,
  });
  srv = await startServer(local, { apiKey: "k1" });
  client = new HttpFilesClient({ baseUrl: srv.url, apiKey: "k1" });
});
afterEach(async () => {
  await srv.close();
});

describe("HttpFilesClient round trips", () => {
  it.each([
    ["random binary (stream)", LIMIT - 1000, true],
    ["random binary (buffer)", 100_000, false],
    ["0 bytes", 0, true],
    ["exactly the server's limit", LIMIT, true],
  ])("%s", async (_name, size, asStream) => {
    const data = randomBytes(size);
    const meta = await client.put(asStream ? chunked(data) : data, {
      filename: "data.bin",
      owner: "ignored",
    });
    expect(meta).toMatchObject({ filename: "data.bin", sizeBytes: size, owner: null });
    expect(meta.uploadTime).toBeGreaterThan(1_600_000_000);
    // The server really has the bytes.
    expect((await readAll((await local.open(meta.fileId)).content)).equals(data)).toBe(true);
    const { meta: m2, content } = await client.open(meta.fileId);
    expect(m2).toEqual(meta);
    expect((await readAll(content)).equals(data)).toBe(true);
  });

  it("sends unicode and awkward filenames intact", async () => {
    for (const name of ["日本語 файл 😀.txt", 'quote"d.txt', "semi;colon=eq.txt"]) {
      const meta = await client.put(Buffer.from("x"), { filename: name });
      expect(meta.filename).toBe(name);
    }
  });

  it("strips path separators and control characters before sending", async () => {
    const meta = await client.put(Buffer.from("x"), { filename: "../a\r\nb/c" });
    expect(meta.filename).toBe(".._ab_c");
  });

  it("list, stat and delete", async () => {
    const a = await client.put(Buffer.from("aaa"), { filename: "a.txt" });
    const b = await client.put(Buffer.from("bb"), { filename: "b.txt" });
    const listed = await client.list("whoever");
    expect(listed.map((f) => f.fileId).sort()).toEqual([a.fileId, b.fileId].sort());
    expect(await client.stat(a.fileId)).toEqual(a);
    await client.delete(a.fileId);
    await expect(client.stat(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.open(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.delete(a.fileId)).rejects.toBeInstanceOf(NotFoundError);
    expect((await client.list()).map((f) => f.fileId)).toEqual([b.fileId]);
  });

  it("a source stream error fails the upload and stores nothing", async () => {
    async function* broken() {
      yield Buffer.alloc(1000);
      throw new Error("source broke");
    }
    await expect(client.put(Readable.from(broken()), { filename: "x" })).rejects.toThrow(/^source broke$/);
    const early = new PassThrough();
    const p = client.put(early, { filename: "y" });
    early.destroy(new Error("gone before reading"));
    await expect(p).rejects.toThrow(/^gone before reading$/);
    expect(await local.list()).toEqual([]);
  });

  it("sweep is a no-op", async () => {
    expect(await client.sweep()).toBe(0);
    expect(srv.requests).toEqual([]);
  });

  it("ping uses /health", async () => {
    await client.ping();
    expect(srv.requests).toEqual(["GET /health"]);
  });

  it("a base URL with a path prefix is kept", async () => {
    let seen = "";
    const c = new HttpFilesClient({
      baseUrl: "http://files.example/api",
      fetch: async (input) => {
        seen = String(input);
        return new Response(JSON.stringify({ files: [] }), { status: 200 });
      },
    });
    await c.list();
    expect(seen).toBe("http://files.example/api/v1/files");
  });
});

describe("HttpFilesClient error mapping", () => {
  it("404 → NotFoundError", async () => {
    await expect(client.open("0".repeat(32))).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.delete("0".repeat(32))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("ids that are not one safe path segment → NotFoundError without a request", async () => {
    for (const id of ["..", ".", "../v1/files", "a/b", "", "a\0b", "x".repeat(200)]) {
      await expect(client.stat(id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(client.open(id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(client.delete(id)).rejects.toBeInstanceOf(NotFoundError);
    }
    expect(srv.requests).toEqual([]);
  });

  it("413 from the server → PayloadTooLargeError, nothing stored", async () => {
    const src = chunked(randomBytes(LIMIT + 1));
    await expect(client.put(src, { filename: "big" })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await local.list()).toEqual([]);
    // A larger body the server stops reading midway.
    await expect(client.put(chunked(randomBytes(4 * LIMIT)), { filename: "bigger" })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await local.list()).toEqual([]);
  });

  it("a client-side limit stops before or while sending", async () => {
    const c = new HttpFilesClient({ baseUrl: srv.url, apiKey: "k1", maxFileBytes: 1000 });
    await expect(c.put(Buffer.alloc(1001), { filename: "x" })).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(c.put(chunked(Buffer.alloc(10)), { filename: "x", sizeHint: 5000 })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(srv.requests).toEqual([]);
    await expect(c.put(chunked(Buffer.alloc(5000), 100), { filename: "x" })).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    expect(await local.list()).toEqual([]);
    expect((await c.put(Buffer.alloc(1000), { filename: "x" })).sizeBytes).toBe(1000);
  });

  it("a wrong API key → BackendUnavailableError naming the status", async () => {
    const c = new HttpFilesClient({ baseUrl: srv.url, apiKey: "wrong" });
    await expect(c.list()).rejects.toThrow(BackendUnavailableError);
    await expect(c.list()).rejects.toThrow(/401/);
  });

  it("422 → ValidationError (upload without a `file` field)", async () => {
    const c = new HttpFilesClient({
      baseUrl: srv.url,
      apiKey: "k1",
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          body: "--b\r\nContent-Disposition: form-data; name=other\r\n\r\nx\r\n--b--\r\n",
          headers: {
            ...(init?.headers as Record<string, string>),
            "content-type": "multipart/form-data; boundary=b",
          },
        }),
    });
    await expect(c.put(Buffer.from("x"), { filename: "x" })).rejects.toBeInstanceOf(ValidationError);
  });

  it("an unreachable port → BackendUnavailableError", async () => {
    const c = new HttpFilesClient({ baseUrl: `http://127.0.0.1:${await deadPort()}` });
    await expect(c.list()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(c.stat("0".repeat(32))).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(c.open("0".repeat(32))).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(c.delete("0".repeat(32))).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(c.put(chunked(Buffer.alloc(100)), { filename: "x" })).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    await expect(c.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it("5xx → BackendUnavailableError with the server's detail", async () => {
    const s = createServer((_req, res) => {
      res.writeHead(503, { "content-type": "application/json" }).end('{"detail":"disk full"}');
    });
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    try {
      const c = new HttpFilesClient({ baseUrl: `http://127.0.0.1:${(s.address() as AddressInfo).port}` });
      await expect(c.list()).rejects.toThrow(BackendUnavailableError);
      await expect(c.list()).rejects.toThrow(/503: disk full/);
      await expect(c.put(Buffer.from("x"), { filename: "x" })).rejects.toThrow(BackendUnavailableError);
      await expect(c.ping()).rejects.toThrow(BackendUnavailableError);
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it("a server that never answers times out small requests → BackendUnavailableError", async () => {
    const s = createServer(() => undefined);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    try {
      const c = new HttpFilesClient({
        baseUrl: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
        requestTimeoutMs: 200,
      });
      await expect(c.list()).rejects.toThrow(/timed out/);
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
