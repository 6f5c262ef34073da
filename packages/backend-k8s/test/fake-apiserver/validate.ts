/**
 * Object validation as a real API server does it, in two layers:
 * 1. the Kubernetes OpenAPI schema, through the generated validators of `kubernetes-models`
 *    (types, required fields, enums of the published schema);
 * 2. the rules the apiserver checks in Go code that no schema carries: DNS-1123 names,
 *    label keys/values, annotation size, quantities, requests <= limits, volume references,
 *    unique container names, immutable fields on update.
 * Failures become a 422 `Status` with one cause per problem, like `kubectl` shows them.
 */
import { Pod } from "kubernetes-models/v1/Pod";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";

export interface Cause {
  reason: string;
  message: string;
  field: string;
}

export interface K8sStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message: string;
  reason?: string;
  details?: { name?: string; kind?: string; causes?: Cause[] };
  code: number;
}

export function statusObject(
  code: number,
  reason: string,
  message: string,
  details?: K8sStatus["details"],
): K8sStatus {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

type Model = { validate(): void };
type ModelCtor = new (data: never) => Model;

const MODELS: Record<string, ModelCtor> = {
  "v1/Pod": Pod as unknown as ModelCtor,
  "v1/Service": Service as unknown as ModelCtor,
  "v1/ServiceAccount": ServiceAccount as unknown as ModelCtor,
  "v1/Namespace": Namespace as unknown as ModelCtor,
  "v1/ConfigMap": ConfigMap as unknown as ModelCtor,
  "apps/v1/Deployment": Deployment as unknown as ModelCtor,
  "rbac.authorization.k8s.io/v1/Role": Role as unknown as ModelCtor,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding as unknown as ModelCtor,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy as unknown as ModelCtor,
};

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

export function isDns1123Label(v: string): boolean {
  return v.length <= 63 && DNS1123_LABEL.test(v);
}
export function isDns1123Subdomain(v: string): boolean {
  return v.length <= 253 && DNS1123_SUBDOMAIN.test(v);
}

function qualifiedNameProblem(key: string): string | null {
  const parts = key.split("/");
  if (parts.length > 2) return "a qualified name must consist of an optional DNS subdomain prefix and a name";
  const [prefix, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [null, parts[0]!];
  if (prefix !== null && !isDns1123Subdomain(prefix)) return "prefix part must be a DNS-1123 subdomain";
  if (name.length === 0 || name.length > 63) return "name part must be no more than 63 characters";
  if (!QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  }
  return null;
}

/** Parses a quantity into a number (base units), or null when malformed. */
export function parseQuantity(q: unknown): number | null {
  if (typeof q === "number") return q;
  if (typeof q !== "string" || !QUANTITY.test(q)) return null;
  const m = /^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$/.exec(q);
  if (!m) return null;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return null;
  const suf = m[2] ?? "";
  const bin: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  const dec: Record<string, number> = {
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    "": 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
  };
  if (suf in bin) return n * bin[suf]!;
  if (suf in dec) return n * dec[suf]!;
  if (/^[eE]/.test(suf)) return n * 10 ** Number(suf.slice(1));
  return null;
}

function metaCauses(meta: Record<string, unknown> | undefined, nameRule: "label" | "subdomain"): Cause[] {
  const causes: Cause[] = [];
  const name = meta?.name;
  if (typeof name !== "string" || name === "") {
    if (!meta?.generateName) causes.push(required("metadata.name", "name or generateName is required"));
  } else if (nameRule === "label" ? !isDns1123Label(name) : !isDns1123Subdomain(name)) {
    causes.push(
      invalid(
        "metadata.name",
        name,
        nameRule === "label"
          ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
          : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
      ),
    );
  }
  const labels = (meta?.labels ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(labels)) {
    const p = qualifiedNameProblem(k);
    if (p) causes.push(invalid("metadata.labels", k, p));
    if (typeof v !== "string")
      causes.push(invalid(`metadata.labels`, String(v), "label values must be strings"));
    else if (v.length > 63) causes.push(invalid("metadata.labels", v, "must be no more than 63 characters"));
    else if (!LABEL_VALUE.test(v)) {
      causes.push(
        invalid(
          "metadata.labels",
          v,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        ),
      );
    }
  }
  const annotations = (meta?.annotations ?? {}) as Record<string, unknown>;
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    const p = qualifiedNameProblem(k.toLowerCase());
    if (p) causes.push(invalid("metadata.annotations", k, p));
    if (typeof v !== "string")
      causes.push(invalid("metadata.annotations", String(v), "annotation values must be strings"));
    size += k.length + String(v).length;
  }
  if (size > ANNOTATIONS_MAX_BYTES) {
    causes.push({
      reason: "FieldValueTooLong",
      message: "Too long: must have at most 262144 bytes",
      field: "metadata.annotations",
    });
  }
  return causes;
}

const required = (field: string, detail = "Required value"): Cause => ({
  reason: "FieldValueRequired",
  message: detail === "Required value" ? "Required value" : `Required value: ${detail}`,
  field,
});
const invalid = (field: string, value: string, detail: string): Cause => ({
  reason: "FieldValueInvalid",
  message: `Invalid value: ${JSON.stringify(value)}: ${detail}`,
  field,
});
const unsupported = (field: string, value: string, allowed: string[]): Cause => ({
  reason: "FieldValueNotSupported",
  message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => JSON.stringify(a)).join(", ")}`,
  field,
});

interface ContainerLike {
  name?: unknown;
  image?: unknown;
  imagePullPolicy?: unknown;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  volumeMounts?: Array<{ name?: unknown; mountPath?: unknown }>;
}

function podSpecCauses(spec: Record<string, unknown> | undefined): Cause[] {
  const causes: Cause[] = [];
  if (!spec) return [required("spec")];
  const volumes = (spec.volumes ?? []) as Array<{
    name?: unknown;
    emptyDir?: { sizeLimit?: unknown; medium?: unknown };
  }>;
  const volumeNames = new Set<string>();
  volumes.forEach((v, i) => {
    const n = String(v.name ?? "");
    if (!isDns1123Label(n)) causes.push(invalid(`spec.volumes[${i}].name`, n, "must be a DNS-1123 label"));
    if (volumeNames.has(n))
      causes.push({
        reason: "FieldValueDuplicate",
        message: `Duplicate value: ${JSON.stringify(n)}`,
        field: `spec.volumes[${i}].name`,
      });
    volumeNames.add(n);
    if (v.emptyDir?.sizeLimit !== undefined && parseQuantity(v.emptyDir.sizeLimit) === null) {
      causes.push(
        invalid(`spec.volumes[${i}].emptyDir.sizeLimit`, String(v.emptyDir.sizeLimit), "must be a quantity"),
      );
    }
  });
  const checkContainers = (list: unknown, path: string, names: Set<string>) => {
    ((list ?? []) as ContainerLike[]).forEach((c, i) => {
      const f = `${path}[${i}]`;
      const n = String(c.name ?? "");
      if (!c.name) causes.push(required(`${f}.name`));
      else if (!isDns1123Label(n)) causes.push(invalid(`${f}.name`, n, "must be a DNS-1123 label"));
      if (names.has(n))
        causes.push({
          reason: "FieldValueDuplicate",
          message: `Duplicate value: ${JSON.stringify(n)}`,
          field: `${f}.name`,
        });
      names.add(n);
      if (!c.image || typeof c.image !== "string" || c.image.trim() === "")
        causes.push(required(`${f}.image`));
      const policies = ["Always", "IfNotPresent", "Never"];
      if (c.imagePullPolicy !== undefined && !policies.includes(String(c.imagePullPolicy))) {
        causes.push(unsupported(`${f}.imagePullPolicy`, String(c.imagePullPolicy), policies));
      }
      const req = c.resources?.requests ?? {};
      const lim = c.resources?.limits ?? {};
      for (const [kind, map] of [
        ["requests", req],
        ["limits", lim],
      ] as const) {
        for (const [r, q] of Object.entries(map)) {
          if (parseQuantity(q) === null)
            causes.push(invalid(`${f}.resources.${kind}[${r}]`, String(q), "must be a quantity"));
        }
      }
      for (const [r, q] of Object.entries(req)) {
        const rq = parseQuantity(q);
        const lq = lim[r] === undefined ? null : parseQuantity(lim[r]);
        if (rq !== null && lq !== null && rq > lq) {
          causes.push(
            invalid(
              `${f}.resources.requests`,
              String(q),
              `must be less than or equal to ${r} limit of ${String(lim[r])}`,
            ),
          );
        }
      }
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (!volumeNames.has(String(m.name))) {
          causes.push({
            reason: "FieldValueNotFound",
            message: `Not found: ${JSON.stringify(m.name)}`,
            field: `${f}.volumeMounts[${j}].name`,
          });
        }
        if (typeof m.mountPath !== "string" || !m.mountPath.startsWith("/")) {
          causes.push(required(`${f}.volumeMounts[${j}].mountPath`));
        }
      });
    });
  };
  if (!Array.isArray(spec.containers) || spec.containers.length === 0)
    causes.push(required("spec.containers"));
  const names = new Set<string>();
  checkContainers(spec.containers, "spec.containers", names);
  checkContainers(spec.initContainers, "spec.initContainers", names);
  const rp = spec.restartPolicy;
  if (rp !== undefined && !["Always", "OnFailure", "Never"].includes(String(rp))) {
    causes.push(unsupported("spec.restartPolicy", String(rp), ["Always", "OnFailure", "Never"]));
  }
  const ads = spec.activeDeadlineSeconds;
  if (ads !== undefined && (typeof ads !== "number" || !Number.isInteger(ads) || ads < 1)) {
    causes.push(
      invalid("spec.activeDeadlineSeconds", String(ads), "must be between 1 and 2147483647, inclusive"),
    );
  }
  return causes;
}

function schemaCauses(obj: Record<string, unknown>, ctor: ModelCtor): Cause[] {
  try {
    new ctor(obj as never).validate();
    return [];
  } catch (err) {
    const errors = (
      err as { errors?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> }
    ).errors;
    if (!errors) return [{ reason: "FieldValueInvalid", message: String((err as Error).message), field: "" }];
    return errors.map((e) => {
      const base = (e.instancePath ?? "")
        .replace(/^\//, "")
        .replace(/\/(\d+)(?=\/|$)/g, "[$1]")
        .replace(/\//g, ".");
      const missing = e.params?.missingProperty;
      const field = typeof missing === "string" ? (base ? `${base}.${missing}` : missing) : base;
      return {
        reason: typeof missing === "string" ? "FieldValueRequired" : "FieldValueInvalid",
        message: typeof missing === "string" ? "Required value" : `Invalid value: ${e.message ?? "invalid"}`,
        field,
      };
    });
  }
}

/**
 * Validates one object. Returns null when valid, otherwise the 422 (or 400) Status a real
 * apiserver would answer.
 */
export function validateObject(obj: unknown): K8sStatus | null {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
    return statusObject(400, "BadRequest", "the body of the request was in an unknown format");
  }
  const o = obj as Record<string, unknown>;
  const key = `${String(o.apiVersion)}/${String(o.kind)}`;
  const ctor = MODELS[key];
  if (!ctor)
    return statusObject(
      400,
      "BadRequest",
      `no kind "${String(o.kind)}" is registered for version "${String(o.apiVersion)}"`,
    );
  const meta = o.metadata as Record<string, unknown> | undefined;
  const nameRule = o.kind === "Service" || o.kind === "Namespace" ? "label" : "subdomain";
  const causes = [...schemaCauses(o, ctor), ...metaCauses(meta, nameRule)];
  if (o.kind === "Pod") causes.push(...podSpecCauses(o.spec as Record<string, unknown> | undefined));
  if (o.kind === "Deployment") {
    const tpl = (
      o.spec as
        { template?: { spec?: Record<string, unknown>; metadata?: Record<string, unknown> } } | undefined
    )?.template;
    causes.push(...podSpecCauses(tpl?.spec).map((c) => ({ ...c, field: `spec.template.${c.field}` })));
  }
  if (causes.length === 0) return null;
  const name = typeof meta?.name === "string" ? meta.name : "";
  return statusObject(
    422,
    "Invalid",
    `${String(o.kind)} ${JSON.stringify(name)} is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
    { name, kind: `${String(o.kind).toLowerCase()}s`, causes },
  );
}
