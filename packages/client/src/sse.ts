/**
 * Reads a `text/event-stream` answer of the execute/bash stream routes (`output`* then one
 * `result` or `error`) with eventsource-parser, calling the output callbacks in order, and
 * returns the run's result with the streamed output gathered into `stdout`/`stderr`.
 * Everything in the stream is treated as untrusted: malformed events end it with a StreamError.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { StreamError } from "./errors.js";
import { toExecution, type Execution } from "./types.js";
import type { Schemas, StreamResultEvent } from "./wire.js";

export interface OutputCallbacks {
  /**
   * Called with each piece of stdout as the code prints it, in order; a returned promise is
   * awaited before the next piece is read.
   * @default undefined (no callback; the output is still in the result)
   */
  onStdout?: (data: string) => void | Promise<void>;
  /**
   * Called with each piece of stderr, in order, like `onStdout`.
   * @default undefined
   */
  onStderr?: (data: string) => void | Promise<void>;
}

function parseJson(msg: EventSourceMessage, requestId: string | undefined): unknown {
  try {
    return JSON.parse(msg.data) as unknown;
  } catch {
    throw new StreamError({ status: 200, detail: `malformed ${msg.event ?? "message"} event`, requestId });
  }
}

function isStreamResult(v: unknown): v is StreamResultEvent {
  const r = v as Partial<StreamResultEvent> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    (typeof r.exit_code === "number" || r.exit_code === null) &&
    typeof r.timed_out === "boolean" &&
    typeof r.duration_ms === "number" &&
    Array.isArray(r.files)
  );
}

/** An `output` event as the document types it (`StreamOutputEvent`), checked field by field. */
function isOutputEvent(v: unknown): v is Schemas["StreamOutputEvent"] {
  const o = v as Partial<Schemas["StreamOutputEvent"]> | null;
  return (
    typeof o === "object" &&
    o !== null &&
    typeof o.data === "string" &&
    (o.stream === "stdout" || o.stream === "stderr")
  );
}

export async function readExecutionStream(res: Response, callbacks: OutputCallbacks): Promise<Execution> {
  const requestId = res.headers.get("x-request-id") ?? undefined;
  const stdout: string[] = [];
  const stderr: string[] = [];
  const pending: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (msg) => pending.push(msg) });
  let result: StreamResultEvent | undefined;

  const handle = async (msg: EventSourceMessage): Promise<void> => {
    if (result) return; // nothing counts after the result
    if (msg.event === "output") {
      const out = parseJson(msg, requestId);
      if (!isOutputEvent(out)) {
        throw new StreamError({ status: 200, detail: "malformed output event", requestId });
      }
      if (out.stream === "stdout") {
        stdout.push(out.data);
        await callbacks.onStdout?.(out.data);
      } else {
        stderr.push(out.data);
        await callbacks.onStderr?.(out.data);
      }
    } else if (msg.event === "result") {
      const r = parseJson(msg, requestId);
      if (!isStreamResult(r))
        throw new StreamError({ status: 200, detail: "malformed result event", requestId });
      result = r;
    } else if (msg.event === "error") {
      const e = parseJson(msg, requestId) as Partial<Schemas["StreamErrorEvent"]> | null;
      const message = typeof e?.message === "string" ? e.message : "the run failed";
      throw new StreamError({ status: 200, detail: message, requestId });
    }
    // Other event names are ignored (forward compatibility).
  };

  if (!res.body) throw new StreamError({ status: res.status, detail: "the answer has no body", requestId });
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      parser.feed(done ? decoder.decode() : decoder.decode(value, { stream: true }));
      while (pending.length) await handle(pending.shift() as EventSourceMessage);
      if (done || result) break;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  if (!result) {
    throw new StreamError({ status: 200, detail: "the stream ended before its result event", requestId });
  }
  return toExecution({ ...result, stdout: stdout.join(""), stderr: stderr.join("") });
}
