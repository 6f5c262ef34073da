/**
 * The deployment manifests under deploy/: every object is valid against the Kubernetes
 * schemas (same validator as the fake apiserver), the Role grants exactly what the backend
 * uses, and the NetworkPolicy cuts session/executor pods off the network.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { validateObject } from "./fake-apiserver/validate.js";
import { parseSelector } from "./fake-apiserver/server.js";

const DEPLOY = join(dirname(fileURLToPath(import.meta.url)), "../../../deploy");

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are plain YAML data
type Obj = Record<string, any>;

function load(): Array<{ file: string; obj: Obj }> {
  const files = (readdirSync(DEPLOY, { recursive: true }) as string[])
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const out: Array<{ file: string; obj: Obj }> = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, f), "utf8"))) {
      expect(doc.errors, f).toEqual([]);
      const obj = doc.toJS() as Obj | null;
      if (obj) out.push({ file: f, obj });
    }
  }
  return out;
}

const all = load();
const objects = all.filter((o) => o.obj.kind !== "Kustomization");
const find = (kind: string) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);

describe("deploy/ manifests", () => {
  it("has the expected objects", () => {
    expect(objects.map((o) => o.obj.kind).sort()).toEqual(
      ["Deployment", "Namespace", "NetworkPolicy", "Role", "RoleBinding", "Service", "ServiceAccount"].sort(),
    );
  });

  it.each(objects.map((o) => [`${o.file}: ${o.obj.kind}/${o.obj.metadata?.name}`, o.obj]))(
    "%s is valid against the Kubernetes schema",
    (_name, obj) => {
      expect(validateObject(obj)).toBeNull();
    },
  );

  it("the kustomization lists every manifest in its directory", () => {
    for (const k of all.filter((o) => o.obj.kind === "Kustomization")) {
      const dir = dirname(k.file);
      const siblings = all
        .filter((o) => dirname(o.file) === dir && o.file !== k.file)
        .map((o) => relative(dir, o.file));
      expect([...new Set(siblings)].sort()).toEqual([...(k.obj.resources as string[])].sort());
    }
  });

  it("the Role grants exactly what the backend needs", () => {
    const [role] = find("Role");
    const grants = (role!.rules as Obj[]).flatMap((r) =>
      (r.apiGroups as string[]).flatMap((g) =>
        (r.resources as string[]).flatMap((res) =>
          (r.verbs as string[]).map(
            (v) => `${g || "core"}/${res}:${v}${r.resourceNames ? `@${r.resourceNames.join("+")}` : ""}`,
          ),
        ),
      ),
    );
    expect(grants.sort()).toEqual(
      [
        "core/pods:create",
        "core/pods:get",
        "core/pods:list",
        "core/pods:delete",
        "core/pods:patch",
        "core/pods/exec:create",
        "core/pods/exec:get",
        "apps/deployments:get@code-interpreter-api",
      ].sort(),
    );
    expect(JSON.stringify(role)).not.toContain("*");
    expect(find("ClusterRole")).toEqual([]);
    const [binding] = find("RoleBinding");
    expect(binding!.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: role!.metadata.name,
    });
    const [sa] = find("ServiceAccount");
    expect(binding!.subjects).toEqual([{ kind: "ServiceAccount", name: sa!.metadata.name }]);
  });

  it("the NetworkPolicy denies all ingress and egress for session and executor pods, and only them", () => {
    const [np] = find("NetworkPolicy");
    expect(np!.spec.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
    expect(np!.spec.ingress ?? []).toEqual([]);
    expect(np!.spec.egress ?? []).toEqual([]);
    const sel = np!.spec.podSelector;
    const selector = [
      ...Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${String(v)}`),
      ...(sel.matchExpressions ?? []).map(
        (e: Obj) => `${e.key} ${e.operator.toLowerCase()} (${e.values.join(",")})`,
      ),
    ].join(",");
    const matches = parseSelector(selector)!;
    expect(matches({ app: "code-interpreter", component: "session" })).toBe(true);
    expect(matches({ app: "code-interpreter", component: "executor" })).toBe(true);
    const [dep] = find("Deployment");
    expect(matches(dep!.spec.template.metadata.labels)).toBe(false);
    expect(matches({ app: "other", component: "session" })).toBe(false);
  });

  it("the Deployment runs the kubernetes backend with /health probes and a restricted securityContext", () => {
    const [dep] = find("Deployment");
    const pod = dep!.spec.template.spec;
    const c = pod.containers[0];
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.EXECUTOR_BACKEND).toBe("kubernetes");
    expect(env.KUBERNETES_EXECUTOR_NAMESPACE).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } });
    expect(env.KUBERNETES_OWNER_DEPLOYMENT).toBe(dep!.metadata.name);
    expect(c.readinessProbe.httpGet.path).toBe("/health");
    expect(c.livenessProbe.httpGet.path).toBe("/health");
    expect(pod.serviceAccountName).toBe(find("ServiceAccount")[0]!.metadata.name);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    const [svc] = find("Service");
    expect(svc!.spec.selector).toEqual(dep!.spec.selector.matchLabels);
    expect(find("Namespace")[0]!.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });
});
