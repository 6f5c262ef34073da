/**
 * A wire-level fake Kubernetes API server for tests. It speaks real HTTP/JSON and the real
 * exec WebSocket protocol, so the backend under test uses the unmodified
 * @kubernetes/client-node. What it implements is the part of the API the backend uses, and
 * what a real node does to the pods:
 *
 * - pods: create (validated like a real apiserver: OpenAPI schema + Go-side rules → 422,
 *   409 AlreadyExists; requests defaulted from limits), get, list (labelSelector, limit),
 *   merge/strategic-merge patch of metadata (spec changes → 422, except lowering
 *   activeDeadlineSeconds), delete (uid preconditions → 409, 404 NotFound, graceful:
 *   deletionTimestamp first, object gone once the container is);
 * - admission after validation: Pod Security (`namespaces[ns].podSecurity`, the 403 of
 *   kube-apiserver's PodSecurity plugin), ServiceAccount admission ("error looking up service
 *   account"), RBAC denials on demand (`forbid`), 401 for a wrong token;
 * - `GET/POST .../pods/{name}/exec` upgraded to WebSocket with `v5.channel.k8s.io` (with the
 *   close-stream frame: 255,0 half-closes stdin) or `v4.channel.k8s.io`, negotiated like a
 *   real apiserver: the first protocol the client offers that the server speaks;
 *   `execProtocols` makes it speak only v4 (an older cluster);
 * - `GET/DELETE /apis/apps/v1/.../deployments/{name}` for seeded Deployments (deleting one
 *   garbage-collects the pods whose ownerReferences name it), `GET /version`;
 * - `loseNextPatchAnswer()`: a patch applied whose answer never arrives (connection dropped);
 * - `hang()` / `resume()`: connections are accepted but nothing is answered, like a
 *   SIGSTOPped apiserver.
 *
 * Each pod is backed by a real Docker container on the local engine (the pod's image,
 * command and args, securityContext user, read-only root, no network), so exec really runs
 * code. A "scheduler" places pods against the configured node size (`node`: CPU/memory
 * requests; a pod that does not fit stays Pending with `PodScheduled=False/Unschedulable`
 * and the scheduler's message, and is placed once room frees up). A "kubelet" loop moves
 * pods Pending → Running → Succeeded/Failed, enforces activeDeadlineSeconds, reports
 * ErrImagePull/ImagePullBackOff for images the engine does not have (nothing is ever
 * pulled), gives each pod an IP from TEST-NET-1 (192.0.2.0/24, never a private range), and
 * mounts emptyDirs like a node: `medium: Memory` → a tmpfs sized min(sizeLimit, memory
 * limit); otherwise a disk-backed Docker volume with no size, whose usage it measures and
 * evicts the pod (`Failed/Evicted`) some time after it passes `sizeLimit`. downwardAPI
 * volumes are rendered like the kubelet's AtomicWriter (`key="value"` lines, Go-quoted, in
 * a timestamped dir that a `..data` symlink swap makes current) into a host directory
 * bind-mounted read-only, and re-rendered after every patch (`downwardApiDelayMs` later;
 * a real kubelet takes up to its sync period). Failure knobs let
 * tests make pods stay Pending, be unschedulable, fail to pull, or make deletes fail.
 *
 * Every container and volume carries `fake-k8s=1` and `fake-k8s-run=<runId>`; stop() removes
 * exactly this run's.
 */
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { WebSocketServer, type WebSocket } from "ws";
import { KubeConfig } from "@kubernetes/client-node";
import { parseQuantity, statusObject, validateObject, type K8sStatus } from "./validate.js";
import {
  podSecurityRejection,
  rbacRejection,
  serviceAccountRejection,
  type PodSecurityLevel,
} from "./admission.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- pods here are plain JSON objects */
type Json = any;

export type PodBehavior = "normal" | "pending" | "unschedulable" | "image-pull-error";

export interface RequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string[]>;
  contentType?: string;
}

interface PodRecord {
  ns: string;
  name: string;
  obj: Json;
  container?: Docker.Container;
  /** Docker volumes backing this pod's disk emptyDirs. */
  volumes: string[];
  /** Host directories of this pod's downwardAPI volumes (bind-mounted read-only). */
  downwardApi: Array<{ dir: string; volume: Json }>;
  deadlineTimer?: NodeJS.Timeout;
  evictionTimer?: NodeJS.Timeout;
  /** Placed on the node: its requests count against the node's size until it is gone. */
  bound: boolean;
  stopped: boolean;
}

/** What a namespace enforces at admission (unlisted namespaces: none, with a "default" SA). */
export interface FakeNamespace {
  /** `pod-security.kubernetes.io/enforce` of the namespace (default "privileged"). */
  podSecurity?: PodSecurityLevel;
  /** ServiceAccounts that exist (default ["default"]). */
  serviceAccounts?: string[];
}

/** The allocatable size of the one node; unset fields are unlimited. */
export interface FakeNode {
  cpu?: string;
  memory?: string;
  pods?: number;
}

export const EXEC_V5 = "v5.channel.k8s.io";
export const EXEC_V4 = "v4.channel.k8s.io";

export interface FakeApiServerOptions {
  token?: string;
  /** Decides how the fake kubelet treats a new pod (default: "normal" for all). */
  behavior?: (pod: Json) => PodBehavior;
  /** Extra delay before a pod starts running (simulates scheduling + container start). */
  startDelayMs?: number;
  docker?: Docker;
  namespaces?: Record<string, FakeNamespace>;
  node?: FakeNode;
  /** Exec subprotocols the server speaks (default v5 and v4; `[EXEC_V4]` is a cluster < 1.30). */
  execProtocols?: string[];
  /** How often the kubelet measures disk-backed emptyDirs (default 1000 ms). */
  evictionIntervalMs?: number;
  /** How long after a patch the kubelet rewrites the pod's downwardAPI files (default 200 ms). */
  downwardApiDelayMs?: number;
}

/** The user the RBAC denials name (the API's ServiceAccount in deploy/). */
export const FAKE_USER = "system:serviceaccount:code-interpreter:code-interpreter-api";

