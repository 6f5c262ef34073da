/** Runs an execution and answers it as a text/event-stream (one-shot and session streams). */
import { once } from "node:events";
import type { Request, Response } from "express";
import { createSession } from "better-sse";
import { CodeInterpreterError, type ExecRequest, type ExecResult } from "@code-interpreter/core";
import { streamResultJson } from "./serialize.js";

/**
 * `output` events while `run` executes `execReq`, then exactly one `result` or `error`. Call it
 * after validation: errors before this point are ordinary JSON answers with their status.
 */
export async function streamExecution<T extends ExecRequest>(
  req: Request,
  res: Response,
  signal: AbortSignal,
  execReq: T,
  run: (execReq: T) => Promise<ExecResult>,
): Promise<void> {
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
    result = await run(execReq);
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
}
