/**
 * The request id on every log line written while a request is handled — including the
 * backend's, which only has a child of the same logger: the request middleware stores the id
 * in an AsyncLocalStorage, and the logger's `mixin` adds it to each line. No Backend interface
 * change; anything the backend awaits on behalf of the request keeps the context.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingMessage, ServerResponse } from "node:http";

interface RequestContext {
  reqId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs the rest of the request's middleware chain with its id in context (after pino-http set `req.id`). */
export function requestContextMiddleware(): (
  req: IncomingMessage,
  res: ServerResponse,
  next: () => void,
) => void {
  return (req, _res, next) => {
    const id = (req as IncomingMessage & { id?: unknown }).id;
    if (typeof id !== "string" && typeof id !== "number") return next();
    storage.run({ reqId: String(id) }, next);
  };
}

/** The current request's id, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.reqId;
}

/** pino `mixin`: `{ reqId }` while a request is handled, nothing otherwise. */
export function requestIdMixin(): { reqId?: string } {
  const reqId = currentRequestId();
  return reqId === undefined ? {} : { reqId };
}
