/**
 * Resource naming. A session id *is* the backend resource name (container or pod), so the
 * strict check below is the safety check that keeps delete/exec away from anything else.
 */
export const SESSION_NAME_PREFIX = "code-session-";
/** One-shot executor containers/pods: a distinct prefix so they never look like sessions. */
export const EXECUTOR_NAME_PREFIX = "code-exec-";

/**
 * Warm-pool members (issue 10): ready executors not yet anyone's. A claim renames
 * `code-pool-<uuid>` to `code-session-<same uuid>` (or `code-exec-<same uuid>` for a one-shot
 * run), so a member never matches the session id check before it is claimed.
 */
export const POOL_NAME_PREFIX = "code-pool-";

const UUID_V4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
const SESSION_ID_RE = new RegExp(`^${SESSION_NAME_PREFIX}${UUID_V4}$`);
const EXECUTOR_NAME_RE = new RegExp(`^${EXECUTOR_NAME_PREFIX}${UUID_V4}$`);
const POOL_NAME_RE = new RegExp(`^${POOL_NAME_PREFIX}(${UUID_V4})$`);

/** Injected so callers (and tests) can choose the randomness source; defaults to Web Crypto. */
export type UuidSource = () => string;
const defaultUuid: UuidSource = () => globalThis.crypto.randomUUID();

export function newSessionId(uuid: UuidSource = defaultUuid): string {
  return `${SESSION_NAME_PREFIX}${uuid().toLowerCase()}`;
}

export function newExecutorName(uuid: UuidSource = defaultUuid): string {
  return `${EXECUTOR_NAME_PREFIX}${uuid().toLowerCase()}`;
}

export function newPoolMemberName(uuid: UuidSource = defaultUuid): string {
  return `${POOL_NAME_PREFIX}${uuid().toLowerCase()}`;
}

export function isPoolMemberName(value: unknown): value is string {
  return typeof value === "string" && POOL_NAME_RE.test(value);
}

const MEMBER_NAME_RE = new RegExp(`^(?:${POOL_NAME_PREFIX}|${SESSION_NAME_PREFIX})(${UUID_V4})$`);

/**
 * The name a claimed member is known by: the session id or one-shot executor name with the
 * member's own uuid. `member` is `code-pool-<uuid>` (or, on a platform that names members
 * with their future session id, `code-session-<uuid>`); anything else throws.
 */
export function claimedName(member: string, as: "session" | "executor"): string {
  const m = MEMBER_NAME_RE.exec(member);
  if (!m) throw new Error(`not a pool member name: ${JSON.stringify(member)}`);
  return `${as === "session" ? SESSION_NAME_PREFIX : EXECUTOR_NAME_PREFIX}${m[1]}`;
}

/** True only for `code-session-<lowercase uuid v4>`: valid as a Docker name and a DNS-1123 label. */
export function isSessionId(value: unknown): value is string {
  return typeof value === "string" && SESSION_ID_RE.test(value);
}

export function isExecutorName(value: unknown): value is string {
  return typeof value === "string" && EXECUTOR_NAME_RE.test(value);
}

/** Kubernetes DNS-1123 label: at most 63 chars of [a-z0-9-], starting and ending alphanumeric. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value);
}

/** Docker container name rule. */
export function isDockerName(value: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(value);
}
