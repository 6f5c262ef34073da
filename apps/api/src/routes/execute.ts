/** POST /v1/execute and POST /v1/execute/stream (mounted at /v1/execute): one-shot Python runs. */
import { once } from "node:events";
import { Router, type Request, type RequestHandler } from "express";
import { createSession } from "better-sse";
import { CodeInterpreterError, type ExecResult, type OneShotRequest } from "@code-interpreter/core";
import { contextOf, disconnectSignal } from "../context.js";
import { requireCapability, type Deps } from "../deps.js";
import { observeExecution } from "../metrics.js";
import { parseBody } from "../schemas.js";
import { execJson, streamResultJson } from "../serialize.js";
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

    // better-sse treats the request's "close" as a disconnect, and Node emits it as soon as
    // the body has been read. Let that happen first, so only the response's close counts.
    if (!req.closed) {
      const closed = once(req, "close");
      req.resume();
      await closed;
    }
    const sse = await createSession(req, res, {
      retry: null,
      keepAlive: 10_000,
      headers: { "X-Accel-Buffering": "no", "Cache-Control": "no-cache, no-transform" },
    });
    let seq = 0;
    const send = (event: string, data: unknown) => {
      if (signal.aborted || res.writableEnded || !sse.isConnected) return;
      seq += 1;
      sse.push(data, event, String(seq));
    };
    execReq.onOutput = (ev) => send("output", { stream: ev.stream, data: ev.data });

    let result: ExecResult;
    try {
      result = await observeExecution(metrics, "execute_stream", signal, () => backend.execute(execReq));
    } catch (err) {
      if (err instanceof CodeInterpreterError) {
        req.log.warn({ err: { message: err.message, code: err.code } }, "streamed execution failed");
        send("error", { message: err.message });
      } else {
        req.log.error({ err }, "streamed execution failed");
        send("error", { message: "Internal Server Error" });
      }
      res.end();
      return;
    }
    send("result", streamResultJson(result));
    res.end();
  });

  return router;
}
