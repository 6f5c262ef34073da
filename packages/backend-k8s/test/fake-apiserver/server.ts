/**
 * A wire-level fake Kubernetes API server for tests. It speaks real HTTP/JSON and the real
 * exec WebSocket protocol, so the backend under test uses the unmodified
 * @kubernetes/client-node. What it implements is the part of the API the backend uses:
 *
 * - pods: create (validated like a real apiserver: OpenAPI schema + Go-side rules → 422,
 *   409 AlreadyExists), get, list (labelSelector, limit), merge/strategic-merge patch of
 *   metadata (spec changes → 422), delete (uid preconditions → 409, 404 NotFound,
 *   graceful: deletionTimestamp first, object gone once the container is);
 * - `GET/POST .../pods/{name}/exec` upgraded to WebSocket with `v4.channel.k8s.io`;
 * - `GET /apis/apps/v1/.../deployments/{name}` for seeded Deployments; `GET /version`.
 *
 * Each pod is backed by a real Docker container on the local engine (the pod's image,
 * command and args, securityContext user, read-only root, tmpfs emptyDirs, no network), so
 * exec really runs code. A "kubelet" loop moves pods Pending → Running → Succeeded/Failed,
 * enforces activeDeadlineSeconds, and reports ErrImagePull/ImagePullBackOff for images the
 * engine does not have (nothing is ever pulled). Failure knobs let tests make pods stay
 * Pending, be unschedulable, fail to pull, or make deletes fail.
 *
 * Every container carries `fake-k8s=1` and `fake-k8s-run=<runId>`; stop() removes exactly
 * this run's containers.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { WebSocketServer, type WebSocket } from "ws";
import { KubeConfig } from "@kubernetes/client-node";
import { parseQuantity, statusObject, validateObject, type K8sStatus } from "./validate.js";

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
  deadlineTimer?: NodeJS.Timeout;
  stopped: boolean;
}

export interface FakeApiServerOptions {
  token?: string;
  /** Decides how the fake kubelet treats a new pod (default: "normal" for all). */
  behavior?: (pod: Json) => PodBehavior;
  /** Extra delay before a pod starts running (simulates scheduling + container start). */
  startDelayMs?: number;
  docker?: Docker;
}

const EXEC_PROTOCOL = "v4.channel.k8s.io";

