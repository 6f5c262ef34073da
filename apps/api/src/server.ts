/**
 * startServer: createApp + listen + reaper + graceful shutdown. Shutdown never deletes
 * sessions: they live on the backend and must survive an API restart.
 */
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import { pino, type Logger } from "pino";
import type { Backend } from "@code-interpreter/core";
import type { Config } from "./config.js";
import type { FileStore } from "@code-interpreter/files-client";
import { createApp } from "./app.js";
import { clientErrorHandler } from "./http-errors.js";
import { createMetrics, type ApiMetrics } from "./metrics.js";
import { startReaper, type Reaper } from "./reaper.js";

export interface ServerOptions {
  backend: Backend;
  files: FileStore;
  config: Config;
  logger?: Logger;
  metrics?: ApiMetrics;
  /** Override config.host / config.port (e.g. port 0 in tests). */
  host?: string;
  port?: number;
  /** Start the reaper (default true). */
  reaper?: boolean;
  /**
   * After the shutdown timeout cut the remaining connections (which aborts their runs), how
   * long to wait for those backend calls to finish cleaning up before backend.close().
   * Default 10 s.
   */
  abortGraceMs?: number;
}

const TRACKED = new Set<string | symbol>([
  "ping",
  "execute",
  "createSession",
  "getSession",
  "listSessions",
  "countSessions",
  "deleteSession",
  "keepalive",
  "execInSession",
  "writeSessionFile",
  "readSessionFile",
  "listSessionFiles",
] satisfies Array<keyof Backend>);

/** Counts backend calls in progress, so shutdown can wait for them (e.g. container removal). */
class BackendCalls {
  private active = 0;
  private waiters: Array<() => void> = [];

  get count(): number {
    return this.active;
  }

  wrap(backend: Backend): Backend {
    return new Proxy(backend, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== "function" || !TRACKED.has(prop)) return value;
        return async (...args: unknown[]) => {
          this.active += 1;
          try {
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            this.active -= 1;
            if (this.active === 0) this.waiters.splice(0).forEach((w) => w());
          }
        };
      },
    });
  }

  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

function delay(ms: number): { promise: Promise<"timeout">; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

export interface RunningServer {
  server: Server;
  /** http://host:port with the port actually bound. */
  url: string;
  /**
   * Graceful stop: stop accepting connections and reaper passes, let in-flight requests finish
   * (at most config.shutdownTimeoutSeconds, then their sockets are destroyed, which aborts their
   * executions) and a running reaper pass (same deadline), close the backend. Idempotent.
   */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { backend, files, config } = opts;
  const logger = opts.logger ?? pino({ level: config.logLevel });
  const metrics = opts.metrics ?? createMetrics();
  const calls = new BackendCalls();
  const app = createApp({ backend: calls.wrap(backend), files, config, logger, metrics });

  const server = createServer(app);
  server.on("clientError", clientErrorHandler);
  let inFlight = 0;
  let draining = false;
  const idleWaiters: Array<() => void> = [];
  server.on("request", (_req, res) => {
    inFlight += 1;
    if (draining) res.setHeader("Connection", "close");
    res.once("close", () => {
      inFlight -= 1;
      if (inFlight === 0) idleWaiters.splice(0).forEach((w) => w());
    });
  });

  const host = opts.host ?? config.host;
  const port = opts.port ?? config.port;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `http://${shownHost}:${addr.port}`;

  const reaper: Reaper | null =
    opts.reaper === false
      ? null
      : startReaper({
          backend,
          files,
          intervalSeconds: config.sessionReaperIntervalSeconds,
          logger,
          metrics,
        });

  let closing: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    draining = true;
    const deadlineAt = Date.now() + config.shutdownTimeoutSeconds * 1000;
    // No new reaper passes; one already running may finish while requests drain.
    const reaperStopped = reaper ? reaper.stop() : Promise.resolve();
    logger.info({ inFlight }, "shutting down: no new connections, waiting for in-flight requests");
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const idle = new Promise<void>((resolve) => (inFlight === 0 ? resolve() : idleWaiters.push(resolve)));
    const deadline = delay(deadlineAt - Date.now());
    if ((await Promise.race([idle, deadline.promise])) === "timeout") {
      logger.warn({ inFlight }, "shutdown timeout: closing remaining connections");
    }
    deadline.cancel();
    // Everything still open is either idle keep-alive or past the deadline. Cutting a
    // connection aborts its run; give those backend calls a moment to clean up.
    server.closeAllConnections();
    await closed;
    const grace = delay(opts.abortGraceMs ?? 10_000);
    if ((await Promise.race([calls.idle(), grace.promise])) === "timeout") {
      logger.warn({ calls: calls.count }, "backend calls still running at shutdown");
    }
    grace.cancel();
    // A reaper pass over many sessions can take a while: wait for it only until the shutdown
    // timeout. Leaving it is safe (removals are idempotent; the next process reaps again).
    const rest = delay(Math.max(0, deadlineAt - Date.now()));
    if ((await Promise.race([reaperStopped, rest.promise])) === "timeout") {
      logger.warn("a reaper pass is still running at shutdown: not waiting for it");
    }
    rest.cancel();
    await backend.close();
    logger.info("shut down");
  }

  return {
    server,
    url,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
