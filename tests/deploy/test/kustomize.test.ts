/**
 * The Kubernetes package under deploy/: `kubectl kustomize` of the base, of each component
 * the docs describe (alone and together) and of the example overlay; every rendered object
 * validates against the Kubernetes schemas; the Role grants exactly what the backend uses;
 * executor pods are selected by the deny-all NetworkPolicy; probes and image are right.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { Secret } from "kubernetes-models/v1/Secret";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { loadConfig } from "@code-interpreter/api";
import { validateObject } from "../../../packages/backend-k8s/test/fake-apiserver/validate.js";
import { parseSelector } from "../../../packages/backend-k8s/test/fake-apiserver/server.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const DEPLOY = join(ROOT, "deploy");

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are plain YAML data
type Obj = Record<string, any>;

/** Kinds the fake apiserver's validator does not know, checked with their generated schema validators. */
const OTHER_MODELS: Record<string, { validate(obj: unknown): void }> = {
  "policy/v1/PodDisruptionBudget": { validate: (o) => new PodDisruptionBudget(o as never).validate() },
  "v1/Secret": { validate: (o) => new Secret(o as never).validate() },
  "monitoring.coreos.com/v1/ServiceMonitor": { validate: (o) => new ServiceMonitor(o as never).validate() },
};

