/**
 * Maps what @kubernetes/client-node throws (ApiException with an HTTP code, node-fetch
 * system errors, WebSocket handshake errors, our deadlines) onto the typed errors of core.
 *
 * A 401/403 has four real causes, each named in the detail: bad credentials (401), the
 * Role (RBAC "cannot <verb> resource"), Pod Security admission ("violates PodSecurity"),
 * ServiceAccount admission ("error looking up service account"); a ResourceQuota refusal
 * ("exceeded quota") is a capacity limit (429), other admission refusals (LimitRange,
 * webhooks) are named as such.
 */
import { ApiException, type V1Pod } from "@kubernetes/client-node";
import {
  BackendError,
  BackendUnavailableError,
  CapacityError,
  isCodeInterpreterError,
} from "@code-interpreter/core";
import { KubernetesRequestCancelledError, KubernetesTimeoutError } from "./deadline.js";

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** The HTTP status of a Kubernetes API error, or null for transport-level failures. */
export function httpStatusOf(err: unknown): number | null {
  if (err instanceof ApiException) return err.code;
  const msg = messageOf(err);
  const m = /Unexpected server response: (\d{3})/.exec(msg);
  return m ? Number(m[1]) : null;
}

export function isNotFound(err: unknown): boolean {
  return httpStatusOf(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return httpStatusOf(err) === 409;
}

function errnoOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === "object"; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { error?: unknown; cause?: unknown }).error ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  if (err && typeof err === "object") {
    const m = (err as { message?: unknown }).message;
    if (typeof m === "string" && m) return m;
    const inner = (err as { error?: unknown }).error;
    if (inner && inner !== err) return messageOf(inner);
  }
  return String(err);
}

/** The `message` of the Status object in an ApiException body, when there is one. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        return body.slice(0, 500) || `HTTP ${err.code}`;
      }
    }
    if (
      parsed &&
      typeof parsed === "object" &&
      typeof (parsed as { message?: unknown }).message === "string"
    ) {
      return (parsed as { message: string }).message;
    }
    return `HTTP ${err.code}`;
  }
  return messageOf(err);
}

/** True for "the API server did not answer" (as opposed to "it answered no"). */
export function isUnreachable(err: unknown): boolean {
  const code = errnoOf(err);
  if (code && NETWORK_CODES.has(code)) return true;
  const type = (err as { type?: unknown } | null)?.type;
  if (type === "system" || type === "request-timeout") return true;
  const status = httpStatusOf(err);
  return status === 502 || status === 503 || status === 504;
}

/** Why the cluster said no to a request (401/403 and quota). */
export type RefusalCause =
  "credentials" | "rbac" | "pod-security" | "service-account" | "quota" | "admission" | "forbidden";

/** The real cause of a 401/403, from the Status message kube-apiserver sends; null otherwise. */
export function refusalCause(err: unknown): RefusalCause | null {
  const status = httpStatusOf(err);
  if (status === 401) return "credentials";
  if (status !== 403) return null;
  const msg = apiMessage(err);
  if (/violates PodSecurity/.test(msg)) return "pod-security";
  if (/error looking up service account/.test(msg)) return "service-account";
  if (/exceeded quota/.test(msg)) return "quota";
  if (/cannot [a-z]+ resource "/.test(msg)) return "rbac";
  if (/admission webhook .* denied the request|maximum .* usage per|minimum .* usage per/.test(msg)) {
    return "admission";
  }
  return "forbidden";
}

const REFUSAL_HINTS: Record<RefusalCause, string> = {
  credentials:
    "the cluster rejected the API's credentials (HTTP 401): the ServiceAccount token or kubeconfig user is missing, invalid or expired",
  rbac: "the API's Role does not allow this (RBAC, HTTP 403): grant the verb on the resource named above (deploy/base/role.yaml)",
  "pod-security":
    "Pod Security admission rejected the pod (HTTP 403): the namespace's pod-security.kubernetes.io/enforce level forbids the fields named above",
  "service-account":
    "ServiceAccount admission rejected the pod (HTTP 403): the ServiceAccount it runs as does not exist in the namespace",
  quota: "the namespace's ResourceQuota is used up (HTTP 403)",
  admission: "an admission controller rejected the request (HTTP 403)",
  forbidden:
    "the cluster refused the request (HTTP 403; for exec: the Role needs create and get on pods/exec)",
};

/** Converts any error from a Kubernetes call into a core error; `what` names the operation. */
export function toCoreError(err: unknown, what: string): Error {
  if (isCodeInterpreterError(err)) return err;
  if (err instanceof KubernetesTimeoutError) {
    return new BackendUnavailableError(
      `Kubernetes API did not answer within ${err.timeoutMs} ms while trying to ${what}`,
      { cause: err },
    );
  }
  if (err instanceof KubernetesRequestCancelledError) {
    return new BackendError(`cancelled while trying to ${what}`, { cause: err });
  }
  if (isUnreachable(err)) {
    return new BackendUnavailableError(
      `Kubernetes API unreachable while trying to ${what}: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  const status = httpStatusOf(err);
  if (status === 429) {
    return new BackendUnavailableError(`Kubernetes API is throttling requests (${what})`, { cause: err });
  }
  const cause = refusalCause(err);
  if (cause === "quota") {
    return new CapacityError(
      `capacity reached: ${REFUSAL_HINTS.quota} while trying to ${what}: ${apiMessage(err)}`,
      { cause: err },
    );
  }
  if (cause) {
    return new BackendError(`${REFUSAL_HINTS[cause]}; while trying to ${what}: ${apiMessage(err)}`, {
      cause: err,
    });
  }
  if (status !== null) {
    return new BackendError(`Kubernetes API failed to ${what} (HTTP ${status}): ${apiMessage(err)}`, {
      cause: err,
    });
  }
  return new BackendError(`failed to ${what}: ${messageOf(err)}`, { cause: err });
}

/** Scheduler messages that mean "no room now" (as opposed to "no node will ever fit"). */
const CAPACITY_MESSAGE = /Insufficient [a-z./-]+|Too many pods/;

/**
 * What a pending pod's `PodScheduled=False, reason=Unschedulable` condition means for the
 * caller, as soon as the scheduler has said it (a second or two, not the ready timeout):
 * - the node(s) lack room (`Insufficient cpu|memory|…`, `Too many pods`) → CapacityError
 *   (429: capacity reached; retry later);
 * - anything else (node selectors, taints, affinity, volumes) will not fix itself →
 *   BackendError naming the scheduler's message.
 * Returns null while the pod is not unschedulable. The caller deletes the pod.
 */
export function unschedulableError(pod: V1Pod): CapacityError | BackendError | null {
  const cond = pod.status?.conditions?.find(
    (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
  );
  if (!cond) return null;
  const name = pod.metadata?.name ?? "pod";
  const message = cond.message ?? "Unschedulable";
  if (CAPACITY_MESSAGE.test(message)) {
    return new CapacityError(
      `capacity reached: the cluster has no room for another executor pod (${name}): ${message}`,
    );
  }
  return new BackendError(`pod ${name} cannot be scheduled: ${message}`);
}
