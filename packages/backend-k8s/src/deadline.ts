/**
 * Deadlines for every call to the cluster. client-node 1.x sends its REST calls through
 * node-fetch without a timeout or an abort signal, and opens exec WebSockets without a
 * handshake timeout: a hung apiserver (SIGSTOPped, a black-holed network) hangs the caller
 * for as long as the TCP connection lives. The building blocks here give each call a deadline:
 *
 * - `DeadlineKubeConfig`: a KubeConfig whose `makeApiClient` builds API clients that abort
 *   every request after `requestTimeoutMs` (node-fetch with an AbortSignal, on the agent and
 *   headers client-node's own auth computed), failing with `KubernetesTimeoutError`;
 * - `withSignal(signal)`: per-call options that also abort one request when the caller's
 *   AbortSignal fires (e.g. the HTTP client of the API went away);
 * - `DeadlineWebSocketHandler`: client-node's exec WebSocket connect with a handshake
 *   timeout (the exec stream itself lives as long as the command; core's runner bounds it);
 * - `toCoreError` (k8s-errors.ts) turns a `KubernetesTimeoutError` into
 *   `BackendUnavailableError` (503) naming the operation and the deadline.
 */
import fetch, { AbortError, type RequestInit } from "node-fetch";
import WebSocket from "ws";
import {
  KubeConfig,
  ResponseContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  Observable,
  type ConfigurationOptions,
  type HttpLibrary,
  type RequestContext,
} from "@kubernetes/client-node";

/** Default deadline of one REST call to the apiserver. */
export const DEFAULT_K8S_REQUEST_TIMEOUT_MS = 10_000;

/** The apiserver did not answer within the deadline (or the caller gave up first). */
export class KubernetesTimeoutError extends Error {
  /** Classified like a socket timeout by k8s-errors' `isUnreachable`. */
  readonly code = "ETIMEDOUT";
  constructor(
    readonly timeoutMs: number,
    what: string,
  ) {
    super(`the Kubernetes API did not answer ${what} within ${timeoutMs} ms`);
    this.name = "KubernetesTimeoutError";
  }
}

/** The caller's abort signal of a request, set by `withSignal`'s middleware. */
const callerSignals = new WeakMap<RequestContext, AbortSignal>();

/**
 * The HTTP library of the API clients: node-fetch (what client-node uses) with the agent
 * and headers the auth methods set on the request, plus an AbortSignal that fires at the
 * deadline or when the caller's signal does.
 */
export function deadlineHttpLibrary(timeoutMs: number): HttpLibrary {
  return wrapHttpLibrary({
    async send(request: RequestContext): Promise<ResponseContext> {
      const caller = callerSignals.get(request);
      const deadline = AbortSignal.timeout(timeoutMs);
      const signal = caller ? AbortSignal.any([deadline, caller]) : deadline;
      const init: RequestInit = {
        method: request.getHttpMethod().toString(),
        body: request.getBody() as RequestInit["body"],
        headers: request.getHeaders(),
        agent: request.getAgent(),
        // node-fetch 2 types its own AbortSignal; the platform one is what it accepts at runtime.
        signal: signal as unknown as RequestInit["signal"],
      };
      const what = `${init.method} ${new URL(request.getUrl()).pathname}`;
      try {
        const resp = await fetch(request.getUrl(), init);
        // The body is read inside the deadline too: a server can hang after the headers.
        const body = await resp.buffer();
        const headers: Record<string, string> = {};
        resp.headers.forEach((value, name) => {
          headers[name] = value;
        });
        return new ResponseContext(resp.status, headers, {
          text: () => Promise.resolve(body.toString("utf8")),
          binary: () => Promise.resolve(body),
        });
      } catch (err) {
        if (err instanceof AbortError || (err as { name?: unknown }).name === "AbortError") {
          if (caller?.aborted && !deadline.aborted) throw new KubernetesRequestCancelledError(what);
          throw new KubernetesTimeoutError(timeoutMs, `to ${what}`);
        }
        throw err;
      }
    },
  });
}

/** The caller's AbortSignal ended the request before the apiserver answered. */
export class KubernetesRequestCancelledError extends Error {
  constructor(what: string) {
    super(`the request to the Kubernetes API (${what}) was cancelled`);
    this.name = "KubernetesRequestCancelledError";
  }
}

