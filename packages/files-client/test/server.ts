/**
 * A tiny `/v1/files` server over a FileStore, for the HttpFilesClient tests. It follows the
 * REST contract (API.md): multipart upload in field `file`, JSON `{detail}` errors.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import { isCodeInterpreterError } from "@code-interpreter/core";
import type { FileMeta, FileStore } from "../src/index.js";

export interface TestServer {
  url: string;
  server: Server;
  /** Requests seen, "METHOD /path". */
  requests: string[];
  close(): Promise<void>;
}

const toJson = (m: FileMeta) => ({
  file_id: m.fileId,
  filename: m.filename,
  size_bytes: m.sizeBytes,
  upload_time: m.uploadTime,
});

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function upload(store: FileStore, req: IncomingMessage): Promise<FileMeta> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, defParamCharset: "utf8", limits: { files: 1 } });
    } catch (err) {
      reject(err);
      return;
    }
    let pending: Promise<FileMeta> | null = null;
    bb.on("file", (name, stream, info) => {
      if (name !== "file" || pending) {
        stream.resume();
        return;
      }
      pending = store.put(stream, { filename: info.filename ?? "" });
      // On failure (413) drain the rest so the client gets to read the answer.
      pending.catch(() => stream.resume());
    });
    bb.on("close", () => {
      if (!pending) reject(Object.assign(new Error("field 'file' is missing"), { status: 422 }));
      else pending.then(resolve, reject);
    });
    bb.on("error", reject);
    // A client that goes away mid-upload must not leave the store waiting on a stream that never ends.
    req.on("close", () => {
      if (!req.complete) bb.destroy(new Error("client went away"));
    });
    req.pipe(bb);
  });
}

export async function startServer(store: FileStore, opts: { apiKey?: string } = {}): Promise<TestServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push(`${req.method} ${url.pathname}`);
    void (async () => {
      try {
        if (url.pathname === "/health") return send(res, 200, { status: "ok" });
        if (opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
          return send(res, 401, { detail: "missing or wrong API key" });
        }
        if (url.pathname === "/v1/files" && req.method === "POST") {
          return send(res, 201, toJson(await upload(store, req)));
        }
        if (url.pathname === "/v1/files" && req.method === "GET") {
          return send(res, 200, { files: (await store.list()).map(toJson) });
        }
        const m = /^\/v1\/files\/([^/]+)$/.exec(url.pathname);
        if (m) {
          const id = decodeURIComponent(m[1]!);
          if (req.method === "GET") {
            const { meta, content } = await store.open(id);
            res.writeHead(200, {
              "content-type": "application/octet-stream",
              "content-length": meta.sizeBytes,
              "content-disposition": `attachment; filename="${meta.filename.replace(/"/g, "")}"`,
            });
            // pipeline (not pipe) so the file is closed when the client goes away mid-download.
            await pipeline(content, res).catch(() => undefined);
            return;
          }
          if (req.method === "DELETE") {
            await store.delete(id);
            return send(res, 204);
          }
        }
        send(res, 404, { detail: "not found" });
      } catch (err) {
        req.resume();
        if (isCodeInterpreterError(err)) return send(res, err.status, { detail: err.message });
        const status = (err as { status?: number }).status ?? 500;
        send(res, status, { detail: status === 500 ? "internal error" : (err as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
