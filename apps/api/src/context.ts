/**
 * Per-request state set by the auth middleware and read by the routes, kept in a WeakMap so
 * nothing is added to Express's global Request type.
 */
import type { Request, Response } from "express";
import type { Scope } from "@code-interpreter/core";

export interface RequestContext {
  /** Owner tag of the caller's API key, or null when keys are not configured. */
  owner: string | null;
}

const contexts = new WeakMap<Request, RequestContext>();

export function setContext(req: Request, ctx: RequestContext): void {
  contexts.set(req, ctx);
}

export function contextOf(req: Request): RequestContext {
  return contexts.get(req) ?? { owner: null };
}

export function scopeOf(req: Request): Scope {
  return { owner: contextOf(req).owner };
}

/**
 * An AbortSignal that fires when the client goes away before the response is complete, so
 * the backend can kill the program (and the one-shot container) nobody is waiting for.
 */
export function disconnectSignal(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error("client disconnected"));
  };
  res.once("close", onClose);
  req.once("aborted", onClose);
  return controller.signal;
}
