/**
 * The admission a real apiserver runs after validation, for what this project meets on a
 * cluster: the Pod Security admission controller (levels `baseline` and `restricted` of the
 * Pod Security Standards, as a namespace's `pod-security.kubernetes.io/enforce` label asks)
 * and the ServiceAccount admission plugin (a pod naming a ServiceAccount that does not exist
 * is refused). Both answer 403 Forbidden with the message shapes of kube-apiserver
 * (k8s.io/pod-security-admission and plugin/pkg/admission/serviceaccount).
 */
import { statusObject, type K8sStatus } from "./validate.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- pods here are plain JSON objects */
type Json = any;

export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

/** Capabilities the baseline level allows to be added (the container runtime's defaults). */
const BASELINE_CAPS = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);
const RESTRICTED_VOLUME_SOURCES = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);

interface Named {
  name: string;
  securityContext?: Json;
}

const q = (s: string) => JSON.stringify(s);
const containerList = (names: string[]) =>
  `${names.length === 1 ? "container" : "containers"} ${names.map(q).join(", ")}`;

/**
 * The failed checks of a pod against a Pod Security level, each as `check (detail)`, the
 * way k8s.io/pod-security-admission reports them: the baseline checks, then the restricted
 * ones, each group in check-ID order; at "restricted" the restricted capabilities and volume
 * checks replace their baseline counterparts ("non-default capabilities", "hostPath volumes").
 */
