/** POST /v1/execute and POST /v1/execute/stream (mounted at /v1/execute): one-shot Python runs. */
import { Router, type Request, type RequestHandler } from "express";
import type { OneShotRequest } from "@code-interpreter/core";
import { contextOf, disconnectSignal } from "../context.js";
import { requireCapability, type Deps } from "../deps.js";
import { observeExecution } from "../metrics.js";
import { parseBody } from "../schemas.js";
import { execJson } from "../serialize.js";
import { streamExecution } from "../sse.js";
import { resolveStagedFiles, storeCollector } from "../staging.js";

export function executeRouter(deps: Deps, json: RequestHandler): Router {
  const { backend, files, config, metrics, schemas } = deps;
  const router = Router();
  const oneShot = requireCapability(backend, "oneShot");

  /** Validates and resolves everything; nothing reaches the backend if this throws. */
  async function prepare(req: Request, signal: AbortSignal): Promise<OneShotRequest> {
    const body = parseBody(schemas.execute, req.body);
    const { owner } = contextOf(req);
    const staged = await resolveStagedFiles(files, body.files, owner);
    return {
      language: "python",
      code: body.code,
      stdin: body.stdin ?? null,
      timeoutMs: body.timeout_ms ?? config.defaultExecTimeoutMs,
      lastLineInteractive: body.last_line_interactive ?? true,
      maxOutputBytes: config.maxOutputBytes,
      signal,
      files: staged,
      collectFiles: storeCollector(files, owner),
    };
  }

  router.post("/", oneShot, json, async (req, res) => {
    const signal = disconnectSignal(req, res);
    const execReq = await prepare(req, signal);
    const result = await observeExecution(metrics, "execute", signal, () => backend.execute(execReq));
    res.json(execJson(result));
  });

  router.post("/stream", oneShot, json, async (req, res) => {
    const signal = disconnectSignal(req, res);
    // Validation errors are still plain JSON answers with their status: the stream has not begun.
    const execReq = await prepare(req, signal);

    await streamExecution(req, res, signal, execReq, (r) =>
      observeExecution(metrics, "execute_stream", signal, () => backend.execute(r)),
    );
  });

  return router;
}
