/** /v1/sessions: long-lived executors with a persistent /workspace. */
import { PassThrough } from "node:stream";
import { Router, type Request, type RequestHandler } from "express";
import {
  NotFoundError,
  SessionNotFoundError,
  assertSafeWorkspacePath,
  isSessionId,
  resolveTtlSeconds,
  validateMetadata,
  PayloadTooLargeError,
  type ExecRequest,
} from "@code-interpreter/core";
import { SessionSlots } from "../capacity.js";
import { contextOf, disconnectSignal, scopeOf } from "../context.js";
import { requireCapability, type Deps } from "../deps.js";
import { identityEncodingOnly } from "../encoding.js";
import { LengthRequiredError } from "../http-errors.js";
import { observeExecution } from "../metrics.js";
import { pageJson, paginate } from "../pagination.js";
import { listQuery, parseBody } from "../schemas.js";
import { contentDisposition, execJson, sessionJson, workspaceEntryJson } from "../serialize.js";
import { resolveStagedFiles, storeCollector } from "../staging.js";
import { streamExecution } from "../sse.js";
import { sendStream } from "../streams.js";

function sessionId(req: Request): string {
  return req.params.id as string;
}

/** Express 5 `*path` wildcard → "a/b/c". */
function wildcardPath(req: Request): string {
  const raw = (req.params as Record<string, string | string[] | undefined>).path;
  return Array.isArray(raw) ? raw.join("/") : (raw ?? "");
}

