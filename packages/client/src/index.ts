export { CodeInterpreter, Files, Sessions, type CreateSessionOptions, type Health } from "./client.js";
export type { BashOptions, ExecuteOptions, RequestOptions, RunOptions, SessionRunOptions } from "./run.js";
export { Session, SessionFiles } from "./session.js";
export * from "./errors.js";
export type { ClientOptions } from "./http.js";
export { Pager, type Page, type PageOptions } from "./pager.js";
export type { OutputCallbacks } from "./sse.js";
export type {
  Body,
  Execution,
  ProducedFile,
  SessionInfo,
  StagedFile,
  StoredFile,
  WorkspaceEntry,
} from "./types.js";
