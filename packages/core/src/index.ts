/**
 * `@code-interpreter/core`: what users of a backend and of the API need. Named exports only:
 * each name here is semver surface. What only backend authors need (the session layer, the
 * platform interface, execution helpers, label keys, lifetime arithmetic) is in
 * `@code-interpreter/core/backend-kit`; test helpers are in `@code-interpreter/core/testing`.
 */
export {
  BackendError,
  BackendUnavailableError,
  CapacityError,
  CodeInterpreterError,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  SessionExhaustedError,
  ConflictError,
  SessionNotFoundError,
  ValidationError,
  isCodeInterpreterError,
} from "./errors.js";
export {
  silentLogger,
  type Backend,
  type BackendCapabilities,
  type CreateSessionRequest,
  type ExecRequest,
  type ExecResult,
  type FileCollector,
  type Language,
  type Logger,
  type OneShotRequest,
  type OutputEvent,
  type ProducedFile,
  type ReapReport,
  type Scope,
  type SessionFile,
  type SessionInfo,
  type SessionStatus,
  type StagedFile,
  type StateReset,
  type WarmPoolMonitor,
  type WarmPoolStats,
  type WorkspaceEntry,
} from "./backend.js";
export type { ClaimKind, PoolReapReason, WarmPoolEvents } from "./sessions/warm-pool.js";
export { SESSION_NAME_PREFIX, isSessionId } from "./naming.js";
export {
  PATH_LIMITS,
  WORKSPACE_DIR,
  assertSafeWorkspacePath,
  assertUniqueSafePaths,
  isSafeWorkspacePath,
  workspacePathProblem,
} from "./paths.js";
export { METADATA_LIMITS, validateMetadata } from "./labels.js";
export { REAP_REASONS, resolveTtlSeconds, type ReapReason } from "./lifetime.js";
export { ownerTag } from "./session.js";
export { TRUNCATION_MARKER } from "./output.js";
export {
  DEFAULT_EXECUTOR_LIMITS,
  assertExecutorLimits,
  defaultTmpfsSizes,
  executorLimitsProblem,
  memoryHeadroomMb,
  type ExecutorLimits,
} from "./limits.js";
/** Types a transport implementation is written against (no runtime surface). */
export type { ExecOptions, ExecProcess, ExecTransport } from "./exec-runner.js";