export class FakeApiServer {
  readonly runId = randomUUID().slice(0, 8);
  readonly token: string;
  readonly requests: RequestLogEntry[] = [];
  /** Names of the pods this server accepted, in order ("namespace/name"). */
  readonly created: string[] = [];
  /** The subprotocol of every exec connection, in order. */
  readonly execProtocolsNegotiated: string[] = [];
  behavior: (pod: Json) => PodBehavior;
  execProtocols: string[];
  private readonly docker: Docker;
  private readonly pods = new Map<string, PodRecord>();
  private readonly deployments = new Map<string, Json>();
  private readonly deleteFailures = new Map<string, Array<"500" | "404-race">>();
  /** Pods whose next patch is applied but never answered (the connection drops). */
  private readonly lostPatchAnswers = new Set<string>();
  private readonly forbidden = new Set<string>();
  private server: Server | null = null;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => {
      for (const p of protocols) if (this.execProtocols.includes(p)) return p;
      return false;
    },
  });
  private rv = 1;
  private ipCounter = 0;
  private readonly sockets = new Set<Duplex>();
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  port = 0;

  constructor(private readonly opts: FakeApiServerOptions = {}) {
    this.token = opts.token ?? `fake-token-${this.runId}`;
    this.behavior = opts.behavior ?? (() => "normal");
    this.execProtocols = opts.execProtocols ?? [EXEC_V5, EXEC_V4];
    this.docker = opts.docker ?? new Docker();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.whenAnswering()
        .then(() => this.handle(req, res))
        .catch((err: unknown) => {
          if (!res.headersSent) this.send(res, statusObject(500, "InternalError", String(err)));
        });
    });
    server.on("upgrade", (req, socket: Duplex, head) => {
      this.whenAnswering()
        .then(() => this.handleUpgrade(req, socket, head))
        .catch(() => socket.destroy());
    });
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** A KubeConfig for the real client: this server as the cluster, a bearer-token user. */
  kubeConfig(namespace = "default"): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "fake-user", token: this.token }],
      contexts: [{ name: "fake", cluster: "fake", user: "fake-user", namespace }],
      currentContext: "fake",
    });
    return kc;
  }

  /**
   * From now on the server accepts connections and reads requests but answers nothing (a
   * SIGSTOPped apiserver); `resume()` answers everything that waited.
   */
  hang(): void {
    if (this.gate) return;
    let open = () => undefined as void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  resume(): void {
    const g = this.gate;
    this.gate = null;
    g?.open();
  }

  private whenAnswering(): Promise<void> {
    return this.gate ? this.gate.promise : Promise.resolve();
  }

  /** Stops the server and removes every container this run created. */
  async stop(): Promise<void> {
    for (const rec of this.pods.values()) {
      if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
      if (rec.evictionTimer) clearTimeout(rec.evictionTimer);
      rec.stopped = true;
    }
    for (const c of this.wss.clients) c.terminate();
    if (this.server) {
      const s = this.server;
      this.server = null;
      for (const sock of this.sockets) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    this.resume();
    await this.removeRunContainers();
  }

  async removeRunContainers(): Promise<void> {
    const filters = { label: ["fake-k8s=1", `fake-k8s-run=${this.runId}`] };
    const list = await this.docker.listContainers({ all: true, filters });
    await Promise.all(
      list.map((c) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    const vols = await this.docker.listVolumes({ filters }).catch(() => ({ Volumes: [] }));
    await Promise.all(
      (vols.Volumes ?? []).map((v) =>
        this.docker
          .getVolume(v.Name)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  }

  // ------------------------------------------------------------------ knobs / inspection

  seedDeployment(namespace: string, name: string, uid = randomUUID()): Json {
    const d = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name,
        namespace,
        uid,
        resourceVersion: String(this.rv++),
        creationTimestamp: new Date().toISOString(),
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: "api", image: "x" }] },
        },
      },
    };
    this.deployments.set(`${namespace}/${name}`, d);
    return d;
  }

  /**
   * The caller's Role no longer allows `verb` on `resource` (e.g. "create", "pods" or
   * "get", "pods/exec"): such requests get the RBAC authorizer's 403.
   */
  forbid(verb: string, resource: string): void {
    this.forbidden.add(`${verb} ${resource}`);
  }

  /**
   * Deletes a seeded Deployment; like the garbage collector, pods whose ownerReferences
   * name only owners that are gone are deleted shortly after (background propagation).
   */
  deleteDeployment(namespace: string, name: string): boolean {
    const gone = this.deployments.delete(`${namespace}/${name}`);
    if (gone) this.scheduleGc();
    return gone;
  }

  private scheduleGc(): void {
    setTimeout(() => this.collectGarbage(), 200).unref();
  }

  private collectGarbage(): void {
    const uids = new Set([...this.deployments.values()].map((d: Json) => d.metadata.uid as string));
    for (const [key, rec] of this.pods) {
      const refs: Json[] = rec.obj.metadata.ownerReferences ?? [];
      if (refs.length === 0 || refs.some((r) => uids.has(r.uid)) || rec.obj.metadata.deletionTimestamp)
        continue;
      this.markDeleted(rec, 30);
      void this.stopRecord(rec).finally(() => {
        if (this.pods.get(key) === rec) this.removeRecord(key);
      });
    }
  }

  /** The next delete of this pod answers 500, or deletes it first and answers 404 (a race). */
  failNextDelete(namespace: string, name: string, kind: "500" | "404-race"): void {
    const key = `${namespace}/${name}`;
    this.deleteFailures.set(key, [...(this.deleteFailures.get(key) ?? []), kind]);
  }

  /**
   * The next patch of this pod is applied, then its connection is dropped without an answer:
   * what a client sees when the network or the apiserver fails after the write.
   */
  loseNextPatchAnswer(namespace: string, name: string): void {
    this.lostPatchAnswers.add(`${namespace}/${name}`);
  }

  getPod(namespace: string, name: string): Json | undefined {
    const rec = this.pods.get(`${namespace}/${name}`);
    return rec ? structuredClone(rec.obj) : undefined;
  }

  podNames(namespace?: string): string[] {
    return [...this.pods.values()].filter((r) => !namespace || r.ns === namespace).map((r) => r.name);
  }

  /** Puts a pod object straight into the store (no container): for reaper tests. */
  injectPod(obj: Json, phase = "Running"): void {
    const ns = obj.metadata.namespace ?? "default";
    const rec: PodRecord = {
      ns,
      name: obj.metadata.name,
      obj: {
        ...structuredClone(obj),
        metadata: {
          ...obj.metadata,
          namespace: ns,
          uid: randomUUID(),
          resourceVersion: String(this.rv++),
          creationTimestamp: new Date().toISOString(),
        },
        status: { phase },
      },
      volumes: [],
      downwardApi: [],
      bound: false,
      stopped: true,
    };
    this.pods.set(`${ns}/${rec.name}`, rec);
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  // ------------------------------------------------------------------ HTTP

  private send(res: ServerResponse, body: Json, code = (body as K8sStatus).code ?? 200): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`;
  }

  private log(req: IncomingMessage, url: URL): void {
    const query: Record<string, string[]> = {};
    for (const k of new Set(url.searchParams.keys())) query[k] = url.searchParams.getAll(k);
    const entry: RequestLogEntry = { method: req.method ?? "GET", path: url.pathname, query };
    if (req.headers["content-type"]) entry.contentType = req.headers["content-type"];
    this.requests.push(entry);
  }

  private async readBody(req: IncomingMessage): Promise<Json> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    const text = Buffer.concat(parts).toString();
    if (!text) return undefined;
    return JSON.parse(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    this.log(req, url);
    if (!this.authorized(req)) {
      this.send(res, statusObject(401, "Unauthorized", "Unauthorized"));
      return;
    }
    const method = req.method ?? "GET";
    const p = url.pathname;
    const denied = this.rbacDenial(method, p);
    if (denied) {
      this.send(res, denied);
      return;
    }
    if (p === "/version" && method === "GET") {
      this.send(res, { major: "1", minor: "30", gitVersion: "v1.30.0-fake", platform: "linux/amd64" });
      return;
    }
    let m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)$/.exec(p);
    if (m && method === "GET") {
      const d = this.deployments.get(`${m[1]}/${m[2]}`);
      if (!d) this.send(res, notFound("deployments.apps", m[2]!));
      else this.send(res, d);
      return;
    }
    if (m && method === "DELETE") {
      const d = this.deployments.get(`${m[1]}/${m[2]}`);
      if (!d || !this.deleteDeployment(m[1]!, m[2]!)) this.send(res, notFound("deployments.apps", m[2]!));
      else
        this.send(res, {
          ...statusObject(200, "", ""),
          status: "Success",
          details: { name: m[2], uid: d.metadata.uid },
        });
      return;
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p);
    if (m) {
      const ns = decodeURIComponent(m[1]!);
      if (method === "GET") return this.listPods(res, ns, url);
      if (method === "POST") return this.createPod(res, ns, await this.readBody(req).catch(() => null));
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p);
    if (m) {
      const ns = decodeURIComponent(m[1]!);
      const name = decodeURIComponent(m[2]!);
      if (method === "GET") {
        const rec = this.pods.get(`${ns}/${name}`);
        this.send(res, rec ? rec.obj : notFound("pods", name));
        return;
      }
      if (method === "DELETE")
        return this.deletePod(res, ns, name, await this.readBody(req).catch(() => undefined), url);
      if (method === "PATCH") {
        return this.patchPod(
          res,
          ns,
          name,
          req.headers["content-type"] ?? "",
          await this.readBody(req).catch(() => null),
        );
      }
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(p);
    if (m) {
      // A plain request (no upgrade) to exec: real apiservers answer 400 for a missing upgrade.
      this.send(res, statusObject(400, "BadRequest", "Upgrade request required"));
      return;
    }
    this.send(res, statusObject(404, "NotFound", "the server could not find the requested resource"));
  }

  /** RBAC: the 403 for a request whose verb/resource was `forbid`den, else null. */
  private rbacDenial(method: string, path: string): K8sStatus | null {
    if (this.forbidden.size === 0) return null;
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?(?:\/(exec))?$/.exec(path);
    if (!m) return null;
    const [, ns, name, sub] = m as unknown as [string, string, string | undefined, string | undefined];
    const verbs: Record<string, string> = name
      ? { GET: "get", DELETE: "delete", PATCH: "patch", PUT: "update", POST: "create" }
      : { GET: "list", POST: "create", DELETE: "deletecollection" };
    const verb = verbs[method] ?? method.toLowerCase();
    const resource = sub ? `pods/${sub}` : "pods";
    if (!this.forbidden.has(`${verb} ${resource}`)) return null;
    return rbacRejection({
      user: FAKE_USER,
      verb,
      resource: "pods",
      subresource: sub,
      namespace: decodeURIComponent(ns),
      name: name ? decodeURIComponent(name) : undefined,
    });
  }

  private listPods(res: ServerResponse, ns: string, url: URL): void {
    const selector = parseSelector(url.searchParams.get("labelSelector") ?? "");
    if (!selector) {
      this.send(
        res,
        statusObject(
          400,
          "BadRequest",
          `unable to parse requirement: ${url.searchParams.get("labelSelector")}`,
        ),
      );
      return;
    }
    let items = [...this.pods.values()]
      .filter((r) => r.ns === ns && selector(r.obj.metadata.labels ?? {}))
      .map((r) => r.obj);
    items.sort((a: Json, b: Json) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
    const limit = Number(url.searchParams.get("limit") ?? 0);
    let cont: string | undefined;
    if (limit > 0 && items.length > limit) {
      items = items.slice(0, limit);
      cont = "fake-continue";
    }
    this.send(res, {
      apiVersion: "v1",
      kind: "PodList",
      metadata: { resourceVersion: String(this.rv), ...(cont ? { continue: cont } : {}) },
      items,
    });
  }

  private createPod(res: ServerResponse, ns: string, body: Json): void {
    if (!body || typeof body !== "object") {
      this.send(res, statusObject(400, "BadRequest", "the body of the request was in an unknown format"));
      return;
    }
    if (body.metadata?.namespace && body.metadata.namespace !== ns) {
      this.send(
        res,
        statusObject(
          400,
          "BadRequest",
          "the namespace of the provided object does not match the namespace sent on the request",
        ),
      );
      return;
    }
    // Admission in kube-apiserver's order: the ServiceAccount plugin (mutating) before
    // validation, Pod Security (validating) after it.
    const nsConf = this.opts.namespaces?.[ns] ?? {};
    const account: string = body.spec?.serviceAccountName ?? body.spec?.serviceAccount ?? "default";
    if (!(nsConf.serviceAccounts ?? ["default"]).includes(account)) {
      this.send(res, serviceAccountRejection(body, ns, account));
      return;
    }
    const invalid = validateObject(body);
    if (invalid) {
      this.send(res, invalid);
      return;
    }
    const rejected = podSecurityRejection(body, nsConf.podSecurity ?? "privileged");
    if (rejected) {
      this.send(res, rejected);
      return;
    }
    const name: string = body.metadata.name;
    const key = `${ns}/${name}`;
    if (this.pods.has(key)) {
      this.send(
        res,
        statusObject(409, "AlreadyExists", `pods "${name}" already exists`, { name, kind: "pods" }),
      );
      return;
    }
    const obj = structuredClone(body);
    obj.metadata = {
      ...obj.metadata,
      namespace: ns,
      uid: randomUUID(),
      resourceVersion: String(this.rv++),
      creationTimestamp: new Date().toISOString(),
    };
    obj.spec.schedulerName ??= "default-scheduler";
    obj.spec.serviceAccountName = account;
    // Defaulting: a resource with a limit but no request is requested at its limit.
    for (const c of [...(obj.spec.initContainers ?? []), ...obj.spec.containers]) {
      const lim = c.resources?.limits;
      if (!lim) continue;
      c.resources.requests = { ...lim, ...(c.resources.requests ?? {}) };
    }
    obj.status = { phase: "Pending", qosClass: qosClass(obj.spec.containers) };
    const rec: PodRecord = { ns, name, obj, volumes: [], downwardApi: [], bound: false, stopped: false };
    this.pods.set(key, rec);
    this.created.push(key);
    this.send(res, obj, 201);
    if (obj.metadata.ownerReferences?.length) this.scheduleGc();
    void this.kubelet(rec).catch((err: unknown) => {
      this.setStatus(rec, { phase: "Failed", reason: "FakeKubeletError", message: String(err) });
    });
  }

  private patchPod(res: ServerResponse, ns: string, name: string, contentType: string, patch: Json): void {
    const rec = this.pods.get(`${ns}/${name}`);
    if (!rec) {
      this.send(res, notFound("pods", name));
      return;
    }
    const ct = contentType.split(";")[0]!.trim();
    if (ct !== "application/merge-patch+json" && ct !== "application/strategic-merge-patch+json") {
      this.send(
        res,
        statusObject(
          415,
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got ${ct})`,
        ),
      );
      return;
    }
    if (!patch || typeof patch !== "object") {
      this.send(res, statusObject(400, "BadRequest", "invalid patch"));
      return;
    }
    const wantRv = patch.metadata?.resourceVersion;
    if (wantRv !== undefined && wantRv !== rec.obj.metadata.resourceVersion) {
      this.send(
        res,
        statusObject(
          409,
          "Conflict",
          `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          { name, kind: "pods" },
        ),
      );
      return;
    }
    const next = mergePatch(structuredClone(rec.obj), patch);
    const oldAds = rec.obj.spec.activeDeadlineSeconds;
    const newAds = next.spec?.activeDeadlineSeconds;
    if (newAds !== oldAds && typeof newAds === "number" && typeof oldAds === "number" && newAds > oldAds) {
      this.send(
        res,
        statusObject(
          422,
          "Invalid",
          `Pod "${name}" is invalid: spec.activeDeadlineSeconds: Invalid value: ${newAds}: must be less than or equal to previous value`,
          { name, kind: "pods" },
        ),
      );
      return;
    }
    const specWithoutAds = (spec: Json) => JSON.stringify({ ...spec, activeDeadlineSeconds: undefined });
    if (
      specWithoutAds(next.spec) !== specWithoutAds(rec.obj.spec) ||
      (oldAds !== undefined && newAds === undefined)
    ) {
      this.send(
        res,
        statusObject(
          422,
          "Invalid",
          `Pod "${name}" is invalid: spec: Forbidden: pod updates may not change fields other than \`spec.containers[*].image\`, \`spec.activeDeadlineSeconds\`, \`spec.tolerations\``,
          { name, kind: "pods" },
        ),
      );
      return;
    }
    for (const f of ["uid", "name", "namespace", "creationTimestamp"]) {
      if (next.metadata[f] !== rec.obj.metadata[f]) {
        this.send(
          res,
          statusObject(
            422,
            "Invalid",
            `Pod "${name}" is invalid: metadata.${f}: Invalid value: field is immutable`,
          ),
        );
        return;
      }
    }
    next.status = rec.obj.status;
    const invalid = validateObject(next);
    if (invalid) {
      this.send(res, invalid);
      return;
    }
    next.metadata.resourceVersion = String(this.rv++);
    rec.obj = next;
    if (newAds !== oldAds) this.armDeadline(rec);
    if (rec.downwardApi.length) {
      const t = setTimeout(() => {
        if (!rec.stopped) this.renderDownwardApi(rec);
      }, this.opts.downwardApiDelayMs ?? 200);
      t.unref();
    }
    if (this.lostPatchAnswers.delete(`${ns}/${name}`)) {
      res.socket?.destroy();
      return;
    }
    this.send(res, rec.obj);
  }

  private deletePod(res: ServerResponse, ns: string, name: string, body: Json, url: URL): void {
    const key = `${ns}/${name}`;
    const failures = this.deleteFailures.get(key);
    const failure = failures?.shift();
    if (failures && failures.length === 0) this.deleteFailures.delete(key);
    const rec = this.pods.get(key);
    if (failure === "500") {
      this.send(
        res,
        statusObject(
          500,
          "InternalError",
          "Internal error occurred: etcdserver: request timed out (injected)",
        ),
      );
      return;
    }
    if (failure === "404-race" && rec) {
      this.removeRecord(key);
      void this.stopRecord(rec);
    }
    if (!rec || failure === "404-race") {
      this.send(res, notFound("pods", name));
      return;
    }
    const uid = body?.preconditions?.uid;
    if (uid && uid !== rec.obj.metadata.uid) {
      this.send(
        res,
        statusObject(
          409,
          "Conflict",
          `Operation cannot be fulfilled on Pod "${name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${rec.obj.metadata.uid}`,
        ),
      );
      return;
    }
    const grace = Number(body?.gracePeriodSeconds ?? url.searchParams.get("gracePeriodSeconds") ?? 30);
    this.markDeleted(rec, grace);
    this.send(res, rec.obj);
    // The "kubelet" stops the container; the object goes once it is gone (grace 0: at once).
    if (grace === 0) this.removeRecord(key);
    void this.stopRecord(rec).finally(() => {
      if (this.pods.get(key) === rec) this.removeRecord(key);
    });
  }

  private markDeleted(rec: PodRecord, grace: number): void {
    if (rec.obj.metadata.deletionTimestamp) return;
    rec.obj.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString();
    rec.obj.metadata.deletionGracePeriodSeconds = grace;
    rec.obj.metadata.resourceVersion = String(this.rv++);
  }

  /** The object leaves the store; its requests no longer hold room on the node. */
  private removeRecord(key: string): void {
    const rec = this.pods.get(key);
    this.pods.delete(key);
    if (rec?.bound) {
      rec.bound = false;
      this.retryScheduling();
    }
  }

  // ------------------------------------------------------------------ exec

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    this.log(req, url);
    const reject = (s: K8sStatus) => {
      const text = JSON.stringify(s);
      socket.end(
        `HTTP/1.1 ${s.code} ${s.reason ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    };
    if (!this.authorized(req)) return reject(statusObject(401, "Unauthorized", "Unauthorized"));
    const denied = this.rbacDenial(req.method === "POST" ? "POST" : "GET", url.pathname);
    if (denied) return reject(denied);
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    if (!m) return reject(statusObject(404, "NotFound", "the server could not find the requested resource"));
    const rec = this.pods.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`);
    if (!rec) return reject(notFound("pods", decodeURIComponent(m[2]!)));
    const command = url.searchParams.getAll("command");
    if (command.length === 0)
      return reject(statusObject(400, "BadRequest", "you must specify at least 1 command"));
    const containerName = url.searchParams.get("container") ?? rec.obj.spec.containers[0].name;
    if (!rec.obj.spec.containers.some((c: Json) => c.name === containerName)) {
      return reject(
        statusObject(400, "BadRequest", `container ${containerName} is not valid for pod ${rec.name}`),
      );
    }
    if (rec.obj.status.phase !== "Running" || !rec.container || rec.obj.metadata.deletionTimestamp) {
      return reject(
        statusObject(
          400,
          "BadRequest",
          `unable to upgrade connection: container not found ("${containerName}")`,
        ),
      );
    }
    const wantStdin = url.searchParams.get("stdin") === "true";
    const protocols = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((s) => s.trim());
    if (!protocols.some((p) => this.execProtocols.includes(p))) {
      return reject(
        statusObject(
          400,
          "BadRequest",
          `unable to upgrade connection: none of the requested protocols are supported (want one of ${this.execProtocols.join(", ")})`,
        ),
      );
    }
    const container = rec.container;
    const user = containerUser(rec.obj, containerName);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.execProtocolsNegotiated.push(ws.protocol);
      void this.runExec(ws, container, command, wantStdin, user);
    });
  }

  private async runExec(
    ws: WebSocket,
    container: Docker.Container,
    cmd: string[],
    stdin: boolean,
    user: string,
  ): Promise<void> {
    // A hung apiserver relays nothing, not even on exec streams already open: while hung,
    // what the command writes waits (in order) until resume().
    const relay = (f: () => void) => {
      if (this.gate) void this.gate.promise.then(() => relay(f));
      else f();
    };
    const sendFrame = (channel: number, data: Buffer) => {
      if (data.length === 0) return;
      const frame = Buffer.allocUnsafe(data.length + 1);
      frame[0] = channel;
      data.copy(frame, 1);
      relay(() => {
        if (ws.readyState === ws.OPEN) ws.send(frame);
      });
    };
    const finish = (status: Json) => {
      sendFrame(3, Buffer.from(JSON.stringify(status)));
      relay(() => {
        if (ws.readyState === ws.OPEN) ws.close(1000);
      });
    };
    // Frames may arrive before the Docker exec is attached: queue them until it is. `null`
    // is the end of stdin (v5's close-stream frame: channel 255, then the stream number).
    const v5 = ws.protocol === EXEC_V5;
    const pending: Array<Buffer | null> = [];
    let stdinSink: ((b: Buffer | null) => void) | null = null;
    let stdinClosed = false;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const buf = isBinary ? data : Buffer.from(data.toString());
      if (buf.length === 0 || !stdin || stdinClosed) return;
      let payload: Buffer | null;
      if (v5 && buf[0] === 255 && buf.length >= 2) {
        if (buf[1] !== 0) return;
        stdinClosed = true;
        payload = null;
      } else if (buf[0] === 0) {
        payload = buf.subarray(1);
      } else {
        return;
      }
      if (stdinSink) stdinSink(payload);
      else pending.push(payload);
    });
    let stream: Duplex;
    let exec: Docker.Exec;
    try {
      exec = await container.exec({
        Cmd: cmd,
        AttachStdin: stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        User: user,
      });
      stream = (await exec.start({ hijack: true, stdin })) as unknown as Duplex;
    } catch (err) {
      finish({ metadata: {}, status: "Failure", message: String(err), reason: "InternalError", code: 500 });
      return;
    }
    const out = new PassThrough();
    const errOut = new PassThrough();
    out.on("data", (b: Buffer) => sendFrame(1, b));
    errOut.on("data", (b: Buffer) => sendFrame(2, b));
    this.docker.modem.demuxStream(stream, out, errOut);
    stdinSink = (b) => {
      if (b === null) stream.end();
      else stream.write(b);
    };
    for (const b of pending.splice(0)) stdinSink(b);
    ws.on("close", () => stream.destroy());
    stream.on("error", () => undefined);
    await new Promise<void>((resolve) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
    });
    // The engine may report the exec as running for a while after its streams closed (much
    // longer on a loaded machine): poll with a deadline, not a fixed number of tries.
    let code: number | null = null;
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const info = await exec.inspect().catch(() => null);
      if (!info) break;
      if (!info.Running) {
        code = info.ExitCode;
        break;
      }
      await sleep(20);
    }
    if (code === 0) finish({ metadata: {}, status: "Success" });
    else if (code === null) {
      finish({
        metadata: {},
        status: "Failure",
        message: "error executing command: exit status unknown",
        reason: "InternalError",
      });
    } else {
      finish({
        metadata: {},
        status: "Failure",
        message: `command terminated with non-zero exit code: error executing command [${cmd.slice(0, 2).join(" ")} ...], exit code ${code}`,
        reason: "NonZeroExitCode",
        details: { causes: [{ reason: "ExitCode", message: String(code) }] },
      });
    }
  }

  // ------------------------------------------------------------------ fake kubelet

  private setStatus(rec: PodRecord, status: Json): void {
    rec.obj.status = { ...rec.obj.status, ...status };
    rec.obj.metadata.resourceVersion = String(this.rv++);
  }

  private containerStatus(c: Json, state: Json, ready = false): Json {
    return {
      name: c.name,
      image: c.image,
      imageID: "",
      ready,
      restartCount: 0,
      started: !!state.running,
      state,
    };
  }

  private async kubelet(rec: PodRecord): Promise<void> {
    const pod = rec.obj;
    const behavior = this.behavior(pod);
    const containers: Json[] = pod.spec.containers;
    if (behavior === "unschedulable") {
      this.setStatus(rec, {
        conditions: [
          {
            type: "PodScheduled",
            status: "False",
            reason: "Unschedulable",
            message:
              "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
            lastTransitionTime: isoNow(),
          },
        ],
      });
      return;
    }
    if (!this.trySchedule(rec)) return;
    this.setStatus(rec, {
      conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: isoNow() }],
      containerStatuses: containers.map((c) =>
        this.containerStatus(c, { waiting: { reason: "ContainerCreating" } }),
      ),
    });
    if (behavior === "pending") return;
    await this.runPod(rec);
  }

  // ------------------------------------------------------------------ fake scheduler

  /** Pods the scheduler could not place yet, in arrival order. */
  private readonly unscheduled: PodRecord[] = [];

  /**
   * Places the pod on the node if its requests fit next to the pods already bound there;
   * otherwise marks it Unschedulable with the scheduler's message and keeps it for a retry.
   */
  private trySchedule(rec: PodRecord): boolean {
    const node = this.opts.node;
    if (!node) {
      rec.bound = true;
      return true;
    }
    const bound = [...this.pods.values()].filter(
      (r) => r.bound && r !== rec && !["Succeeded", "Failed"].includes(r.obj.status?.phase),
    );
    const want = podRequests(rec.obj);
    const used = bound
      .map((r) => podRequests(r.obj))
      .reduce((a, b) => ({ cpu: a.cpu + b.cpu, memory: a.memory + b.memory }), { cpu: 0, memory: 0 });
    const problems: string[] = [];
    const cap = (q: string | undefined) => (q === undefined ? Infinity : (parseQuantity(q) ?? Infinity));
    if (used.cpu + want.cpu > cap(node.cpu) + 1e-9) problems.push("1 Insufficient cpu");
    if (used.memory + want.memory > cap(node.memory)) problems.push("1 Insufficient memory");
    if (node.pods !== undefined && bound.length + 1 > node.pods) problems.push("1 Too many pods");
    if (problems.length === 0) {
      rec.bound = true;
      const i = this.unscheduled.indexOf(rec);
      if (i >= 0) this.unscheduled.splice(i, 1);
      return true;
    }
    if (!this.unscheduled.includes(rec)) this.unscheduled.push(rec);
    this.setStatus(rec, {
      conditions: [
        {
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: `0/1 nodes are available: ${problems.join(", ")}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.`,
          lastTransitionTime: isoNow(),
        },
      ],
    });
    return false;
  }

  /** Room freed up on the node: place waiting pods, oldest first, like the scheduler's queue. */
  private retryScheduling(): void {
    for (const rec of [...this.unscheduled]) {
      if (rec.stopped || !this.pods.has(`${rec.ns}/${rec.name}`)) {
        this.unscheduled.splice(this.unscheduled.indexOf(rec), 1);
        continue;
      }
      if (!this.trySchedule(rec)) continue;
      this.setStatus(rec, {
        conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: isoNow() }],
      });
      void this.runPod(rec).catch((err: unknown) => {
        this.setStatus(rec, { phase: "Failed", reason: "FakeKubeletError", message: String(err) });
      });
    }
  }

  // ------------------------------------------------------------------ fake kubelet

  private async runPod(rec: PodRecord): Promise<void> {
    const pod = rec.obj;
    const behavior = this.behavior(pod);
    const containers: Json[] = pod.spec.containers;
    if (this.opts.startDelayMs) await sleep(this.opts.startDelayMs);
    if (rec.stopped) return;

    // Images: the fake never pulls; an image the engine lacks is a pull error.
    for (const c of [...(pod.spec.initContainers ?? []), ...containers]) {
      const have =
        behavior !== "image-pull-error" &&
        (await this.docker
          .getImage(c.image)
          .inspect()
          .then(
            () => true,
            () => false,
          ));
      if (have) continue;
      const never = c.imagePullPolicy === "Never";
      const reason = never ? "ErrImageNeverPull" : "ErrImagePull";
      const message = never
        ? `Container image "${c.image}" is not present with pull policy of Never`
        : `rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": not found`;
      this.setStatus(rec, {
        containerStatuses: containers.map((x) =>
          this.containerStatus(x, { waiting: x === c ? { reason, message } : { reason: "PodInitializing" } }),
        ),
      });
      if (!never) {
        await sleep(300);
        if (rec.stopped) return;
        this.setStatus(rec, {
          containerStatuses: containers.map((x) =>
            this.containerStatus(x, {
              waiting:
                x === c
                  ? { reason: "ImagePullBackOff", message: `Back-off pulling image "${c.image}"` }
                  : { reason: "PodInitializing" },
            }),
          ),
        });
      }
      return;
    }
    // Init containers are validated but not run (a network-none container has nothing to do).
    if (pod.spec.initContainers?.length) {
      this.setStatus(rec, {
        initContainerStatuses: pod.spec.initContainers.map((c: Json) =>
          this.containerStatus(
            c,
            { terminated: { exitCode: 0, reason: "Completed", finishedAt: isoNow() } },
            true,
          ),
        ),
      });
    }
    const main = containers[0];
    const spec = dockerSpec(this.runId, pod, main);
    // Disk-backed emptyDirs: a Docker volume each (on the engine's disk, no size), like a
    // node's /var/lib/kubelet/pods/<uid>/volumes.
    const diskVolumes = diskEmptyDirs(pod, main);
    for (const v of diskVolumes) {
      const volName = `fake-k8s-${this.runId}-${pod.metadata.uid}-${v.name}`;
      await this.docker.createVolume({
        Name: volName,
        Labels: { "fake-k8s": "1", "fake-k8s-run": this.runId },
      });
      rec.volumes.push(volName);
      spec.HostConfig!.Mounts = [
        ...(spec.HostConfig!.Mounts ?? []),
        { Type: "volume", Source: volName, Target: v.mountPath },
      ];
    }
    // downwardAPI volumes: a host directory the kubelet writes, read-only in the container.
    for (const m of main.volumeMounts ?? []) {
      const volume = (pod.spec.volumes ?? []).find((v: Json) => v.name === m.name && v.downwardAPI);
      if (!volume) continue;
      const dir = mkdtempSync(join(tmpdir(), `fake-k8s-${this.runId}-podinfo-`));
      chmodSync(dir, 0o755);
      rec.downwardApi.push({ dir, volume });
      spec.HostConfig!.Mounts = [
        ...(spec.HostConfig!.Mounts ?? []),
        { Type: "bind", Source: dir, Target: m.mountPath, ReadOnly: true },
      ];
    }
    this.renderDownwardApi(rec);
    const container = await this.docker.createContainer(spec);
    rec.container = container;
    if (rec.stopped) {
      await container.remove({ force: true }).catch(() => undefined);
      return;
    }
    await container.start();
    if (diskVolumes.length) {
      // emptyDirs are world-writable on a node (0777); the volume starts as root's (or as a
      // copy of the image's directory), so the "kubelet" opens it up as root.
      await this.execQuiet(container, ["chmod", "0777", ...diskVolumes.map((v) => v.mountPath)], "0");
    }
    const startTime = isoNow();
    this.ipCounter = (this.ipCounter % 253) + 1;
    this.setStatus(rec, {
      phase: "Running",
      startTime,
      // TEST-NET-1 (RFC 5737): documentation addresses, never a private range.
      podIP: `192.0.2.${this.ipCounter}`,
      podIPs: [{ ip: `192.0.2.${this.ipCounter}` }],
      hostIP: "192.0.2.254",
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: startTime },
        { type: "Initialized", status: "True", lastTransitionTime: startTime },
        { type: "ContainersReady", status: "True", lastTransitionTime: startTime },
        { type: "Ready", status: "True", lastTransitionTime: startTime },
      ],
      containerStatuses: containers.map((c) =>
        this.containerStatus(c, { running: { startedAt: startTime } }, true),
      ),
    });
    this.armDeadline(rec);
    const limited = diskVolumes.filter((v) => v.sizeLimit !== null);
    if (limited.length) this.watchDisk(rec, container, limited, containerUser(pod, main.name));
    const result = (await container.wait().catch(() => null)) as { StatusCode?: number } | null;
    if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
    if (rec.evictionTimer) clearTimeout(rec.evictionTimer);
    if (rec.stopped || !result) return;
    const exitCode = result.StatusCode ?? 1;
    if (rec.obj.status.phase === "Running") {
      this.setStatus(rec, {
        phase: exitCode === 0 ? "Succeeded" : "Failed",
        containerStatuses: containers.map((c) =>
          this.containerStatus(c, {
            terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", finishedAt: isoNow() },
          }),
        ),
      });
    }
    this.retryScheduling();
  }

  /** (Re)arms activeDeadlineSeconds, counted from the pod's startTime. */
  private armDeadline(rec: PodRecord): void {
    if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
    const ads = rec.obj.spec.activeDeadlineSeconds;
    const start = rec.obj.status?.startTime;
    if (typeof ads !== "number" || !start || rec.obj.status.phase !== "Running") return;
    const due = Date.parse(start) + ads * 1000 - Date.now();
    rec.deadlineTimer = setTimeout(
      () => {
        if (rec.stopped || rec.obj.status.phase !== "Running") return;
        this.setStatus(rec, {
          phase: "Failed",
          reason: "DeadlineExceeded",
          message: `Pod was active on the node longer than the specified deadline`,
        });
        void rec.container?.kill().catch(() => undefined);
      },
      Math.max(0, due),
    );
    rec.deadlineTimer.unref();
  }

  /**
   * The kubelet's eviction manager for emptyDir sizeLimit: every `evictionIntervalMs` it
   * measures each disk-backed emptyDir (like `du`); once one is over its limit the pod is
   * killed and becomes Failed/Evicted. Writes past the limit succeed until then.
   */
  private watchDisk(
    rec: PodRecord,
    container: Docker.Container,
    volumes: Array<{ name: string; mountPath: string; sizeLimit: number | null }>,
    user: string,
  ): void {
    const interval = this.opts.evictionIntervalMs ?? 1000;
    const check = async () => {
      if (rec.stopped || rec.obj.status.phase !== "Running") return;
      for (const v of volumes) {
        const out = await this.execQuiet(container, ["du", "-s", "-B1", v.mountPath], user);
        const used = Number(/^(\d+)/.exec(out)?.[1] ?? NaN);
        if (!Number.isFinite(used) || v.sizeLimit === null || used <= v.sizeLimit) continue;
        if (rec.stopped || rec.obj.status.phase !== "Running") return;
        const limit = rec.obj.spec.volumes.find((x: Json) => x.name === v.name)?.emptyDir?.sizeLimit;
        const finishedAt = isoNow();
        this.setStatus(rec, {
          phase: "Failed",
          reason: "Evicted",
          message: `Usage of EmptyDir volume "${v.name}" exceeds the limit "${limit}". `,
          conditions: [
            ...(rec.obj.status.conditions ?? []).map((c: Json) =>
              c.type === "Ready" || c.type === "ContainersReady" ? { ...c, status: "False" } : c,
            ),
            {
              type: "DisruptionTarget",
              status: "True",
              reason: "TerminationByKubelet",
              message: "The node was low on resource: ephemeral-storage. ",
              lastTransitionTime: finishedAt,
            },
          ],
          containerStatuses: rec.obj.spec.containers.map((c: Json) =>
            this.containerStatus(c, {
              terminated: { exitCode: 137, reason: "Error", finishedAt },
            }),
          ),
        });
        await container.kill().catch(() => undefined);
        this.retryScheduling();
        return;
      }
      rec.evictionTimer = setTimeout(() => void check(), interval);
      rec.evictionTimer.unref();
    };
    rec.evictionTimer = setTimeout(() => void check(), interval);
    rec.evictionTimer.unref();
  }

  /** Runs a command in a pod's container for the kubelet's own purposes; stdout, or "" on failure. */
  private async execQuiet(container: Docker.Container, cmd: string[], user: string): Promise<string> {
    try {
      const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
      const stream = (await exec.start({ hijack: true, stdin: false })) as unknown as Duplex;
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on("data", (b: Buffer) => chunks.push(b));
      this.docker.modem.demuxStream(stream, out, new PassThrough().resume());
      await new Promise<void>((resolve) => {
        stream.on("end", resolve);
        stream.on("close", resolve);
        stream.on("error", () => resolve());
      });
      return Buffer.concat(chunks).toString();
    } catch {
      return "";
    }
  }

  /**
   * Writes the pod's downwardAPI volumes like the kubelet's AtomicWriter: the files in a new
   * `..<timestamp>` dir, a `..data_tmp` symlink to it renamed over `..data` (atomic), each
   * item a symlink into `..data`, the previous dir removed.
   */
  private renderDownwardApi(rec: PodRecord): void {
    for (const { dir, volume } of rec.downwardApi) {
      const data = `..${new Date().toISOString().replace(/[:.]/g, "_")}.${randomUUID().slice(0, 6)}`;
      mkdirSync(join(dir, data), { mode: 0o755 });
      const mode = volume.downwardAPI.defaultMode ?? 0o644;
      for (const item of volume.downwardAPI.items ?? []) {
        const file = join(dir, data, item.path);
        writeFileSync(file, fieldValue(rec.obj, item.fieldRef?.fieldPath));
        chmodSync(file, item.mode ?? mode);
      }
      const tmp = join(dir, "..data_tmp");
      rmSync(tmp, { force: true });
      symlinkSync(data, tmp);
      renameSync(tmp, join(dir, "..data"));
      for (const item of volume.downwardAPI.items ?? []) {
        const link = join(dir, item.path);
        try {
          symlinkSync(join("..data", item.path), link);
        } catch {
          // already there
        }
      }
      for (const old of readdirSync(dir)) {
        if (old.startsWith("..") && old !== "..data" && old !== data) {
          rmSync(join(dir, old), { recursive: true, force: true });
        }
      }
    }
  }

  private async stopRecord(rec: PodRecord): Promise<void> {
    rec.stopped = true;
    for (const { dir } of rec.downwardApi.splice(0)) rmSync(dir, { recursive: true, force: true });
    if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
    if (rec.evictionTimer) clearTimeout(rec.evictionTimer);
    if (rec.container) await rec.container.remove({ force: true }).catch(() => undefined);
    for (const v of rec.volumes.splice(0)) {
      await this.docker
        .getVolume(v)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------ helpers

/** A downwardAPI fieldRef's file content, as the kubelet formats it (maps: sorted `k="v"` lines). */
function fieldValue(pod: Json, fieldPath: string | undefined): string {
  const map = (m: Record<string, string> | undefined) =>
    Object.keys(m ?? {})
      .sort()
      .map((k) => `${k}=${goQuote(m![k]!)}`)
      .join("\n");
  switch (fieldPath) {
    case "metadata.annotations":
      return map(pod.metadata.annotations);
    case "metadata.labels":
      return map(pod.metadata.labels);
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace;
    case "metadata.uid":
      return pod.metadata.uid;
    default:
      return "";
  }
}

/** Go's strconv.Quote (what the kubelet's `%q` gives) for the characters that matter here. */
export function goQuote(v: string): string {
  let out = '"';
  for (const ch of v) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function notFound(kind: string, name: string): K8sStatus {
  const short = kind.split(".")[0]!;
  return statusObject(404, "NotFound", `${kind} "${name}" not found`, { name, kind: short });
}

const isoNow = () => new Date().toISOString();

/** A pod's effective requests for the scheduler: max(sum of containers, largest init container). */
function podRequests(pod: Json): { cpu: number; memory: number } {
  const req = (c: Json, k: string) => parseQuantity(c.resources?.requests?.[k] ?? 0) ?? 0;
  const sum = (k: string) => (pod.spec.containers as Json[]).reduce((a, c) => a + req(c, k), 0);
  const init = (k: string) =>
    Math.max(0, ...((pod.spec.initContainers ?? []) as Json[]).map((c) => req(c, k)));
  return { cpu: Math.max(sum("cpu"), init("cpu")), memory: Math.max(sum("memory"), init("memory")) };
}

/** The emptyDirs of a container that a node puts on disk (every medium but Memory). */
function diskEmptyDirs(
  pod: Json,
  c: Json,
): Array<{ name: string; mountPath: string; sizeLimit: number | null }> {
  const out: Array<{ name: string; mountPath: string; sizeLimit: number | null }> = [];
  for (const m of c.volumeMounts ?? []) {
    const vol = (pod.spec.volumes ?? []).find((v: Json) => v.name === m.name);
    if (!vol?.emptyDir || vol.emptyDir.medium === "Memory") continue;
    const limit = vol.emptyDir.sizeLimit ? parseQuantity(vol.emptyDir.sizeLimit) : null;
    out.push({ name: vol.name, mountPath: m.mountPath, sizeLimit: limit });
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function qosClass(containers: Json[]): string {
  const all = containers.every((c) => {
    const r = c.resources ?? {};
    return ["cpu", "memory"].every(
      (k) => r.limits?.[k] !== undefined && (r.requests?.[k] ?? r.limits[k]) === r.limits[k],
    );
  });
  if (all) return "Guaranteed";
  return containers.some((c) => c.resources?.requests || c.resources?.limits) ? "Burstable" : "BestEffort";
}

/** uid:gid an exec runs as: the container's securityContext over the pod's. */
function containerUser(pod: Json, containerName: string): string {
  const c = pod.spec.containers.find((x: Json) => x.name === containerName) ?? {};
  const uid = c.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser;
  const gid = c.securityContext?.runAsGroup ?? pod.spec.securityContext?.runAsGroup;
  if (uid === undefined) return "";
  return gid === undefined ? String(uid) : `${uid}:${gid}`;
}

/** Translates the pod's container into a locked-down Docker container. */
function dockerSpec(runId: string, pod: Json, c: Json): Docker.ContainerCreateOptions {
  const sc = { ...(pod.spec.securityContext ?? {}), ...(c.securityContext ?? {}) };
  const tmpfs: Record<string, string> = {};
  const limits = c.resources?.limits ?? {};
  const mem = limits.memory ? parseQuantity(limits.memory) : null;
  for (const m of c.volumeMounts ?? []) {
    const vol = (pod.spec.volumes ?? []).find((v: Json) => v.name === m.name);
    if (vol?.emptyDir?.medium === "Memory") {
      // A memory-backed emptyDir is a tmpfs of min(sizeLimit, the pod's memory limit); its
      // pages are charged to the pod's memory cgroup (so is this Docker tmpfs).
      const sized = vol.emptyDir.sizeLimit ? parseQuantity(vol.emptyDir.sizeLimit) : null;
      const bytes = sized !== null && mem !== null ? Math.min(sized, mem) : (sized ?? mem);
      // emptyDirs are world-writable on a node; this engine ignores tmpfs `mode`, so the
      // mount is owned by the pod's user and fsGroup instead (what fsGroup amounts to).
      const uid = sc.runAsUser ?? 0;
      const gid = pod.spec.securityContext?.fsGroup ?? sc.runAsGroup ?? 0;
      tmpfs[m.mountPath] =
        `rw,exec,uid=${uid},gid=${gid},mode=0777${bytes ? `,size=${Math.floor(bytes)}` : ""}`;
    }
  }
  const cpu = limits.cpu ? parseQuantity(limits.cpu) : null;
  if (sc.runAsNonRoot && (sc.runAsUser === undefined || sc.runAsUser === 0)) {
    throw new Error("container has runAsNonRoot and image will run as root");
  }
  return {
    name: `fake-k8s-${runId}-${pod.metadata.name}`.slice(0, 120),
    Image: c.image,
    ...(c.command ? { Entrypoint: c.command } : {}),
    ...(c.args ? { Cmd: c.args } : {}),
    ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
    User: containerUser(pod, c.name),
    Env: (c.env ?? [])
      .filter((e: Json) => typeof e.value === "string")
      .map((e: Json) => `${e.name}=${e.value}`),
    Labels: {
      "fake-k8s": "1",
      "fake-k8s-run": runId,
      "fake-k8s-pod": `${pod.metadata.namespace}.${pod.metadata.name}`,
    },
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: !!sc.readOnlyRootFilesystem,
      CapDrop: (sc.capabilities?.drop ?? []).includes("ALL") ? ["ALL"] : (sc.capabilities?.drop ?? []),
      CapAdd: sc.capabilities?.add ?? [],
      SecurityOpt: sc.allowPrivilegeEscalation === false ? ["no-new-privileges"] : [],
      Privileged: false,
      Tmpfs: tmpfs,
      ...(mem ? { Memory: Math.floor(mem) } : {}),
      ...(cpu ? { NanoCpus: Math.floor(cpu * 1e9) } : {}),
      ...(pod.spec.securityContext?.fsGroup !== undefined
        ? { GroupAdd: [String(pod.spec.securityContext.fsGroup)] }
        : {}),
      PidsLimit: 256,
      AutoRemove: false,
    },
  };
}

/** Label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`. */
export function parseSelector(sel: string): ((labels: Record<string, string>) => boolean) | null {
  const reqs: Array<(l: Record<string, string>) => boolean> = [];
  const parts = sel.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  for (const raw of parts) {
    const part = raw.trim();
    if (!part) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      const key = m[1]!;
      const values = m[3]!.split(",").map((s) => s.trim());
      const neg = m[2] === "notin";
      reqs.push((l) =>
        neg ? !(key in l) || !values.includes(l[key]!) : key in l && values.includes(l[key]!),
      );
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(part))) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      reqs.push((l) => (op === "!=" ? l[key] !== value : l[key] === value));
    } else if ((m = /^!([\w./-]+)$/.exec(part))) {
      const key = m[1]!;
      reqs.push((l) => !(key in l));
    } else if ((m = /^([\w./-]+)$/.exec(part))) {
      const key = m[1]!;
      reqs.push((l) => key in l);
    } else {
      return null;
    }
  }
  return (l) => reqs.every((r) => r(l));
}

/** RFC 7386 JSON merge patch (what both merge and strategic-merge do for maps). */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out = target && typeof target === "object" && !Array.isArray(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Starts a fake server; `using`-style helper for tests. */
export async function startFakeApiServer(opts?: FakeApiServerOptions): Promise<FakeApiServer> {
  return new FakeApiServer(opts).start();
}
