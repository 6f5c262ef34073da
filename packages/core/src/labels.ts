/**
 * Labels and annotations on backend resources. All session state that must survive an API
 * restart lives on the resource: identity and immutable facts in labels (Docker) or
 * labels + annotations (Kubernetes); the mutable part (last activity, extended expiry) in
 * a small state record the backend keeps with the resource (see SessionState).
 */
import { ValidationError } from "./errors.js";

export const LABEL_APP = "app";
export const LABEL_COMPONENT = "component";
export const APP_NAME = "code-interpreter";
export type Component = "session" | "executor";

const P = "code-interpreter.dev";
/** Unix seconds. */
export const LABEL_CREATED_AT = `${P}/created-at`;
/** Unix seconds: the expiry chosen at creation (keepalive state may move it later). */
export const LABEL_EXPIRES_AT = `${P}/expires-at`;
/** Unix seconds: the hard end of life (created-at + SESSION_MAX_LIFETIME_SECONDS); never moves. */
export const LABEL_MAX_EXPIRES_AT = `${P}/max-expires-at`;
/** Seconds, absent when the session has no idle timeout. */
export const LABEL_IDLE_TIMEOUT = `${P}/idle-timeout-seconds`;
/** Owner tag (a hash of the API key), absent when keys are not configured. */
export const LABEL_OWNER = `${P}/owner`;
/** JSON object of caller metadata (Docker: label; Kubernetes: annotation). */
export const LABEL_METADATA = `${P}/metadata`;
/** One-shot executors: unix seconds after which an orphan may be reaped. */
export const LABEL_REAP_AFTER = `${P}/reap-after`;

/**
 * Warm-pool members (issue 10): the fingerprint of what the member was made with (image,
 * limits, spec version). A member whose fingerprint differs from the current one is reaped.
 */
export const LABEL_POOL = `${P}/pool`;

export type LabelMap = Record<string, string>;

export function baseLabels(component: Component): LabelMap {
  return { [LABEL_APP]: APP_NAME, [LABEL_COMPONENT]: component };
}

/** True when a resource carries *both* identity labels for the given component. */
export function hasComponentLabels(labels: LabelMap | undefined | null, component: Component): boolean {
  return !!labels && labels[LABEL_APP] === APP_NAME && labels[LABEL_COMPONENT] === component;
}

/** Kubernetes label selector string, e.g. `app=code-interpreter,component=session`. */
export function labelSelector(component: Component, extra: LabelMap = {}): string {
  return selectorPairs(component, extra).join(",");
}

/** Identity labels first; extras may narrow the selection but never replace app/component. */
function selectorPairs(component: Component, extra: LabelMap): string[] {
  const { [LABEL_APP]: _a, [LABEL_COMPONENT]: _c, ...rest } = extra;
  return Object.entries({ ...baseLabels(component), ...rest }).map(([k, v]) => `${k}=${v}`);
}

/** Docker list filter, e.g. `{ label: ["app=code-interpreter", "component=session"] }`. */
export function dockerLabelFilter(component: Component, extra: LabelMap = {}): { label: string[] } {
  return { label: selectorPairs(component, extra) };
}

/** Caller metadata: a small flat string map. */
export const METADATA_LIMITS = { maxKeys: 32, maxKeyLength: 64, maxValueLength: 256, maxJsonBytes: 4096 };

export function validateMetadata(input: unknown): Record<string, string> {
  if (input === undefined || input === null) return {};
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new ValidationError("metadata must be an object of string values");
  }
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > METADATA_LIMITS.maxKeys) {
    throw new ValidationError(`metadata may have at most ${METADATA_LIMITS.maxKeys} keys`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > METADATA_LIMITS.maxKeyLength) {
      throw new ValidationError(`metadata keys must be 1-${METADATA_LIMITS.maxKeyLength} characters`);
    }
    if (typeof v !== "string") throw new ValidationError(`metadata.${k} must be a string`);
    if (v.length > METADATA_LIMITS.maxValueLength) {
      throw new ValidationError(`metadata.${k} is longer than ${METADATA_LIMITS.maxValueLength} characters`);
    }
    out[k] = v;
  }
  if (Buffer.byteLength(JSON.stringify(out)) > METADATA_LIMITS.maxJsonBytes) {
    throw new ValidationError(`metadata is larger than ${METADATA_LIMITS.maxJsonBytes} bytes`);
  }
  return out;
}
