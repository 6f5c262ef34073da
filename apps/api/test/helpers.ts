/** Test doubles and helpers for the route tests: an in-memory FileStore and app factory. */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pino } from "pino";
import type { Test } from "supertest";
import { NotFoundError, PayloadTooLargeError } from "@code-interpreter/core";
import { loadConfig, type Config } from "../src/config.js";
import { InMemoryBackend, type InMemoryBackendOptions } from "@code-interpreter/core/testing";
import type { FileMeta, FileStore, PutOptions } from "@code-interpreter/files-client";
import { createApp } from "../src/index.js";

interface StoredFile {
  meta: FileMeta;
  bytes: Buffer;
}

export class MemoryFileStore implements FileStore {
  readonly files = new Map<string, StoredFile>();
  /** How many put() calls happened (including failed ones). */
  puts = 0;
  sweeps = 0;

  constructor(
    readonly maxFileBytes = 1024,
    private readonly ttlSeconds = 3600,
    private readonly now: () => number = Date.now,
  ) {}

  async put(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta> {
    this.puts += 1;
    if (opts.sizeHint !== undefined && opts.sizeHint > this.maxFileBytes) {
      throw new PayloadTooLargeError(`file is larger than ${this.maxFileBytes} bytes`);
    }
    let bytes: Buffer;
    if (Buffer.isBuffer(content)) {
      bytes = content;
    } else {
      const parts: Buffer[] = [];
      let n = 0;
      for await (const chunk of content) {
        const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
        n += b.length;
        if (n > this.maxFileBytes) {
          content.destroy();
          throw new PayloadTooLargeError(`file is larger than ${this.maxFileBytes} bytes`);
        }
        parts.push(b);
      }
      bytes = Buffer.concat(parts);
    }
    if (bytes.length > this.maxFileBytes)
      throw new PayloadTooLargeError(`file is larger than ${this.maxFileBytes} bytes`);
    const meta: FileMeta = {
      fileId: randomBytes(16).toString("hex"),
      filename: opts.filename.replace(/[/\\]/g, "_") || "file",
      sizeBytes: bytes.length,
      uploadTime: this.now() / 1000,
      owner: opts.owner ?? null,
    };
    this.files.set(meta.fileId, { meta, bytes });
    return { ...meta };
  }

  private get(fileId: string, owner?: string | null): StoredFile {
    const f = this.files.get(fileId);
    if (!f || (owner !== undefined && f.meta.owner !== owner)) {
      throw new NotFoundError(`file ${JSON.stringify(fileId)} not found`);
    }
    return f;
  }

  async stat(fileId: string, owner?: string | null): Promise<FileMeta> {
    return { ...this.get(fileId, owner).meta };
  }

  async open(fileId: string, owner?: string | null): Promise<{ meta: FileMeta; content: Readable }> {
    const f = this.get(fileId, owner);
    return { meta: { ...f.meta }, content: Readable.from([f.bytes]) };
  }

  async list(owner?: string | null): Promise<FileMeta[]> {
    return [...this.files.values()]
      .filter((f) => owner === undefined || f.meta.owner === owner)
      .map((f) => ({ ...f.meta }));
  }

  async delete(fileId: string, owner?: string | null): Promise<void> {
    this.get(fileId, owner);
    this.files.delete(fileId);
  }

  async sweep(now = this.now()): Promise<number> {
    this.sweeps += 1;
    let n = 0;
    for (const [id, f] of this.files) {
      if (f.meta.uploadTime * 1000 + this.ttlSeconds * 1000 <= now) {
        this.files.delete(id);
        n += 1;
      }
    }
    return n;
  }

  async ping(): Promise<void> {}

  /** Test helper: store bytes directly. */
  async add(bytes: Buffer | string, filename = "f.bin", owner: string | null = null): Promise<string> {
    const meta = await this.put(Buffer.from(bytes), { filename, owner });
    return meta.fileId;
  }
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: "silent", MAX_FILE_SIZE_MB: String(1024 / (1024 * 1024)), ...env });
}

export interface Harness {
  app: ReturnType<typeof createApp>;
  backend: InMemoryBackend;
  files: MemoryFileStore;
  config: Config;
}

export function makeApp(
  opts: { env?: Record<string, string>; backend?: InMemoryBackendOptions; maxFileBytes?: number } = {},
): Harness {
  const config = testConfig(opts.env);
  const backend = new InMemoryBackend({
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    ...opts.backend,
  });
  const files = new MemoryFileStore(opts.maxFileBytes ?? 1024);
  const app = createApp({ backend, files, config, logger: pino({ level: "silent" }) });
  return { app, backend, files, config };
}

/** A session time (unix seconds, possibly fractional) as integer milliseconds. */
export const msOf = (seconds: number): number => Math.round(seconds * 1000);

/** Parses a raw text/event-stream body into events (event name + parsed JSON data). */
export function parseSse(text: string): Array<{ event: string; data: unknown; id?: string }> {
  const events: Array<{ event: string; data: unknown; id?: string }> = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join("\n")), id });
  }
  return events;
}

type ParseFn = Parameters<Test["parse"]>[0];

/** supertest parser: the raw response body as a Buffer, whatever its content type. */
export const binaryParser = ((res: NodeJS.ReadableStream, cb: (err: Error | null, body: Buffer) => void) => {
  const parts: Buffer[] = [];
  res.on("data", (c: Buffer) => parts.push(c));
  res.on("end", () => cb(null, Buffer.concat(parts)));
}) as unknown as ParseFn;

/** supertest parser: the raw response body as text (e.g. an event stream). */
export const textParser = ((res: NodeJS.ReadableStream, cb: (err: Error | null, body: string) => void) => {
  let s = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => (s += c));
  res.on("end", () => cb(null, s));
}) as unknown as ParseFn;
