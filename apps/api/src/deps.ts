import type { Backend, BackendCapabilities } from "@code-interpreter/core";
import type { Config } from "./config.js";
import { NotSupportedError } from "@code-interpreter/core";
import type { FileStore } from "@code-interpreter/files-client";
import type { RequestHandler } from "express";
import type { Logger } from "pino";
import type { ApiMetrics } from "./metrics.js";
import type { Schemas } from "./schemas.js";

/** What the route modules share. */
export interface Deps {
  backend: Backend;
  files: FileStore;
  config: Config;
  logger: Logger;
  metrics: ApiMetrics;
  schemas: Schemas;
}

const CAPABILITY_TEXT: Record<keyof BackendCapabilities, string> = {
  oneShot: "one-shot execution",
  sessions: "sessions",
  sessionExec: "execution in sessions",
  sessionFiles: "session files",
  keepalive: "session keepalive",
  reaper: "the session reaper",
};

/** 501 before any other work when the backend lacks the capability (checked per request). */
export function requireCapability(backend: Backend, cap: keyof BackendCapabilities): RequestHandler {
  return (_req, _res, next) => {
    if (!backend.capabilities[cap]) {
      throw new NotSupportedError(`the ${backend.kind} backend does not support ${CAPABILITY_TEXT[cap]}`);
    }
    next();
  };
}
