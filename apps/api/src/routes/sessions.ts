/** /v1/sessions: long-lived executors with a persistent /workspace. */
import { Router, type Request, type RequestHandler } from "express";
import {
  SessionNotFoundError,
  assertSafeWorkspacePath,
  isSessionId,
  resolveTtlSeconds,
  validateMetadata,
  PayloadTooLargeError,
  type Backend,
  type ExecRequest,
  type Scope,
} from "@code-interpreter/core";
import { SessionSlots } from "../capacity.js";
import { contextOf, disconnectSignal, scopeOf } from "../context.js";
import { requireCapability, type Deps } from "../deps.js";
import { LengthRequiredError } from "../http-errors.js";
import { observeExecution } from "../metrics.js";
import { parseBody } from "../schemas.js";
import { contentDisposition, execJson, sessionJson, workspaceEntryJson } from "../serialize.js";
import { resolveStagedFiles, storeCollector } from "../staging.js";
import { sendStream } from "../streams.js";

/** 404 without any backend call for anything that is not `code-session-<uuid v4>`. */
const checkSessionId: RequestHandler = (req, _res, next) => {
  const id = req.params.id;
  if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
  next();
};

function sessionId(req: Request): string {
  return req.params.id as string;
}

/** Express 5 `*path` wildcard → "a/b/c". */
function wildcardPath(req: Request): string {
  const raw = (req.params as Record<string, string | string[] | undefined>).path;
  return Array.isArray(raw) ? raw.join("/") : (raw ?? "");
}

/** Optional on a backend: a cheaper count than listSessions (Docker reads no state for it). */
interface SessionCounter {
  countSessions(scope?: Scope): Promise<number>;
}

async function countSessions(backend: Backend, scope: Scope): Promise<number> {
  const counter = (backend as Partial<SessionCounter>).countSessions;
  if (typeof counter === "function") return counter.call(backend, scope);
  return (await backend.listSessions(scope)).length;
}

export function sessionsRouter(deps: Deps, json: RequestHandler): Router {
  const { backend, files, config, metrics, schemas } = deps;
  const router = Router();
  const slots = new SessionSlots(config.maxSessions);
  const keysConfigured = config.apiKeys.length > 0;
  const cap = (c: Parameters<typeof requireCapability>[1]) => requireCapability(backend, c);

  router.post("/", cap("sessions"), json, async (req, res) => {
    const body = parseBody(schemas.createSession, req.body);
    const ttlSeconds = resolveTtlSeconds(body.ttl_seconds, config.sessionMaxLifetimeSeconds);
    const metadata = validateMetadata(body.metadata);
    const { owner } = contextOf(req);
    const staged = await resolveStagedFiles(files, body.files, owner);

    // Per owner when keys are configured, else one global limit.
    const key = keysConfigured ? `owner:${owner ?? ""}` : "*";
    const release = await slots.admit(key, () => countSessions(backend, keysConfigured ? { owner } : {}));
    try {
      const session = await backend.createSession({
        files: staged,
        ttlSeconds,
        idleTimeoutSeconds: body.idle_timeout_seconds ?? null,
        metadata,
        owner,
      });
      metrics.sessionsCreated.inc();
      res.status(201).json(sessionJson(session));
    } finally {
      release();
    }
  });

  router.get("/", cap("sessions"), async (req, res) => {
    const sessions = await backend.listSessions(scopeOf(req));
    sessions.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    res.json({ sessions: sessions.map(sessionJson) });
  });

  router.get("/:id", cap("sessions"), checkSessionId, async (req, res) => {
    res.json(sessionJson(await backend.getSession(sessionId(req), scopeOf(req))));
  });

  router.delete("/:id", cap("sessions"), checkSessionId, async (req, res) => {
    await backend.deleteSession(sessionId(req), scopeOf(req));
    metrics.sessionsDeleted.inc();
    res.status(204).end();
  });

  router.post("/:id/keepalive", cap("keepalive"), checkSessionId, json, async (req, res) => {
    const body = parseBody(schemas.keepalive, req.body);
    const ttl = resolveTtlSeconds(body.ttl_seconds, config.sessionMaxLifetimeSeconds);
    res.json(sessionJson(await backend.keepalive(sessionId(req), ttl, scopeOf(req))));
  });

  router.post("/:id/execute", cap("sessionExec"), checkSessionId, json, async (req, res) => {
    const body = parseBody(schemas.sessionExecute, req.body);
    const signal = disconnectSignal(req, res);
    const execReq: ExecRequest = {
      language: "python",
      code: body.code,
      stdin: body.stdin ?? null,
      timeoutMs: body.timeout_ms ?? config.defaultExecTimeoutMs,
      lastLineInteractive: body.last_line_interactive ?? true,
      maxOutputBytes: config.maxOutputBytes,
      signal,
      collectFiles: storeCollector(files, contextOf(req).owner),
    };
    const result = await observeExecution(metrics, "session_execute", signal, () =>
      backend.execInSession(sessionId(req), execReq, scopeOf(req)),
    );
    res.json(execJson(result));
  });

  router.post("/:id/bash", cap("sessionExec"), checkSessionId, json, async (req, res) => {
    const body = parseBody(schemas.bash, req.body);
    const signal = disconnectSignal(req, res);
    const execReq: ExecRequest = {
      language: "bash",
      code: body.cmd,
      stdin: body.stdin ?? null,
      timeoutMs: body.timeout_ms ?? config.defaultExecTimeoutMs,
      maxOutputBytes: config.maxOutputBytes,
      signal,
    };
    const result = await observeExecution(metrics, "session_bash", signal, () =>
      backend.execInSession(sessionId(req), execReq, scopeOf(req)),
    );
    res.json(execJson(result));
  });

  router.get("/:id/files", cap("sessionFiles"), checkSessionId, async (req, res) => {
    const entries = await backend.listSessionFiles(sessionId(req), scopeOf(req));
    res.json({ files: entries.map(workspaceEntryJson) });
  });

  router.put("/:id/files/*path", cap("sessionFiles"), checkSessionId, async (req, res) => {
    const path = assertSafeWorkspacePath(wildcardPath(req), "path");
    const lengthHeader = req.headers["content-length"];
    if (lengthHeader === undefined) {
      throw new LengthRequiredError(
        "Content-Length is required for a file upload (send the raw bytes as the body)",
      );
    }
    const size = Number(lengthHeader);
    if (size > config.maxFileSizeBytes) {
      throw new PayloadTooLargeError(
        `file is larger than the limit of ${config.maxFileSizeBytes} bytes (MAX_FILE_SIZE_MB)`,
      );
    }
    const entry = await backend.writeSessionFile(sessionId(req), path, { size, content: req }, scopeOf(req));
    res.status(201).json({ path: entry.path, size_bytes: entry.sizeBytes });
  });

  router.get("/:id/files/*path", cap("sessionFiles"), checkSessionId, async (req, res) => {
    const path = assertSafeWorkspacePath(wildcardPath(req), "path");
    const file = await backend.readSessionFile(sessionId(req), path, scopeOf(req));
    const name = path.slice(path.lastIndexOf("/") + 1);
    await sendStream(res, file.content, { size: file.sizeBytes, disposition: contentDisposition(name) });
  });

  return router;
}
