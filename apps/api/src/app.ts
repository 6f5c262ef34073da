/**
 * createApp: the Express application (HTTP only). Everything it needs comes in: the backend,
 * the file store and the config, so tests and embedders can pass their own.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import express from "express";
import { pino, type Logger } from "pino";
import { pinoHttp } from "pino-http";
import type { Backend } from "@code-interpreter/core";
import type { Config } from "./config.js";
import type { FileStore } from "@code-interpreter/files-client";
import { authMiddleware } from "./auth.js";
import type { Deps } from "./deps.js";
import { docsRouter } from "./docs.js";
import { errorHandler, notFoundHandler } from "./http-errors.js";
import { bindBackend, createMetrics, httpMetricsMiddleware, type ApiMetrics } from "./metrics.js";
import { requestContextMiddleware, requestIdMixin } from "./request-context.js";
import { healthRouter } from "./routes/health.js";
import { mcpEndpoint } from "./mcp/index.js";
import { executeRouter } from "./routes/execute.js";
import { filesRouter } from "./routes/files.js";
import { sessionsRouter } from "./routes/sessions.js";
import { schemas } from "./schemas.js";
import { API_VERSION } from "./version.js";

export interface AppOptions {
  backend: Backend;
  files: FileStore;
  config: Config;
  /** A pino logger; default: pino at config.logLevel, to stdout. */
  logger?: Logger;
  /** Share metrics with the reaper (startServer does); default: a fresh registry. */
  metrics?: ApiMetrics;
  /** What the backend talks to, named by a 503 from /readyz (default: from DOCKER_HOST / the cluster env). */
  backendTarget?: string;
  /** Largest JSON body accepted (default 5 MiB); larger → 413. */
  jsonLimitBytes?: number;
  /** An idle MCP session (`/mcp`) ends after this long (default 30 minutes). */
  mcpIdleTimeoutMs?: number;
}

export const DEFAULT_JSON_LIMIT_BYTES = 5 * 1024 * 1024;

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(opts: AppOptions): express.Express {
  const { backend, files, config } = opts;
  const logger = opts.logger ?? pino({ level: config.logLevel, mixin: requestIdMixin });
  const metrics = opts.metrics ?? createMetrics();
  bindBackend(metrics, backend);
  const deps: Deps = { backend, files, config, logger, metrics, schemas: schemas(config) };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.use(
    pinoHttp({
      logger,
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const given = req.headers["x-request-id"];
        const id = typeof given === "string" && REQUEST_ID_RE.test(given) ? given : randomUUID();
        res.setHeader("X-Request-Id", id);
        return id;
      },
      // Only these fields: never headers (API keys), never bodies.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? "error" : "info"),
    }),
  );
  app.use(requestContextMiddleware());
  app.use(httpMetricsMiddleware(metrics));

  // JSON parser, mounted per route so raw-body routes (PUT session files) never see it. The
  // body is read as JSON whatever the Content-Type says (`curl -d` sends form-urlencoded).
  const json = express.json({
    limit: opts.jsonLimitBytes ?? DEFAULT_JSON_LIMIT_BYTES,
    strict: true,
    type: () => true,
  });

  app.get("/health", async (_req, res) => {
    try {
      await backend.ping();
      res.json({ status: "ok", backend: backend.kind, version: API_VERSION });
    } catch (err) {
      const detail = err instanceof Error ? err.message : "backend did not answer";
      res.status(503).json({ status: "unavailable", backend: backend.kind, version: API_VERSION, detail });
    }
  });

  app.use(healthRouter({ backend, files, target: opts.backendTarget }));

  app.use(authMiddleware(config.apiKeys));

  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  app.use(docsRouter(config));
  app.use("/v1/files", filesRouter(deps));
  app.use("/v1/execute", executeRouter(deps, json));
  app.use("/v1/sessions", sessionsRouter(deps, json));
  app.use(
    "/mcp",
    mcpEndpoint({ logger, jsonLimitBytes: opts.jsonLimitBytes, idleTimeoutMs: opts.mcpIdleTimeoutMs }).router,
  );

  app.use(notFoundHandler);
  app.use(errorHandler({ maxFileBytes: files.maxFileBytes }));
  return app;
}