function render(dir: string): Obj[] {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000 });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const scratch = mkdtempSync(join(tmpdir(), "ci-kustomize-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The base plus some components (and more kustomization lines), as an operator's own overlay would. */
function renderWith(components: string[], more: string[] = []): Obj[] {
  const dir = mkdtempSync(join(scratch, "overlay-"));
  writeFileSync(
    join(dir, "kustomization.yaml"),
    [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      `resources: [${relative(dir, join(DEPLOY, "base"))}]`,
      `components: [${components.map((c) => relative(dir, join(DEPLOY, "components", c))).join(", ")}]`,
      ...more,
    ].join("\n"),
  );
  return render(dir);
}

/** What the docs (deploy/README.md) describe. */
const COMBINATIONS: Array<[string, () => Obj[]]> = [
  ["base", () => render(join(DEPLOY, "base"))],
  ["base + require-api-keys", () => renderWith(["require-api-keys"])],
  ["base + monitoring", () => renderWith(["monitoring"])],
  ["base + monitoring + monitoring-auth", () => renderWith(["monitoring", "monitoring-auth"])],
  ["base + high-availability", () => renderWith(["high-availability"])],
  ["base + separate-executor-namespace", () => renderWith(["separate-executor-namespace"])],
  [
    "base + every component",
    () =>
      renderWith([
        "require-api-keys",
        "high-availability",
        "monitoring",
        "monitoring-auth",
        "separate-executor-namespace",
      ]),
  ],
  ["overlays/production", () => render(join(DEPLOY, "overlays/production"))],
];

const rendered = new Map(COMBINATIONS.map(([name, fn]) => [name, fn()]));
const of = (name: string, kind: string): Obj[] => rendered.get(name)!.filter((o) => o.kind === kind);
const one = (name: string, kind: string): Obj => {
  const found = of(name, kind);
  expect(found, `${name}: one ${kind}`).toHaveLength(1);
  return found[0]!;
};

function grants(role: Obj): string[] {
  return (role.rules as Obj[]).flatMap((r) =>
    (r.apiGroups as string[]).flatMap((g) =>
      (r.resources as string[]).flatMap((res) =>
        (r.verbs as string[]).map(
          (v) => `${g || "core"}/${res}:${v}${r.resourceNames ? `@${r.resourceNames.join("+")}` : ""}`,
        ),
      ),
    ),
  );
}

function selectorOf(sel: Obj): (labels: Record<string, string>) => boolean {
  const text = [
    ...Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${String(v)}`),
    ...(sel.matchExpressions ?? []).map(
      (e: Obj) => `${e.key} ${e.operator.toLowerCase()} (${e.values.join(",")})`,
    ),
  ].join(",");
  return parseSelector(text)!;
}

describe.each(COMBINATIONS.map(([name]) => name))("kubectl kustomize %s", (name) => {
  const objects = rendered.get(name)!;

  it.each(objects.map((o) => [`${o.kind}/${o.metadata?.name}`, o]))(
    "%s is valid against the Kubernetes schema",
    (_id, obj) => {
      const other = OTHER_MODELS[`${obj.apiVersion}/${obj.kind}`];
      if (other) expect(() => other.validate(obj)).not.toThrow();
      else expect(validateObject(obj)).toBeNull();
    },
  );

  const API_NS = "code-interpreter";
  /** Where the API creates executor pods: KUBERNETES_EXECUTOR_NAMESPACE (a value, or its own namespace). */
  const executorNamespace = (): string => {
    const env = one(name, "Deployment").spec.template.spec.containers[0].env as Obj[];
    const e = env.find((x) => x.name === "KUBERNETES_EXECUTOR_NAMESPACE")!;
    if (e.value) return e.value as string;
    expect(e.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.namespace" } });
    return one(name, "Deployment").metadata.namespace as string;
  };

  it("the API's and the executors' namespaces enforce PodSecurity restricted; nothing lands elsewhere", () => {
    const namespaces = of(name, "Namespace");
    const names = namespaces.map((n) => n.metadata.name as string);
    expect(names).toContain(API_NS);
    expect(names).toContain(executorNamespace());
    for (const ns of namespaces) {
      expect(ns.metadata.labels, ns.metadata.name).toMatchObject({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
      });
    }
    expect(one(name, "Deployment").metadata.namespace).toBe(API_NS);
    for (const o of objects.filter((x) => x.kind !== "Namespace")) {
      expect(names, `${o.kind}/${o.metadata.name} in ${o.metadata.namespace}`).toContain(
        o.metadata.namespace,
      );
    }
  });

  it("the Roles grant nothing beyond what the backend uses, to the API's service account only", () => {
    const sa = one(name, "ServiceAccount");
    expect(one(name, "Deployment").spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(of(name, "ClusterRole")).toEqual([]);
    expect(of(name, "ClusterRoleBinding")).toEqual([]);
    const roles = of(name, "Role");
    const bindings = of(name, "RoleBinding");
    expect(bindings).toHaveLength(roles.length);
    const granted: string[] = [];
    for (const binding of bindings) {
      const ns = binding.metadata.namespace as string;
      const role = roles.find((r) => r.metadata.name === binding.roleRef.name && r.metadata.namespace === ns);
      expect(role, `Role ${binding.roleRef.name} in ${ns}`).toBeDefined();
      expect(binding.roleRef).toEqual({
        apiGroup: "rbac.authorization.k8s.io",
        kind: "Role",
        name: role!.metadata.name,
      });
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name: sa.metadata.name, namespace: API_NS },
      ]);
      expect(JSON.stringify(role)).not.toContain("*");
      granted.push(...grants(role!).map((g) => `${ns}: ${g}`));
    }
    const execNs = executorNamespace();
    const owner = of(name, "ConfigMap")[0]!.data.KUBERNETES_OWNER_DEPLOYMENT as string;
    const expected = [
      "core/pods:create",
      "core/pods:get",
      "core/pods:list",
      "core/pods:delete",
      "core/pods:patch",
      "core/pods/exec:create",
      "core/pods/exec:get",
    ].map((g) => `${execNs}: ${g}`);
    // The ownerReference needs the Deployment's uid: get on that one Deployment, nothing else.
    if (owner) expected.push(`${API_NS}: apps/deployments:get@${owner}`);
    expect(granted.sort()).toEqual(expected.sort());
  });

  it("executor pods (and only they) are selected by a deny-all NetworkPolicy in their namespace", () => {
    const execNs = executorNamespace();
    const np = one(name, "NetworkPolicy");
    expect(np.metadata.namespace).toBe(execNs);
    expect([...np.spec.policyTypes].sort()).toEqual(["Egress", "Ingress"]);
    expect(np.spec.ingress ?? []).toEqual([]);
    expect(np.spec.egress ?? []).toEqual([]);
    const matches = selectorOf(np.spec.podSelector);
    // The labels the backends put on session and one-shot pods (packages/core labels).
    expect(matches({ app: "code-interpreter", component: "session" })).toBe(true);
    expect(matches({ app: "code-interpreter", component: "executor" })).toBe(true);
    expect(matches(one(name, "Deployment").spec.template.metadata.labels)).toBe(false);
    expect(matches({ app: "other", component: "session" })).toBe(false);
  });

  it("the API runs the image this repository builds, with /livez liveness and /readyz readiness", () => {
    const dep = one(name, "Deployment");
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    // images/api/build-offline.sh and the Dockerfile's documented tag: code-interpreter-api.
    expect(c.image).toMatch(/(^|\/)code-interpreter-api:[\w.-]+$/);
    expect(c.livenessProbe.httpGet.path).toBe("/livez");
    expect(c.startupProbe.httpGet.path).toBe("/livez");
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
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
    const svc = one(name, "Service");
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
  });

  it("the ConfigMap the Deployment reads is a configuration the API accepts, on the kubernetes backend", () => {
    const dep = one(name, "Deployment");
    const c = dep.spec.template.spec.containers[0];
    const cmName = c.envFrom[0].configMapRef.name as string;
    const cm = of(name, "ConfigMap").find((m) => m.metadata.name === cmName);
    expect(cm, `ConfigMap ${cmName}`).toBeDefined();
    const execNs = executorNamespace();
    const env = { ...(cm!.data as Record<string, string>), KUBERNETES_EXECUTOR_NAMESPACE: execNs };
    const config = loadConfig(env);
    expect(config.executorBackend).toBe("kubernetes");
    expect(config.kubernetes.namespace).toBe(execNs);
    // An ownerReference only works within one namespace.
    if (execNs === dep.metadata.namespace) expect(config.kubernetes.ownerDeployment).toBe(dep.metadata.name);
    else expect(config.kubernetes.ownerDeployment).toBeUndefined();
    const envNames = (c.env as Obj[]).map((e) => e.name as string);
    expect(envNames).toEqual(["KUBERNETES_EXECUTOR_NAMESPACE", "API_KEYS"]);
  });
});

describe("what each component changes", () => {
  it("require-api-keys: the pod does not start without the API keys Secret", () => {
    const keyRef = (n: string) =>
      (one(n, "Deployment").spec.template.spec.containers[0].env as Obj[]).find((e) => e.name === "API_KEYS")!
        .valueFrom.secretKeyRef;
    expect(keyRef("base")).toEqual({ name: "code-interpreter-api-keys", key: "API_KEYS", optional: true });
    expect(keyRef("base + require-api-keys")).toMatchObject({
      name: "code-interpreter-api-keys",
      optional: false,
    });
  });

  it("monitoring: the ServiceMonitor selects the API Service and scrapes its named port at /metrics", () => {
    const sm = one("base + monitoring", "ServiceMonitor");
    const svc = one("base + monitoring", "Service");
    expect(selectorOf(sm.spec.selector)(svc.metadata.labels)).toBe(true);
    expect(sm.spec.endpoints).toEqual([expect.objectContaining({ port: "http", path: "/metrics" })]);
    expect(svc.spec.ports.map((p: Obj) => p.name)).toContain("http");
    expect(sm.spec.endpoints[0].authorization).toBeUndefined();
    expect(
      one("base + monitoring + monitoring-auth", "ServiceMonitor").spec.endpoints[0].authorization,
    ).toEqual({
      type: "Bearer",
      credentials: { name: "code-interpreter-api-keys", key: "METRICS_API_KEY" },
    });
  });

  it("high-availability: 2 replicas spread over nodes and a PodDisruptionBudget for the API pods", () => {
    const dep = one("base + high-availability", "Deployment");
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.template.spec.topologySpreadConstraints[0].topologyKey).toBe("kubernetes.io/hostname");
    const pdb = one("base + high-availability", "PodDisruptionBudget");
    expect(selectorOf(pdb.spec.selector)(dep.spec.template.metadata.labels)).toBe(true);
  });

  it("overlays/production: registry image, replicas, merged limits and API pod resources", () => {
    const dep = one("overlays/production", "Deployment");
    expect(dep.spec.replicas).toBe(3);
    expect(dep.spec.template.spec.containers[0].image).toBe(
      "registry.example.com/code-interpreter-api:1.0.0",
    );
    expect(dep.spec.template.spec.containers[0].resources.limits).toEqual({ cpu: "2", memory: "1Gi" });
    const cm = one("overlays/production", "ConfigMap");
    expect(cm.data).toMatchObject({
      EXECUTOR_BACKEND: "kubernetes",
      EXECUTOR_IMAGE: "registry.example.com/code-interpreter-executor:1.0.0",
      MEMORY_LIMIT_MB: "512",
      FILE_SERVICE_URL: expect.stringMatching(/^http/),
      WARM_POOL_SIZE: "4",
    });
  });

  it("the warm pool size is a ConfigMap value an overlay sets without editing deploy/", () => {
    const cmOf = (objs: Obj[]) => objs.find((o) => o.kind === "ConfigMap")!.data as Record<string, string>;
    expect(loadConfig(cmOf(render(join(DEPLOY, "base")))).warmPool).toMatchObject({
      size: 2,
      maxAgeSeconds: 600,
    });
    const objs = renderWith(
      [],
      [
        "configMapGenerator:",
        "  - name: code-interpreter-api-config",
        "    behavior: merge",
        "    literals: [WARM_POOL_SIZE=7, WARM_POOL_MAX_AGE_SECONDS=120]",
      ],
    );
    expect(loadConfig(cmOf(objs)).warmPool).toMatchObject({ size: 7, maxAgeSeconds: 120 });
    // The Deployment reads the merged ConfigMap (its name carries the new content's hash).
    const dep = objs.find((o) => o.kind === "Deployment")!;
    expect(dep.spec.template.spec.containers[0].envFrom[0].configMapRef.name).toBe(
      objs.find((o) => o.kind === "ConfigMap")!.metadata.name,
    );
  });
});

describe("deploy/ files", () => {
  it("every kustomization lists every manifest in its directory (nothing forgotten)", () => {
    const files = (readdirSync(DEPLOY, { recursive: true }) as string[]).filter((f) => /\.ya?ml$/.test(f));
    for (const k of files.filter((f) => /kustomization\.ya?ml$/.test(f))) {
      const dir = dirname(k);
      const spec = parse(readFileSync(join(DEPLOY, k), "utf8")) as Obj;
      const listed = ((spec.resources ?? []) as string[]).filter((r) => /\.ya?ml$/.test(r));
      const siblings = files.filter((f) => dirname(f) === dir && f !== k).map((f) => relative(dir, f));
      expect(listed.sort(), k).toEqual(siblings.sort());
    }
  });

  it("the image name the manifests use is the tag the API image build produces", () => {
    expect(readFileSync(join(ROOT, "images/api/build-offline.sh"), "utf8")).toContain(
      "${API_IMAGE:-code-interpreter-api:latest}",
    );
    expect(one("base", "Deployment").spec.template.spec.containers[0].image).toBe(
      "code-interpreter-api:latest",
    );
  });
});
