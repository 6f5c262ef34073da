/**
 * Prometheus metrics (prom-client), one registry per app so apps in one process don't clash.
 *
 * One vocabulary for both backends: the same series and labels whichever backend runs; which
 * one it is, is the info series `code_interpreter_info{backend, version} 1` (join on it in
 * queries). HTTP series are labelled by route *template* (`/v1/sessions/:id/execute`, never
 * the id), executions by `route` and `outcome`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Backend, ExecResult } from "@code-interpreter/core";
import { API_VERSION } from "./version.js";

export type ExecRoute = "execute" | "execute_stream" | "session_execute" | "session_bash";
export type ExecOutcome = "ok" | "nonzero_exit" | "timed_out" | "aborted" | "error";

export interface ApiMetrics {
  readonly registry: Registry;
  readonly executions: Counter<"route" | "outcome">;
  readonly executionDuration: Histogram<"route" | "outcome">;
  /** Executions running now, by route. */
  readonly executionsInFlight: Gauge<"route">;
  readonly sessionsCreated: Counter;
  readonly sessionsDeleted: Counter;
  readonly sessionsReaped: Counter<"reason">;
  readonly reaperFailures: Counter;
  /** HTTP requests by method, route template and status code. */
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpRequestDuration: Histogram<"method" | "route" | "status">;
  /** Requests answered 429 (MAX_SESSIONS admission refused), by route template. */
  readonly admissionsRefused: Counter<"route">;
  /** Live sessions on the backend (all replicas), read from the backend at scrape time. */
  readonly sessionsLive: Gauge;
  /** Always 1: which backend and version this process runs. */
  readonly info: Gauge<"backend" | "version">;
  /** Warm pool (issue 10): ready members this process knows of, read at scrape time. */
  readonly warmPoolSize: Gauge;
  /** Claims that got a ready member, by kind (session, executor). */
  readonly warmPoolHits: Counter<"kind">;
  /** Claims that found none (a cold start followed), by kind. */
  readonly warmPoolMisses: Counter<"kind">;
  readonly warmPoolClaimDuration: Histogram<"kind" | "outcome">;
  /** Members that could not be made (each also logged at info). */
  readonly warmPoolRefillFailures: Counter;
  /** Members removed by the pool, by reason (max-age, fingerprint, shrink, cap, stopped, warm-failed). */
  readonly warmPoolReaped: Counter<"reason">;
}

export interface MetricsOptions {
  registry?: Registry;
  /** Process metrics (CPU, memory, event loop lag). Default true. */
  collectDefault?: boolean;
  prefix?: string;
}

/** Counts live sessions for the gauge; null when the backend cannot say. */
type SessionCounter = () => Promise<number | null>;

const sessionSources = new WeakMap<Gauge, SessionCounter>();
const poolSources = new WeakMap<Gauge, () => number | null>();

