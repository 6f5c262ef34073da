/** Prometheus metrics (prom-client), one registry per app so apps in one process don't clash. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ExecResult } from "@code-interpreter/core";

export type ExecRoute = "execute" | "execute_stream" | "session_execute" | "session_bash";
export type ExecOutcome = "ok" | "nonzero_exit" | "timed_out" | "aborted" | "error";

export interface ApiMetrics {
  readonly registry: Registry;
  readonly executions: Counter<"route" | "outcome">;
  readonly executionDuration: Histogram<"route" | "outcome">;
  readonly sessionsCreated: Counter;
  readonly sessionsDeleted: Counter;
  readonly sessionsReaped: Counter<"reason">;
  readonly reaperFailures: Counter;
}

export interface MetricsOptions {
  registry?: Registry;
  /** Process metrics (CPU, memory, event loop lag). Default true. */
  collectDefault?: boolean;
  prefix?: string;
}

export function createMetrics(opts: MetricsOptions = {}): ApiMetrics {
  const registry = opts.registry ?? new Registry();
  const p = opts.prefix ?? "code_interpreter_";
  if (opts.collectDefault ?? true) collectDefaultMetrics({ register: registry, prefix: p });
  const registers = [registry];
  return {
    registry,
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
  };
}

export function outcomeOf(r: ExecResult, signal?: AbortSignal): ExecOutcome {
  if (signal?.aborted) return "aborted";
  if (r.timedOut) return "timed_out";
  return r.exitCode === 0 ? "ok" : "nonzero_exit";
}

/** Runs an execution and records its count and duration. */
export async function observeExecution(
  metrics: ApiMetrics,
  route: ExecRoute,
  signal: AbortSignal | undefined,
  run: () => Promise<ExecResult>,
): Promise<ExecResult> {
  const end = metrics.executionDuration.startTimer({ route });
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
  }
}