export class FakeApiServer {
  readonly runId = randomUUID().slice(0, 8);
  readonly token: string;
  readonly requests: RequestLogEntry[] = [];
  /** Names of the pods this server accepted, in order ("namespace/name"). */
  readonly created: string[] = [];
  behavior: (pod: Json) => PodBehavior;
  private readonly docker: Docker;
  private readonly pods = new Map<string, PodRecord>();
  private readonly deployments = new Map<string, Json>();
  private readonly deleteFailures = new Map<string, Array<"500" | "404-race">>();
  private server: Server | null = null;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(EXEC_PROTOCOL) ? EXEC_PROTOCOL : false),
  });
  private rv = 1;
  private readonly sockets = new Set<Duplex>();
  port = 0;

  constructor(private readonly opts: FakeApiServerOptions = {}) {
    this.token = opts.token ?? `fake-token-${this.runId}`;
    this.behavior = opts.behavior ?? (() => "normal");
    this.docker = opts.docker ?? new Docker();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.send(res, statusObject(500, "InternalError", String(err)));
      });
    });
    server.on("upgrade", (req, socket, head) => {
      this.handleUpgrade(req, socket, head).catch(() => socket.destroy());
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

  /** Stops the server and removes every container this run created. */
  async stop(): Promise<void> {
    for (const rec of this.pods.values()) {
      if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
      rec.stopped = true;
    }
    for (const c of this.wss.clients) c.terminate();
    if (this.server) {
      const s = this.server;
      this.server = null;
      for (const sock of this.sockets) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await this.removeRunContainers();
  }

  async removeRunContainers(): Promise<void> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: ["fake-k8s=1", `fake-k8s-run=${this.runId}`] },
    });
    await Promise.all(
      list.map((c) =>
        this.docker
          .getContainer(c.Id)
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

  /** The next delete of this pod answers 500, or deletes it first and answers 404 (a race). */
  failNextDelete(namespace: string, name: string, kind: "500" | "404-race"): void {
    const key = `${namespace}/${name}`;
    this.deleteFailures.set(key, [...(this.deleteFailures.get(key) ?? []), kind]);
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
    const invalid = validateObject(body);
    if (invalid) {
      this.send(res, invalid);
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
    obj.status = { phase: "Pending", qosClass: qosClass(obj.spec.containers) };
    const rec: PodRecord = { ns, name, obj, stopped: false };
    this.pods.set(key, rec);
    this.created.push(key);
    this.send(res, obj, 201);
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
        ),
      );
      return;
    }
    const next = mergePatch(structuredClone(rec.obj), patch);
    if (JSON.stringify(next.spec) !== JSON.stringify(rec.obj.spec)) {
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
      this.pods.delete(key);
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
    if (!rec.obj.metadata.deletionTimestamp) {
      rec.obj.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString();
      rec.obj.metadata.deletionGracePeriodSeconds = grace;
      rec.obj.metadata.resourceVersion = String(this.rv++);
    }
    this.send(res, rec.obj);
    // The "kubelet" stops the container; the object goes once it is gone (grace 0: at once).
    if (grace === 0) this.pods.delete(key);
    void this.stopRecord(rec).finally(() => {
      if (this.pods.get(key) === rec) this.pods.delete(key);
    });
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
    if (!protocols.includes(EXEC_PROTOCOL)) {
      return reject(
        statusObject(
          400,
          "BadRequest",
          `unable to upgrade connection: none of the requested protocols are supported (want ${EXEC_PROTOCOL})`,
        ),
      );
    }
    const container = rec.container;
    const user = containerUser(rec.obj, containerName);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
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
    const sendFrame = (channel: number, data: Buffer) => {
      if (ws.readyState !== ws.OPEN || data.length === 0) return;
      const frame = Buffer.allocUnsafe(data.length + 1);
      frame[0] = channel;
      data.copy(frame, 1);
      ws.send(frame);
    };
    const finish = (status: Json) => {
      if (ws.readyState === ws.OPEN) {
        sendFrame(3, Buffer.from(JSON.stringify(status)));
        ws.close(1000);
      }
    };
    // Frames may arrive before the Docker exec is attached: queue them until it is.
    const pending: Buffer[] = [];
    let stdinSink: ((b: Buffer) => void) | null = null;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const buf = isBinary ? data : Buffer.from(data.toString());
      if (buf.length === 0 || buf[0] !== 0 || !stdin) return;
      const payload = buf.subarray(1);
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
      stream.write(b);
    };
    for (const b of pending.splice(0)) stdinSink(b);
    ws.on("close", () => stream.destroy());
    stream.on("error", () => undefined);
    await new Promise<void>((resolve) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
    });
    let code: number | null = null;
    for (let i = 0; i < 50; i++) {
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
    const now = () => new Date().toISOString();
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
            lastTransitionTime: now(),
          },
        ],
      });
      return;
    }
    this.setStatus(rec, {
      conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: now() }],
      containerStatuses: containers.map((c) =>
        this.containerStatus(c, { waiting: { reason: "ContainerCreating" } }),
      ),
    });
    if (behavior === "pending") return;
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
    // Init containers are validated but not run (a network-none container has nothing to lock down).
    if (pod.spec.initContainers?.length) {
      this.setStatus(rec, {
        initContainerStatuses: pod.spec.initContainers.map((c: Json) =>
          this.containerStatus(
            c,
            { terminated: { exitCode: 0, reason: "Completed", finishedAt: now() } },
            true,
          ),
        ),
      });
    }
    const main = containers[0];
    const container = await this.docker.createContainer(dockerSpec(this.runId, pod, main));
    rec.container = container;
    if (rec.stopped) {
      await container.remove({ force: true }).catch(() => undefined);
      return;
    }
    await container.start();
    const startTime = now();
    this.setStatus(rec, {
      phase: "Running",
      startTime,
      podIP: "10.244.0." + ((this.rv % 250) + 2),
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
    const ads = pod.spec.activeDeadlineSeconds;
    if (typeof ads === "number") {
      rec.deadlineTimer = setTimeout(() => {
        if (rec.stopped) return;
        this.setStatus(rec, {
          phase: "Failed",
          reason: "DeadlineExceeded",
          message: `Pod was active on the node longer than the specified deadline`,
        });
        void container.kill().catch(() => undefined);
      }, ads * 1000);
      rec.deadlineTimer.unref();
    }
    const result = (await container.wait().catch(() => null)) as { StatusCode?: number } | null;
    if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
    if (rec.stopped || !result) return;
    const exitCode = result.StatusCode ?? 1;
    if (rec.obj.status.phase === "Running") {
      this.setStatus(rec, {
        phase: exitCode === 0 ? "Succeeded" : "Failed",
        containerStatuses: containers.map((c) =>
          this.containerStatus(c, {
            terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", finishedAt: now() },
          }),
        ),
      });
    }
  }

  private async stopRecord(rec: PodRecord): Promise<void> {
    rec.stopped = true;
    if (rec.deadlineTimer) clearTimeout(rec.deadlineTimer);
    if (rec.container) await rec.container.remove({ force: true }).catch(() => undefined);
  }
}

// ------------------------------------------------------------------ helpers

function notFound(kind: string, name: string): K8sStatus {
  const short = kind.split(".")[0]!;
  return statusObject(404, "NotFound", `${kind} "${name}" not found`, { name, kind: short });
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
  for (const m of c.volumeMounts ?? []) {
    const vol = (pod.spec.volumes ?? []).find((v: Json) => v.name === m.name);
    if (vol?.emptyDir) {
      const bytes = vol.emptyDir.sizeLimit ? parseQuantity(vol.emptyDir.sizeLimit) : null;
      // emptyDirs are world-writable on a node; this engine ignores tmpfs `mode`, so the
      // mount is owned by the pod's user and fsGroup instead (what fsGroup amounts to).
      const uid = sc.runAsUser ?? 0;
      const gid = pod.spec.securityContext?.fsGroup ?? sc.runAsGroup ?? 0;
      tmpfs[m.mountPath] =
        `rw,exec,uid=${uid},gid=${gid},mode=0777${bytes ? `,size=${Math.floor(bytes)}` : ""}`;
    }
  }
  const limits = c.resources?.limits ?? {};
  const mem = limits.memory ? parseQuantity(limits.memory) : null;
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
