export {
  CodeInterpreter,
  Files,
  Session,
  SessionFiles,
  Sessions,
  type BashOptions,
  type CreateSessionOptions,
  type ExecuteOptions,
  type Health,
  type RequestOptions,
  type RunOptions,
} from "./client.js";
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