/**
 * Per-call options that abort this one request when `signal` fires, on top of the client's
 * deadline: `core.readNamespacedPod({ name, namespace }, withSignal(req.signal))`.
 * Only clients made by `DeadlineKubeConfig` honour it.
 */
export function withSignal(signal: AbortSignal | undefined): ConfigurationOptions | undefined {
  if (!signal) return undefined;
  return {
    middlewareMergeStrategy: "append",
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          callerSignals.set(ctx, signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
      },
    ],
  };
}

export interface DeadlineOptions {
  /** Deadline of every REST call (default DEFAULT_K8S_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** Deadline of an exec WebSocket's opening handshake (default: requestTimeoutMs). */
  execHandshakeTimeoutMs?: number;
}

/**
 * A KubeConfig (load it as usual: `loadFromDefault()`, `loadFromOptions(...)`) whose API
 * clients give every request a deadline, and whose exec connections (PodExecTransport)
 * have a handshake timeout.
 */
export class DeadlineKubeConfig extends KubeConfig {
  readonly requestTimeoutMs: number;
  readonly execHandshakeTimeoutMs: number;

  constructor(opts: DeadlineOptions = {}) {
    super();
    this.requestTimeoutMs = positive(opts.requestTimeoutMs, DEFAULT_K8S_REQUEST_TIMEOUT_MS);
    this.execHandshakeTimeoutMs = positive(opts.execHandshakeTimeoutMs, this.requestTimeoutMs);
  }

  /** Wraps an already loaded KubeConfig (same clusters, users, contexts, current context). */
  static from(kc: KubeConfig, opts: DeadlineOptions = {}): DeadlineKubeConfig {
    const d = new DeadlineKubeConfig(opts);
    d.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    return d;
  }

  override makeApiClient<T>(apiClientType: new (config: ReturnType<typeof createConfiguration>) => T): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error("No active cluster!");
    return new apiClientType(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        httpApi: deadlineHttpLibrary(this.requestTimeoutMs),
      }),
    );
  }
}

function positive(v: number | undefined, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : fallback;
}

/** The exec subprotocols, newest first (what client-node offers). */
export const EXEC_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];

const STREAM_CLOSE = 255;

/**
 * client-node's `WebSocketInterface` (what `new Exec(kc, handler)` takes): opens the exec
 * WebSocket with the KubeConfig's TLS/auth options and a handshake timeout, and hands the
 * frames to client-node's stream handling. A v5 close-stream frame from the server
 * (channel 255) is consumed here: client-node 1.3 would throw "Unknown stream: 255" on it.
 */
export class DeadlineWebSocketHandler {
  constructor(
    private readonly kc: KubeConfig,
    private readonly handshakeTimeoutMs: number,
  ) {}

  async connect(
    path: string,
    textHandler: ((text: string) => boolean) | null,
    binaryHandler: ((stream: number, buff: Buffer) => boolean) | null,
  ): Promise<WebSocket> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("No cluster is defined.");
    const url = new URL(path, cluster.server);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const opts: WebSocket.ClientOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const what = `to open an exec stream (${url.pathname})`;
    return await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url.toString(), EXEC_PROTOCOLS, {
        ...opts,
        handshakeTimeout: this.handshakeTimeoutMs,
      });
      let open = false;
      ws.on("open", () => {
        open = true;
        resolve(ws);
      });
      ws.on("error", (err) => {
        if (open) return;
        if (/handshake has timed out/i.test(err.message)) {
          reject(new KubernetesTimeoutError(this.handshakeTimeoutMs, what));
        } else {
          reject(err);
        }
      });
      ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
        const buf = Buffer.isBuffer(data)
          ? data
          : Array.isArray(data)
            ? Buffer.concat(data)
            : Buffer.from(data as ArrayBuffer);
        if (!isBinary) {
          if (textHandler && !textHandler(buf.toString("utf8"))) ws.close();
          return;
        }
        if (buf.length === 0 || buf[0] === STREAM_CLOSE) return;
        if (binaryHandler && !binaryHandler(buf[0]!, buf.subarray(1))) ws.close();
      });
    });
  }
}

/**
 * `KubeConfig.loadFromDefault()` ($KUBECONFIG, ~/.kube/config, or the in-cluster
 * ServiceAccount) with deadlines: what the API passes as the backend's `kubeConfig`.
 */
export function loadDeadlineKubeConfig(opts: DeadlineOptions = {}): DeadlineKubeConfig {
  const kc = new DeadlineKubeConfig(opts);
  kc.loadFromDefault();
  return kc;
}
