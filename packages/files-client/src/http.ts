/**
 * HttpFilesClient: the FileStore interface against any server speaking the `/v1/files` REST
 * contract (this project's API, or the onyx code-interpreter service it is compatible with).
 *
 * Uploads are streamed: the multipart/form-data body is generated on the fly around the
 * caller's stream (one chunk in memory at a time) and sent with chunked transfer encoding.
 * `owner` arguments are ignored: the remote server scopes files by the API key.
 */
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import {
  BackendError,
  BackendUnavailableError,
  CodeInterpreterError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "@code-interpreter/core";
import { newFileId, sanitizeFilename } from "./names.js";
import type { FileMeta, FileStore, PutOptions } from "./types.js";

export interface HttpFilesClientOptions {
  /** Server root, e.g. `http://files:8000` (a path prefix such as `/api` is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /**
   * Client-side size limit in bytes (default: none, the server decides). When set, oversize
   * uploads fail with PayloadTooLargeError without sending (sizeHint) or mid-stream.
   */
  maxFileBytes?: number;
  /** Timeout for the small requests (list, stat, delete, ping); uploads/downloads have none. Default 30 s. */
  requestTimeoutMs?: number;
  /** Clock in unix ms, used for uploadTime when the server does not report one. */
  now?: () => number;
}

/** Ids are opaque to the client, but must be one URL path segment and never `.`/`..`. */
const REMOTE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

interface RemoteFile {
  file_id: string;
  filename: string;
  size_bytes: number;
  upload_time?: number;
}

export class HttpFilesClient implements FileStore {
  readonly maxFileBytes: number;
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(opts: HttpFilesClientOptions) {
    const base = new URL(opts.baseUrl);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.base = base;
    this.apiKey = opts.apiKey || undefined;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.maxFileBytes = opts.maxFileBytes ?? Number.POSITIVE_INFINITY;
    this.timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  async put(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta> {
    const known = Buffer.isBuffer(content) ? content.length : opts.sizeHint;
    if (known !== undefined && known > this.maxFileBytes) throw this.tooLarge();
    const boundary = `----code-interpreter-${newFileId()}`;
    // As in LocalFileStore: a source error before fetch starts reading must not go unhandled.
    const ignoreEarlyError = (): void => undefined;
    if (!Buffer.isBuffer(content)) content.on("error", ignoreEarlyError);
    try {
      const res = await this.request("POST", "v1/files", {
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        body: multipartBody(content, sanitizeFilename(opts.filename), boundary, this.maxFileBytes),
        duplex: "half",
      });
      const f = parseRemoteFile(await this.json(res));
      return this.toMeta(f, this.now() / 1000);
    } finally {
      if (!Buffer.isBuffer(content)) content.off("error", ignoreEarlyError);
    }
  }

  /** Implemented with the listing (`GET /v1/files`): the contract has no metadata-only route. */
  async stat(fileId: string, _owner?: string | null): Promise<FileMeta> {
    checkId(fileId);
    const found = (await this.list()).find((f) => f.fileId === fileId);
    if (!found) throw notFound(fileId);
    return found;
  }

  /** `stat` (for the metadata) then `GET /v1/files/{id}`, whose body is streamed to the caller. */
  async open(fileId: string, owner?: string | null): Promise<{ meta: FileMeta; content: Readable }> {
    const meta = await this.stat(fileId, owner);
    const res = await this.request("GET", `v1/files/${encodeURIComponent(fileId)}`, {}, fileId);
    if (!res.body) return { meta, content: Readable.from([]) };
    return { meta, content: Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>) };
  }

  async list(_owner?: string | null): Promise<FileMeta[]> {
    const res = await this.request("GET", "v1/files", { signal: AbortSignal.timeout(this.timeoutMs) });
    const body = (await this.json(res)) as { files?: unknown };
    if (!Array.isArray(body?.files)) throw new BackendError("file service sent a malformed file list");
    return body.files.map((f) => this.toMeta(parseRemoteFile(f), 0));
  }

  async delete(fileId: string, _owner?: string | null): Promise<void> {
    checkId(fileId);
    const res = await this.request(
      "DELETE",
      `v1/files/${encodeURIComponent(fileId)}`,
      { signal: AbortSignal.timeout(this.timeoutMs) },
      fileId,
    );
    await res.body?.cancel();
  }

  /** The remote server expires its own files. */
  async sweep(_now?: number): Promise<number> {
    return 0;
  }

  /** `GET /health` (falls back to `GET /v1/files` on servers without it). */
  async ping(): Promise<void> {
    let res: Response;
    try {
      res = await this.fetchImpl(new URL("health", this.base), {
        headers: this.headers(),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    await res.body?.cancel();
    if (res.ok) return;
    if (res.status === 404) {
      await this.list();
      return;
    }
    throw new BackendUnavailableError(`file service ${this.base.origin} is unhealthy (HTTP ${res.status})`);
  }

  // ---- internals ----

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { ...extra, authorization: `Bearer ${this.apiKey}` } : extra;
  }

  private tooLarge(): PayloadTooLargeError {
    return new PayloadTooLargeError(`file is larger than the limit of ${this.maxFileBytes} bytes`);
  }

  private unreachable(err: unknown): unknown {
    const own = findOwnError(err);
    if (own) return own;
    const reason = describe(err);
    return new BackendUnavailableError(`file service ${this.base.origin} is unreachable: ${reason}`, {
      cause: err,
    });
  }

  private async request(
    method: string,
    path: string,
    init: RequestInit & { headers?: Record<string, string>; duplex?: "half" },
    fileId?: string,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchImpl(new URL(path, this.base), {
        ...init,
        method,
        headers: this.headers(init.headers),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (res.ok) return res;
    let detail = "";
    try {
      const text = await res.text();
      try {
        const parsed = JSON.parse(text) as { detail?: unknown };
        detail = typeof parsed.detail === "string" ? parsed.detail : "";
      } catch {
        detail = "";
      }
    } catch {
      // body unreadable; the status says enough
    }
    const suffix = detail ? `: ${detail}` : "";
    if (res.status === 404) {
      throw fileId === undefined ? new NotFoundError(detail || `${path} not found`) : notFound(fileId);
    }
    if (res.status === 413)
      throw new PayloadTooLargeError(detail || "file is larger than the server accepts");
    if (res.status === 400 || res.status === 422)
      throw new ValidationError(`file service rejected the request${suffix}`);
    if (res.status === 401 || res.status === 403 || res.status >= 500) {
      throw new BackendUnavailableError(`file service answered HTTP ${res.status}${suffix}`);
    }
    throw new BackendError(`file service answered HTTP ${res.status}${suffix}`);
  }

  private async json(res: Response): Promise<unknown> {
    try {
      return await res.json();
    } catch (err) {
      throw new BackendError("file service sent a malformed response", { cause: err });
    }
  }

  private toMeta(f: RemoteFile, fallbackUploadTime: number): FileMeta {
    return {
      fileId: f.file_id,
      filename: f.filename,
      sizeBytes: f.size_bytes,
      uploadTime: typeof f.upload_time === "number" ? f.upload_time : fallbackUploadTime,
      owner: null,
    };
  }
}

function checkId(fileId: string): void {
  if (typeof fileId !== "string" || !REMOTE_ID_RE.test(fileId)) throw notFound(fileId);
}

function notFound(id: unknown): NotFoundError {
  const s = String(id);
  return new NotFoundError(`file ${JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s)} not found`);
}

function parseRemoteFile(v: unknown): RemoteFile {
  const f = v as Partial<RemoteFile> | null;
  if (!f || typeof f.file_id !== "string" || typeof f.size_bytes !== "number") {
    throw new BackendError("file service sent a malformed file record");
  }
  return {
    file_id: f.file_id,
    filename: typeof f.filename === "string" ? f.filename : "file",
    size_bytes: f.size_bytes,
    ...(typeof f.upload_time === "number" ? { upload_time: f.upload_time } : {}),
  };
}

/** An error of the caller's upload stream, carried through fetch to be rethrown as it was. */
class SourceError extends Error {
  constructor(readonly original: unknown) {
    super("upload source failed");
  }
}

/**
 * The error to rethrow as is, however deep fetch wrapped it: our own (e.g. the size limit
 * hit while streaming) or the caller's stream failing.
 */
function findOwnError(err: unknown): unknown {
  for (let e = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof CodeInterpreterError) return e;
    if (e instanceof SourceError) return e.original;
  }
  return null;
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, i = 0; e && i < 3; e = (e as { cause?: unknown }).cause, i++) {
    const o = e as { code?: unknown; message?: unknown; name?: unknown };
    if (o.name === "TimeoutError") return "request timed out";
    if (typeof o.code === "string") parts.push(o.code);
    else if (typeof o.message === "string" && o.message) parts.push(o.message);
  }
  return parts.join(": ") || "request failed";
}

/**
 * Quotes a multipart parameter value. The name is already sanitised (no backslashes, no
 * control characters), so only `"` needs escaping; a quoted-pair (`\\"`) is what busboy
 * (Express/multer, Fastify) and python-multipart (FastAPI) decode back to `"`.
 */
function quoteParam(value: string): string {
  return value.replace(/"/g, '\\"').replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** The multipart/form-data body (one part, field `file`) generated lazily around the content. */
function multipartBody(
  content: Readable | Buffer,
  filename: string,
  boundary: string,
  limit: number,
): ReadableStream<Uint8Array> {
  const head = Buffer.from(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="file"; filename="${quoteParam(filename)}"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  async function* parts(): AsyncGenerator<Uint8Array> {
    yield head;
    if (Buffer.isBuffer(content)) {
      if (content.length > 0) yield content;
    } else {
      let size = 0;
      // Like LocalFileStore, the caller keeps ownership of the stream: stopping early does not destroy it.
      const chunks = content.iterator({ destroyOnReturn: false });
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          next = await chunks.next();
        } catch (err) {
          throw new SourceError(err);
        }
        if (next.done) break;
        const chunk = next.value;
        const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
        size += buf.length;
        if (size > limit) {
          await chunks.return?.(undefined);
          throw new PayloadTooLargeError(`file is larger than the limit of ${limit} bytes`);
        }
        if (buf.length > 0) yield buf;
      }
    }
    yield tail;
  }
  const it = parts();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await it.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await it.return(undefined);
    },
  });
}