export function sessionsRouter(deps: Deps, json: RequestHandler): Router {
  const { backend, files, config, metrics, schemas } = deps;
  const router = Router();
  const slots = new SessionSlots(config.maxSessions);
  const keysConfigured = config.apiKeys.length > 0;
  const cap = (c: Parameters<typeof requireCapability>[1]) => requireCapability(backend, c);

  // Once per request, for every route with `:id`: 404 without any backend call for anything
  // that is not `code-session-<uuid v4>`. Param handlers run after the route's path matched
  // and before its handlers.
  router.param("id", (_req, _res, next, id: unknown) => {
    // Without sessions every route answers 501 (its capability check), whatever the id.
    if (backend.capabilities.sessions && !isSessionId(id)) throw new SessionNotFoundError(String(id));
    next();
  });

  router.post("/", cap("sessions"), json, async (req, res) => {
    const body = parseBody(schemas.createSession, req.body);
    const ttlSeconds = resolveTtlSeconds(body.ttl_seconds, config.sessionMaxLifetimeSeconds);
    const metadata = validateMetadata(body.metadata);
    const { owner } = contextOf(req);
    const staged = await resolveStagedFiles(files, body.files, owner);

    // Per owner when keys are configured, else one global limit.
    const key = keysConfigured ? `owner:${owner ?? ""}` : "*";
    const release = await slots.admit(key, () => backend.countSessions(keysConfigured ? { owner } : {}));
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
    const query = listQuery.parse(req.query);
    const page = paginate(await backend.listSessions(scopeOf(req)), (s) => [s.createdAt, s.id], query);
    res.json(pageJson("sessions", { ...page, items: page.items.map(sessionJson) }));
  });

  router.get("/:id", cap("sessions"), async (req, res) => {
    res.json(sessionJson(await backend.getSession(sessionId(req), scopeOf(req))));
  });

  router.delete("/:id", cap("sessions"), async (req, res) => {
    await backend.deleteSession(sessionId(req), scopeOf(req));
    metrics.sessionsDeleted.inc();
    res.status(204).end();
  });

  router.post("/:id/keepalive", cap("keepalive"), json, async (req, res) => {
    const body = parseBody(schemas.keepalive, req.body);
    const ttl = resolveTtlSeconds(body.ttl_seconds, config.sessionMaxLifetimeSeconds);
    res.json(sessionJson(await backend.keepalive(sessionId(req), ttl, scopeOf(req))));
  });

  /** The ExecRequest of a session execute / bash call; validation errors are thrown before any backend call. */
  function sessionExecRequest(req: Request, language: "python" | "bash", signal: AbortSignal): ExecRequest {
    if (language === "bash") {
      const body = parseBody(schemas.bash, req.body);
      return {
        language: "bash",
        code: body.cmd,
        stdin: body.stdin ?? null,
        timeoutMs: body.timeout_ms ?? config.defaultExecTimeoutMs,
        maxOutputBytes: config.maxOutputBytes,
        signal,
      };
    }
    const body = parseBody(schemas.sessionExecute, req.body);
    return {
      language: "python",
      code: body.code,
      stdin: body.stdin ?? null,
      timeoutMs: body.timeout_ms ?? config.defaultExecTimeoutMs,
      lastLineInteractive: body.last_line_interactive ?? true,
      maxOutputBytes: config.maxOutputBytes,
      signal,
      collectFiles: storeCollector(files, contextOf(req).owner),
      resetState: body.reset === true,
    };
  }

  for (const [path, language, route] of [
    ["/:id/execute", "python", "session_execute"],
    ["/:id/bash", "bash", "session_bash"],
  ] as const) {
    router.post(path, cap("sessionExec"), json, async (req, res) => {
      const signal = disconnectSignal(req, res);
      const execReq = sessionExecRequest(req, language, signal);
      const result = await observeExecution(metrics, route, signal, () =>
        backend.execInSession(sessionId(req), execReq, scopeOf(req)),
      );
      res.json(execJson(result));
    });

    // The same, answered as SSE (metrics count it under the same route label).
    router.post(`${path}/stream`, cap("sessionExec"), json, async (req, res) => {
      const signal = disconnectSignal(req, res);
      const execReq = sessionExecRequest(req, language, signal);
      // An unknown, foreign or expired session is a JSON 404, not an error event.
      await backend.getSession(sessionId(req), scopeOf(req));
      await streamExecution(req, res, signal, execReq, (r) =>
        observeExecution(metrics, route, signal, () =>
          backend.execInSession(sessionId(req), r, scopeOf(req)),
        ),
      );
    });
  }

  router.get("/:id/files", cap("sessionFiles"), async (req, res) => {
    const query = listQuery.parse(req.query);
    const entries = await backend.listSessionFiles(sessionId(req), scopeOf(req));
    const page = paginate(entries, (e) => [0, e.path], query);
    res.json(pageJson("files", { ...page, items: page.items.map(workspaceEntryJson) }));
  });

  // Copies a stored file (POST /v1/files) into the workspace, streamed from the store.
  router.post("/:id/files", cap("sessionFiles"), json, async (req, res) => {
    const body = parseBody(schemas.copyFile, req.body);
    const path = assertSafeWorkspacePath(body.path, "path");
    const { owner } = contextOf(req);
    let opened: Awaited<ReturnType<typeof files.open>>;
    try {
      opened = await files.open(body.file_id, owner);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`file_id ${JSON.stringify(body.file_id)} not found`, { cause: err });
      }
      throw err;
    }
    const { meta, content } = opened;
    try {
      const entry = await backend.writeSessionFile(
        sessionId(req),
        path,
        { size: meta.sizeBytes, content },
        scopeOf(req),
      );
      res.status(201).json({ path: entry.path, size_bytes: entry.sizeBytes });
    } finally {
      content.destroy();
    }
  });

  router.put("/:id/files/*path", cap("sessionFiles"), identityEncodingOnly, async (req, res) => {
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
    // The backend may refuse the write before it has read the whole body (a symlinked
    // directory, a full workspace) and then destroys the stream it was given: hand it a pipe,
    // not the request, and drain what the client still sends, so the client gets the 4xx
    // answer instead of a reset connection. A client that goes away fails the write.
    const content = new PassThrough();
    const onClose = () => {
      if (!req.complete) content.destroy(new Error("the client closed the upload before its end"));
    };
    req.once("close", onClose);
    req.pipe(content);
    try {
      const entry = await backend.writeSessionFile(sessionId(req), path, { size, content }, scopeOf(req));
      res.status(201).json({ path: entry.path, size_bytes: entry.sizeBytes });
    } catch (err) {
      req.unpipe(content);
      content.destroy();
      if (!req.complete && !req.destroyed) req.resume();
      throw err;
    } finally {
      req.off("close", onClose);
    }
  });

  router.get("/:id/files/*path", cap("sessionFiles"), async (req, res) => {
    const path = assertSafeWorkspacePath(wildcardPath(req), "path");
    const file = await backend.readSessionFile(sessionId(req), path, scopeOf(req));
    const name = path.slice(path.lastIndexOf("/") + 1);
    await sendStream(res, file.content, { size: file.sizeBytes, disposition: contentDisposition(name) });
  });

  return router;
}
