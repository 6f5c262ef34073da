/**
 * One HTTP request with the client's defaults: base URL, bearer key, per-attempt timeout, the
 * typed error of the answer's status, and retries with backoff on 429/503 (honouring
 * `Retry-After`) through p-retry.
 */
import pRetry from "p-retry";
import { CodeInterpreterError, ConnectionError, errorForStatus, parseRetryAfter } from "./errors.js";

export interface ClientOptions {
  /**
   * The server's base URL.
   * @default process.env.CODE_INTERPRETER_URL ?? "http://localhost:8000"
   */
  baseUrl?: string;
  /**
   * Sent as `Authorization: Bearer <apiKey>`; leave unset for a server without `API_KEYS`.
   * @default process.env.CODE_INTERPRETER_API_KEY
   */
  apiKey?: string | undefined;
  /**
   * How many times a request answered 429 or 503 (or, for GET/PUT/DELETE, not answered at
   * all) is tried again before its error is thrown. `0` turns retries off.
   * @default 4
   */
  maxRetries?: number;
  /**
   * First backoff delay when the server sends no `Retry-After`; doubled per retry, with jitter.
   * @default 500
   */
  retryMinDelayMs?: number;
  /**
   * Longest wait before one retry, also when `Retry-After` asks for more.
   * @default 30000
   */
  retryMaxDelayMs?: number;
  /**
   * Per attempt, for the whole exchange including the body (streams too). `0`: no limit.
   * @default 600000 (10 minutes: longer than any run the server allows by default)
   */
  timeoutMs?: number;
  /**
   * Extra headers on every request (e.g. `X-Request-Id`).
   * @default {}
   */
  headers?: Record<string, string>;
  /**
   * The fetch implementation.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
}

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  /** JSON body. */
  json?: unknown;
  /** Any other body, built anew for each attempt so a retry sends it again. */
  body?: () => FetchBody;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal | undefined;
  /** Statuses answered normally instead of thrown (e.g. 503 for /health). */
  okStatuses?: readonly number[];
}

/** What fetch accepts as a request body. */
type FetchBody = NonNullable<RequestInit["body"]>;

/** Sent on every request (overridable with `headers`), so server logs can tell clients apart. */
export const USER_AGENT = "code-interpreter-client-ts/0.1";

const IDEMPOTENT = new Set(["GET", "PUT", "DELETE"]);

type Resolved = Required<Omit<ClientOptions, "apiKey">> & { apiKey: string | undefined };

export function resolveOptions(opts: ClientOptions = {}): Resolved {
  const env = typeof process === "undefined" ? {} : process.env;
  return {
    baseUrl: (opts.baseUrl ?? env.CODE_INTERPRETER_URL ?? "http://localhost:8000").replace(/\/+$/, ""),
    apiKey: opts.apiKey ?? env.CODE_INTERPRETER_API_KEY,
    maxRetries: opts.maxRetries ?? 4,
    retryMinDelayMs: opts.retryMinDelayMs ?? 500,
    retryMaxDelayMs: opts.retryMaxDelayMs ?? 30_000,
    timeoutMs: opts.timeoutMs ?? 600_000,
    headers: opts.headers ?? {},
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function errorFromResponse(res: Response): Promise<CodeInterpreterError> {
  const text = await res.text().catch(() => "");
  let detail: string = res.statusText || `HTTP ${res.status}`;
  try {
    const parsed = JSON.parse(text) as { detail?: unknown };
    if (typeof parsed.detail === "string") detail = parsed.detail;
    else if (parsed.detail !== undefined) detail = JSON.stringify(parsed.detail);
  } catch {
    if (text) detail = text.slice(0, 500);
  }
  return errorForStatus(
    res.status,
    detail,
    res.headers.get("x-request-id") ?? undefined,
    parseRetryAfter(res.headers.get("retry-after")),
  );
}

export class HttpClient {
  readonly options: Resolved;

  constructor(opts?: ClientOptions) {
    this.options = resolveOptions(opts);
  }

  url(path: string, query?: RequestSpec["query"]): string {
    const url = new URL(this.options.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    return url.toString();
  }

  private retryable(err: unknown, method: string): boolean {
    if (!(err instanceof CodeInterpreterError)) return false;
    if (err.status === 429 || err.status === 503) return true;
    if (!IDEMPOTENT.has(method)) return false;
    return err.status === 0 || err.status === 502 || err.status === 504;
  }

  private delayMs(err: unknown, attempt: number): number {
    const { retryMinDelayMs, retryMaxDelayMs } = this.options;
    const asked = (err as { retryAfter?: number }).retryAfter;
    if (typeof asked === "number") return Math.min(asked * 1000, retryMaxDelayMs);
    const backoff = retryMinDelayMs * 2 ** (attempt - 1);
    return Math.min(retryMaxDelayMs, backoff * (0.5 + Math.random() / 2));
  }

  /** The response of a successful (or `okStatuses`) answer; typed errors otherwise. */
  async request(spec: RequestSpec): Promise<Response> {
    const { maxRetries } = this.options;
    return pRetry(() => this.attempt(spec), {
      retries: maxRetries,
      // Delays are ours (Retry-After or backoff, in onFailedAttempt); p-retry's stay at 0.
      minTimeout: 0,
      maxTimeout: 0,
      signal: spec.signal,
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && this.retryable(error, spec.method)) {
          await sleep(this.delayMs(error, attemptNumber), spec.signal);
        }
      },
      shouldRetry: ({ error }) => this.retryable(error, spec.method),
    });
  }

  private async attempt(spec: RequestSpec): Promise<Response> {
    const { apiKey, timeoutMs, headers: extra, fetch } = this.options;
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...extra };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    if (spec.accept) headers.accept = spec.accept;
    let body: FetchBody | undefined;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers["content-type"] = "application/json";
    } else if (spec.body) {
      body = spec.body();
      if (spec.contentType) headers["content-type"] = spec.contentType;
    }
    const signals: AbortSignal[] = [];
    if (spec.signal) signals.push(spec.signal);
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    if (timeout) signals.push(timeout);
    let res: Response;
    try {
      res = await fetch(this.url(spec.path, spec.query), {
        method: spec.method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(signals.length ? { signal: AbortSignal.any(signals) } : {}),
      });
    } catch (err) {
      // The caller's own abort is not a failure of the server: it is passed through as is.
      if (spec.signal?.aborted) throw spec.signal.reason;
      const detail = timeout?.aborted
        ? `no answer from ${this.options.baseUrl} within ${timeoutMs} ms`
        : `could not reach ${this.options.baseUrl}: ${String((err as Error)?.cause ?? err)}`;
      throw new ConnectionError({ status: 0, detail, cause: err });
    }
    if (res.ok || spec.okStatuses?.includes(res.status)) return res;
    throw await errorFromResponse(res);
  }

  async json<T>(spec: RequestSpec): Promise<T> {
    const res = await this.request({ accept: "application/json", ...spec });
    return (await res.json()) as T;
  }
}
