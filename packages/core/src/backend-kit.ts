/**
 * `@code-interpreter/core/backend-kit`: what only backend authors need. A backend implements
 * a SessionPlatform (find / list / create / remove / transport / state) and extends
 * SessionBackend with it; execution semantics come from runCode & co. on an ExecTransport.
 * Users of a backend need only the main entry (`@code-interpreter/core`).
 */
export { SessionBackend, type SessionBackendOptions } from "./sessions/session-backend.js";
export type { WarmPoolSettings } from "./sessions/pooled.js";
export type { PlatformResource, ResourcePhase, SessionPlatform, SessionSpec } from "./sessions/platform.js";
export {
  POOL_SPEC_VERSION,
  claimTarget,
  claimedResource,
  executorClaim,
  memberLabels,
  parseClaimRecord,
  poolFingerprint,
  sessionClaim,
  type ClaimRecord,
  type KeeperLifetime,
  type PoolMemberSpec,
  type PoolPlatform,
} from "./sessions/pool-platform.js";
export {
  POOL_REAP_REASONS,
  WarmPool,
  type ClaimKind,
  type PoolReapReason,
  type WarmPoolEvents,
  type WarmPoolOptions,
} from "./sessions/warm-pool.js";
export { KeyedMutex, mapLimit } from "./sessions/keyed-mutex.js";
export {
  resolveCommonOptions,
  type CommonBackendOptions,
  type ResolvedCommonOptions,
} from "./sessions/options.js";
export { poll, PollTimeoutError, type PollOptions } from "./sessions/poll.js";
export {
  ACTIVITY_WRITE_MAX_INTERVAL_MS,
  ACTIVITY_WRITE_NO_IDLE_INTERVAL_MS,
  activityWriteIntervalMs,
  mergeState,
} from "./sessions/activity.js";
export { exhaustionError } from "./sessions/exhaustion.js";
export {
  validateCreateRequest,
  validateFileWrite,
  validateIdleTimeout,
  validateKeepaliveTtl,
  validateTtl,
} from "./sessions/validation.js";

export {
  execCapture,
  listWorkspace,
  readWorkspaceFile,
  runCode,
  stageFiles,
  type CapturedExec,
  type ExecOptions,
  type ExecProcess,
  type ExecTransport,
  type RunOptions,
} from "./exec-runner.js";
export { EXECUTOR_REAP_MARGIN_MS, STATE_DIR, STATE_FILE, executorCommands } from "./executor-scripts.js";
export {
  APP_NAME,
  LABEL_APP,
  LABEL_COMPONENT,
  LABEL_CREATED_AT,
  LABEL_EXPIRES_AT,
  LABEL_IDLE_TIMEOUT,
  LABEL_MAX_EXPIRES_AT,
  LABEL_METADATA,
  LABEL_OWNER,
  LABEL_POOL,
  LABEL_REAP_AFTER,
  baseLabels,
  dockerLabelFilter,
  hasComponentLabels,
  labelSelector,
  type Component,
  type LabelMap,
} from "./labels.js";
export {
  deadline,
  expiryReason,
  fromUnixSeconds,
  isExpired,
  keepaliveExpiry,
  newLifetime,
  secondsFloor,
  toUnixSeconds,
  type Lifetime,
} from "./lifetime.js";
export {
  EXECUTOR_NAME_PREFIX,
  POOL_NAME_PREFIX,
  claimedName,
  isDns1123Label,
  isDockerName,
  isExecutorName,
  isPoolMemberName,
  newExecutorName,
  newPoolMemberName,
  newSessionId,
  type UuidSource,
} from "./naming.js";
export { assertUniqueSafePaths } from "./paths.js";
export {
  inScope,
  lifetimeOf,
  parseSessionState,
  sessionFromTags,
  sessionTags,
  type SessionState,
  type SessionTags,
} from "./session.js";
export { EXECUTOR_UID } from "./limits.js";
/** The resident agent's channel (issue 9): one long-lived exec per session per API process. */
export {
  AgentChannel,
  AgentChannelError,
  type AgentChannelOptions,
  type AgentExecResult,
  type AgentHello,
  type StateReset,
} from "./agent/channel.js";
export { AgentChannels, type AgentChannelsOptions } from "./agent/channels.js";
export {
  AGENT_HEADER_BYTES,
  AGENT_MAX_PAYLOAD,
  AgentFrameParser,
  AgentReplyKind,
  AgentRequestKind,
  encodeAgentFrame,
} from "./agent/protocol.js";