export function podSecurityViolations(spec: Json, level: PodSecurityLevel): string[] {
  if (level === "privileged") return [];
  const out: string[] = [];
  const psc = spec.securityContext ?? {};
  const containers: Named[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const where = (pred: (c: Named) => boolean) => containers.filter(pred).map((c) => c.name);
  const restricted = level === "restricted";

  // ---- baseline (check-ID order: capabilities, hostNamespaces, hostPathVolumes, privileged)
  const hostNs = ["hostNetwork", "hostPID", "hostIPC"].filter((k) => spec[k] === true);
  const addsNonDefault = where((c) =>
    ((c.securityContext?.capabilities?.add ?? []) as string[]).some((cap) => !BASELINE_CAPS.has(cap)),
  );
  if (!restricted && addsNonDefault.length) {
    const caps = new Set<string>();
    for (const c of containers) {
      for (const cap of (c.securityContext?.capabilities?.add ?? []) as string[]) {
        if (!BASELINE_CAPS.has(cap)) caps.add(cap);
      }
    }
    out.push(
      `non-default capabilities (${containerList(addsNonDefault)} must not include ${[...caps].sort().map(q).join(", ")} in securityContext.capabilities.add)`,
    );
  }
  if (hostNs.length) out.push(`host namespaces (${hostNs.map((k) => `${k}=true`).join(", ")})`);
  const hostPath = ((spec.volumes ?? []) as Json[]).filter((v) => v.hostPath).map((v) => q(v.name));
  if (!restricted && hostPath.length) {
    out.push(`hostPath volumes (${hostPath.length === 1 ? "volume" : "volumes"} ${hostPath.join(", ")})`);
  }
  const privileged = where((c) => c.securityContext?.privileged === true);
  if (privileged.length) {
    out.push(`privileged (${containerList(privileged)} must not set securityContext.privileged=true)`);
  }
  if (!restricted) return out;

  // ---- restricted
  const escalation = where((c) => c.securityContext?.allowPrivilegeEscalation !== false);
  if (escalation.length) {
    out.push(
      `allowPrivilegeEscalation != false (${containerList(escalation)} must set securityContext.allowPrivilegeEscalation=false)`,
    );
  }
  const capsProblems: string[] = [];
  const noDrop = where((c) => !((c.securityContext?.capabilities?.drop ?? []) as string[]).includes("ALL"));
  if (noDrop.length) {
    capsProblems.push(`${containerList(noDrop)} must set securityContext.capabilities.drop=["ALL"]`);
  }
  const addsForbidden = where((c) =>
    ((c.securityContext?.capabilities?.add ?? []) as string[]).some((cap) => cap !== "NET_BIND_SERVICE"),
  );
  if (addsForbidden.length) {
    const caps = new Set<string>();
    for (const c of containers) {
      for (const cap of (c.securityContext?.capabilities?.add ?? []) as string[]) {
        if (cap !== "NET_BIND_SERVICE") caps.add(cap);
      }
    }
    capsProblems.push(
      `${containerList(addsForbidden)} must not include ${[...caps].sort().map(q).join(", ")} in securityContext.capabilities.add`,
    );
  }
  if (capsProblems.length) out.push(`unrestricted capabilities (${capsProblems.join("; ")})`);
  const restrictedVolumes = ((spec.volumes ?? []) as Json[])
    .map((v) => ({ name: v.name as string, type: Object.keys(v).find((k) => k !== "name") ?? "" }))
    .filter((v) => !RESTRICTED_VOLUME_SOURCES.has(v.type));
  if (restrictedVolumes.length) {
    out.push(
      `restricted volume types (${restrictedVolumes.map((v) => `volume ${q(v.name)} uses restricted volume type ${q(v.type)}`).join("; ")})`,
    );
  }
  const podNonRoot = psc.runAsNonRoot === true;
  const explicitRoot = where((c) => c.securityContext?.runAsNonRoot === false);
  const unsetNonRoot = where((c) => c.securityContext?.runAsNonRoot === undefined);
  if (explicitRoot.length || (!podNonRoot && unsetNonRoot.length)) {
    const parts: string[] = [];
    if (psc.runAsNonRoot === false) parts.push("pod must not set securityContext.runAsNonRoot=false");
    if (explicitRoot.length)
      parts.push(`${containerList(explicitRoot)} must not set securityContext.runAsNonRoot=false`);
    if (!podNonRoot && unsetNonRoot.length) {
      parts.push(`pod or ${containerList(unsetNonRoot)} must set securityContext.runAsNonRoot=true`);
    }
    out.push(`runAsNonRoot != true (${parts.join("; ")})`);
  }
  const rootUser = where((c) => c.securityContext?.runAsUser === 0);
  if (psc.runAsUser === 0 || rootUser.length) {
    const parts: string[] = [];
    if (psc.runAsUser === 0) parts.push("pod must not set runAsUser=0");
    if (rootUser.length) parts.push(`${containerList(rootUser)} must not set runAsUser=0`);
    out.push(`runAsUser=0 (${parts.join("; ")})`);
  }
  const okSeccomp = (sc: Json) => ["RuntimeDefault", "Localhost"].includes(sc?.seccompProfile?.type);
  const noSeccomp = where((c) => !okSeccomp(c.securityContext) && !okSeccomp(psc));
  if (noSeccomp.length) {
    out.push(
      `seccompProfile (pod or ${containerList(noSeccomp)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`,
    );
  }
  return out;
}

/** The 403 kube-apiserver answers for a pod the namespace's Pod Security level forbids. */
export function podSecurityRejection(pod: Json, level: PodSecurityLevel): K8sStatus | null {
  const violations = podSecurityViolations(pod.spec ?? {}, level);
  if (violations.length === 0) return null;
  const name = String(pod.metadata?.name ?? "");
  return statusObject(
    403,
    "Forbidden",
    `pods ${q(name)} is forbidden: violates PodSecurity ${q(`${level}:latest`)}: ${violations.join(", ")}`,
    { name, kind: "pods" },
  );
}

/** The 403 of the ServiceAccount admission plugin for a pod whose ServiceAccount is missing. */
export function serviceAccountRejection(pod: Json, namespace: string, account: string): K8sStatus {
  const name = String(pod.metadata?.name ?? "");
  return statusObject(
    403,
    "Forbidden",
    `pods ${q(name)} is forbidden: error looking up service account ${namespace}/${account}: serviceaccount ${q(account)} not found`,
    { name, kind: "pods" },
  );
}

/** The 403 of the RBAC authorizer for a request the caller's Role does not allow. */
export function rbacRejection(opts: {
  user: string;
  verb: string;
  resource: string;
  subresource?: string | undefined;
  namespace: string;
  name?: string | undefined;
  group?: string | undefined;
}): K8sStatus {
  const res = opts.subresource ? `${opts.resource}/${opts.subresource}` : opts.resource;
  const subject = opts.name ? `${opts.resource} ${q(opts.name)}` : opts.resource;
  return statusObject(
    403,
    "Forbidden",
    `${subject} is forbidden: User ${q(opts.user)} cannot ${opts.verb} resource ${q(res)} in API group ${q(opts.group ?? "")} in the namespace ${q(opts.namespace)}`,
    { ...(opts.name ? { name: opts.name } : {}), kind: opts.resource },
  );
}
