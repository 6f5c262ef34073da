/**
 * The MCP tools call this server's own REST API over loopback, with the caller's
 * `Authorization` header: validation, ownership, capacity (MAX_SESSIONS), staging, metrics and
 * error mapping are exactly the REST routes', with no second implementation beside them.
 */
import type { Request } from "express";

/** A REST answer that is not 2xx, as `{status, detail}`. */
export class LoopbackError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`${status}: ${detail}`);
  }
}

export interface Loopback {
  /** JSON in, JSON (or nothing, for 204) out; non-2xx → LoopbackError. */
  json(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown>;
  /** Raw bytes in (PUT) → JSON out. */
  put(path: string, bytes: Uint8Array, signal?: AbortSignal): Promise<unknown>;
  /** Raw bytes out (GET). */
  bytes(path: string, signal?: AbortSignal): Promise<Uint8Array>;
}

/** The address the request came in on: this server, reachable from itself. */
export function loopbackBaseUrl(req: Request): string {
  const address = req.socket.localAddress ?? "127.0.0.1";
  const host = address.includes(":") ? `[${address}]` : address;
  return `http://${host}:${req.socket.localPort}`;
}

async function failure(res: Response): Promise<LoopbackError> {
  const text = await res.text().catch(() => "");
  let detail = res.statusText || `HTTP ${res.status}`;
  try {
    const parsed = JSON.parse(text) as { detail?: unknown };
    if (typeof parsed.detail === "string") detail = parsed.detail;
  } catch {
    // not JSON: keep the status text
  }
  return new LoopbackError(res.status, detail);
}

export function createLoopback(baseUrl: string, headers: Record<string, string>): Loopback {
  async function call(method: string, path: string, init: RequestInit): Promise<Response> {
    const res = await fetch(baseUrl + path, {
      ...init,
      method,
      headers: { ...headers, ...(init.headers as Record<string, string> | undefined) },
    });
    if (!res.ok) throw await failure(res);
    return res;
  }
  return {
    async json(method, path, body, signal) {
      const res = await call(method, path, {
        ...(body === undefined
          ? {}
          : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
        ...(signal ? { signal } : {}),
      });
      if (res.status === 204) return undefined;
      return (await res.json()) as unknown;
    },
    async put(path, bytes, signal) {
      const res = await call("PUT", path, {
        body: bytes,
        headers: { "content-type": "application/octet-stream" },
        ...(signal ? { signal } : {}),
      });
      return (await res.json()) as unknown;
    },
    async bytes(path, signal) {
      const res = await call("GET", path, signal ? { signal } : {});
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}
