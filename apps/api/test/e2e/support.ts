/**
 * Platform-neutral pieces for the end-to-end runs: a file store wrapper that can be told to
 * fail, the in-process HTTP server on 127.0.0.1:0, and test data (a real PNG).
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { deflateSync } from "node:zlib";
import { setTimeout as sleep } from "node:timers/promises";
import Dockerode from "dockerode";
import { pino } from "pino";
import type { Backend } from "@code-interpreter/core";
import type { Config } from "../../src/config.js";
import type { FileMeta, FileStore, PutOptions } from "@code-interpreter/files-client";
import { clientErrorHandler, createApp } from "../../src/index.js";

/**
 * Delegates to a real store; `open()` fails for the file ids given to `failOpen`, as a disk or
 * object-store read error would. stat() still answers, so the API accepts the request and the
 * failure happens while the backend stages the file into a live container/pod.
 */
export class FaultyFileStore implements FileStore {
  private readonly failing = new Set<string>();

  constructor(private readonly inner: FileStore) {}

  get maxFileBytes(): number {
    return this.inner.maxFileBytes;
  }

  failOpen(fileId: string): void {
    this.failing.add(fileId);
  }

  put(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta> {
    return this.inner.put(content, opts);
  }

  stat(fileId: string, owner?: string | null): Promise<FileMeta> {
    return this.inner.stat(fileId, owner);
  }

  async open(fileId: string, owner?: string | null): Promise<{ meta: FileMeta; content: Readable }> {
    if (this.failing.has(fileId)) {
      throw Object.assign(new Error(`EIO: i/o error, open file ${fileId} (injected by the e2e test)`), {
        code: "EIO",
      });
    }
    return this.inner.open(fileId, owner);
  }

  list(owner?: string | null): Promise<FileMeta[]> {
    return this.inner.list(owner);
  }

  delete(fileId: string, owner?: string | null): Promise<void> {
    return this.inner.delete(fileId, owner);
  }

  sweep(now?: number): Promise<number> {
    return this.inner.sweep(now);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }
}

/** Fails (never skips) when no Docker engine answers, saying how to get one. */
export async function requireDockerEngine(): Promise<void> {
  await new Dockerode().ping().catch((err: unknown) => {
    throw new Error(`no Docker engine answers (${String(err)}): run \`pnpm run setup\` first`);
  });
}

/** The environment every e2e run's API gets (small limits so the heavy tests are quick). */
export const E2E_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: "silent",
  EXECUTOR_IMAGE: process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest",
  MAX_OUTPUT_BYTES: "100000",
  MAX_EXEC_TIMEOUT_MS: "30000",
  DEFAULT_EXEC_TIMEOUT_MS: "10000",
  MAX_FILE_SIZE_MB: "10",
  SESSION_MAX_LIFETIME_SECONDS: "600",
  MEMORY_LIMIT_MB: "128",
  CPU_TIME_LIMIT_SEC: "20",
  // MAX_SESSIONS counts every session on the engine (other suites too): keep it out of the way.
  MAX_SESSIONS: "10000",
  // These suites count and inspect containers: no warm pool (its own tests: warm-pool.e2e.test.ts).
  WARM_POOL_SIZE: "0",
};

export interface RunningHttp {
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * createApp on a plain node:http server listening on 127.0.0.1, port 0. close() stops the
 * server, then closes the backend (each run builds its backend for exactly one server).
 */
export async function listenApp(opts: {
  backend: Backend;
  files: FileStore;
  config: Config;
}): Promise<RunningHttp> {
  const app = createApp({ ...opts, logger: pino({ level: process.env.E2E_LOG_LEVEL ?? "silent" }) });
  const server: Server = createServer(app);
  server.on("clientError", clientErrorHandler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await opts.backend.close();
    },
  };
}

// ------------------------------------------------------------------ a real PNG

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A valid RGB PNG (signature, IHDR, zlib IDAT, IEND, correct CRCs) with a gradient, so the
 * bytes cover the whole 0..255 range, including \r, \n and NUL.
 */
export function makePng(width = 64, height = 48): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter
  ihdr[12] = 0; // interlace
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 3);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const p = row + 1 + x * 3;
      raw[p] = (x * 4) & 0xff;
      raw[p + 1] = (y * 5) & 0xff;
      raw[p + 2] = (x * y) & 0xff;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown> & { detail?: string };
}

/** Calls the API at `path`; JSON bodies are parsed, anything else comes back as `{ text }`. */
export type ApiClient = (
  path: string,
  init?: { method?: string; json?: unknown; body?: Buffer },
) => Promise<ApiAnswer>;

/** A small fetch-based client of a running API (POST when a body is given, else GET). */
export function apiClient(baseUrl: string): ApiClient {
  return async (path, init = {}) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method: init.method ?? (init.json !== undefined || init.body ? "POST" : "GET"),
      headers: init.json !== undefined ? { "content-type": "application/json" } : {},
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
    });
    const text = await res.text();
    const json = (res.headers.get("content-type") ?? "").includes("application/json");
    return {
      status: res.status,
      body: json && text ? (JSON.parse(text) as ApiAnswer["body"]) : { text },
    };
  };
}

/** One series of the API's /metrics (0 when absent). */
export async function metricValue(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits until the API's warm pool gauge reaches `n`. */
export async function waitForPoolSize(baseUrl: string, n: number, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while ((await metricValue(baseUrl, "code_interpreter_warm_pool_size")) < n) {
    if (Date.now() > until) throw new Error(`the pool did not reach ${n}`);
    await sleep(100);
  }
}