export function createMetrics(opts: MetricsOptions = {}): ApiMetrics {
  const registry = opts.registry ?? new Registry();
  const p = opts.prefix ?? "code_interpreter_";
  if (opts.collectDefault ?? true) collectDefaultMetrics({ register: registry, prefix: p });
  const registers = [registry];
  const sessionsLive: Gauge = new Gauge({
    name: `${p}sessions_live`,
    help: "Live sessions on the backend (every API replica's), counted at scrape time",
    registers,
    async collect() {
      const source = sessionSources.get(sessionsLive);
      if (!source) return;
      try {
        const n = await source();
        if (n !== null) sessionsLive.set(n);
      } catch {
        // Backend unreachable: keep the last value; /readyz is where that shows.
      }
    },
  });
  const warmPoolSize: Gauge = new Gauge({
    name: `${p}warm_pool_size`,
    help: "Ready warm pool members this API process knows of (its own and adopted ones)",
    registers,
    collect() {
      const n = poolSources.get(warmPoolSize)?.();
      if (typeof n === "number") warmPoolSize.set(n);
    },
  });
  return {
    registry,
    warmPoolSize,
    warmPoolHits: new Counter({
      name: `${p}warm_pool_hits_total`,
      help: "Warm pool claims that got a ready member, by kind (session, executor)",
      labelNames: ["kind"] as const,
      registers,
    }),
    warmPoolMisses: new Counter({
      name: `${p}warm_pool_misses_total`,
      help: "Warm pool claims that found no ready member (a cold start followed), by kind",
      labelNames: ["kind"] as const,
      registers,
    }),
    warmPoolClaimDuration: new Histogram({
      name: `${p}warm_pool_claim_duration_seconds`,
      help: "Time to claim a warm pool member (or find none), by kind and outcome",
      labelNames: ["kind", "outcome"] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    warmPoolRefillFailures: new Counter({
      name: `${p}warm_pool_refill_failures_total`,
      help: "Warm pool members that could not be made (each is logged at info)",
      registers,
    }),
    warmPoolReaped: new Counter({
      name: `${p}warm_pool_reaped_total`,
      help: "Warm pool members removed by the pool, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    executions: new Counter({
      name: `${p}executions_total`,
      help: "Code executions by route and outcome",
      labelNames: ["route", "outcome"] as const,
      registers,
    }),
    executionDuration: new Histogram({
      name: `${p}execution_duration_seconds`,
      help: "Wall time of execution requests, including container/pod start-up for one-shot runs",
      labelNames: ["route", "outcome"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    executionsInFlight: new Gauge({
      name: `${p}executions_in_flight`,
      help: "Executions running now, by route",
      labelNames: ["route"] as const,
      registers,
    }),
    sessionsCreated: new Counter({ name: `${p}sessions_created_total`, help: "Sessions created", registers }),
    sessionsDeleted: new Counter({
      name: `${p}sessions_deleted_total`,
      help: "Sessions deleted through the API",
      registers,
    }),
    sessionsReaped: new Counter({
      name: `${p}sessions_reaped_total`,
      help: "Sessions (and orphaned executors) deleted by the reaper, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    reaperFailures: new Counter({
      name: `${p}reaper_failures_total`,
      help: "Reaper passes or single deletions that failed",
      registers,
    }),
    httpRequests: new Counter({
      name: `${p}http_requests_total`,
      help: "HTTP requests by method, route template and status code",
      labelNames: ["method", "route", "status"] as const,
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: `${p}http_request_duration_seconds`,
      help: "HTTP request duration (until the response is finished) by method, route template and status code",
      labelNames: ["method", "route", "status"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    admissionsRefused: new Counter({
      name: `${p}admissions_refused_total`,
      help: "Requests refused with 429 because a limit (MAX_SESSIONS) was reached, by route template",
      labelNames: ["route"] as const,
      registers,
    }),
    sessionsLive,
    info: new Gauge({
      name: `${p}info`,
      help: "Always 1: the backend (docker, kubernetes) and version this API process runs",
      labelNames: ["backend", "version"] as const,
      registers,
    }),
  };
}

/**
 * Ties the metrics to a backend: the info series, the live-sessions gauge (countSessions) and
 * the warm pool's series (when the backend keeps a pool). Returns what unbinds the pool hooks.
 */
export function bindBackend(metrics: ApiMetrics, backend: Backend): () => void {
  metrics.info.reset();
  metrics.info.set({ backend: backend.kind, version: API_VERSION }, 1);
  sessionSources.set(metrics.sessionsLive, async () => {
    if (!backend.capabilities.sessions) return null;
    return backend.countSessions();
  });
  const pool = backend.warmPool;
  if (!pool) return () => undefined;
  poolSources.set(metrics.warmPoolSize, () => pool.stats().ready);
  return pool.observe({
    claim: (outcome, kind, seconds) => {
      (outcome === "hit" ? metrics.warmPoolHits : metrics.warmPoolMisses).inc({ kind });
      metrics.warmPoolClaimDuration.observe({ kind, outcome }, seconds);
    },
    refillFailed: () => metrics.warmPoolRefillFailures.inc(),
    reaped: (reason) => metrics.warmPoolReaped.inc({ reason }),
  });
}

/** Express's route object as far as the template is concerned. */
interface RouteLike {
  path?: unknown;
}

/** The label for requests that matched no route (404s, or refused before routing, e.g. 401). */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * HTTP request metrics. The route template is captured when the router assigns `req.route`
 * (at that moment `req.baseUrl` is the mount path; by the time an error handler answers, the
 * router has already restored it), so ids never become label values.
 */
export function httpMetricsMiddleware(
  metrics: ApiMetrics,
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  return (req, res, next) => {
    const r = req as IncomingMessage & { baseUrl?: string; route?: RouteLike };
    let template = UNMATCHED_ROUTE;
    let route: RouteLike | undefined;
    Object.defineProperty(r, "route", {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value: RouteLike | undefined) => {
        route = value;
        if (value && typeof value.path === "string") {
          // A router's "/" route mounted at /v1/sessions is "/v1/sessions", not "/v1/sessions/".
          const full = `${r.baseUrl ?? ""}${value.path}`;
          template = full.length > 1 && full.endsWith("/") ? full.slice(0, -1) : full;
        }
      },
    });
    const start = process.hrtime.bigint();
    let recorded = false;
    const record = (): void => {
      if (recorded) return;
      recorded = true;
      const labels = { method: req.method ?? "GET", route: template, status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpRequestDuration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
      if (res.statusCode === 429) metrics.admissionsRefused.inc({ route: template });
    };
    // "finish": the response was sent; "close" alone: the client went away first.
    res.once("finish", record);
    res.once("close", record);
    next();
  };
}

export function outcomeOf(r: ExecResult, signal?: AbortSignal): ExecOutcome {
  if (signal?.aborted) return "aborted";
  if (r.timedOut) return "timed_out";
  return r.exitCode === 0 ? "ok" : "nonzero_exit";
}

/** Runs an execution and records its count, duration and in-flight gauge. */
export async function observeExecution(
  metrics: ApiMetrics,
  route: ExecRoute,
  signal: AbortSignal | undefined,
  run: () => Promise<ExecResult>,
): Promise<ExecResult> {
  const end = metrics.executionDuration.startTimer({ route });
  metrics.executionsInFlight.inc({ route });
  try {
    const result = await run();
    const outcome = outcomeOf(result, signal);
    metrics.executions.inc({ route, outcome });
    end({ outcome });
    return result;
  } catch (err) {
    const outcome: ExecOutcome = signal?.aborted ? "aborted" : "error";
    metrics.executions.inc({ route, outcome });
    end({ outcome });
    throw err;
  } finally {
    metrics.executionsInFlight.dec({ route });
  }
}
