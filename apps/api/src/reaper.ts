/**
 * The reaper: every interval, deletes expired/idle sessions and orphaned executors
 * (backend.reap) and expired files (files.sweep). Passes never overlap, errors are logged
 * and the next pass runs anyway. Sessions live on the backend resources, so a restarted API
 * reaps what an earlier one left behind.
 */
import type { Backend, Logger } from "@code-interpreter/core";
import type { FileStore } from "@code-interpreter/files-client";
import type { ApiMetrics } from "./metrics.js";

export interface ReaperOptions {
  backend: Backend;
  files: FileStore;
  intervalSeconds: number;
  logger: Logger;
  metrics?: ApiMetrics;
  /** Run the first pass right away (default true) instead of after one interval. */
  runImmediately?: boolean;
}

export interface Reaper {
  /** Runs one pass now (or waits for the one already running). */
  runOnce(): Promise<void>;
  /** No further passes; resolves once a running pass has finished. */
  stop(): Promise<void>;
}

export function startReaper(opts: ReaperOptions): Reaper {
  const { backend, files, logger, metrics } = opts;
  const intervalMs = Math.max(100, Math.round(opts.intervalSeconds * 1000));
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  async function pass(): Promise<void> {
    if (backend.capabilities.reaper) {
      try {
        const report = await backend.reap();
        for (const r of report.reaped) {
          logger.info({ session: r.id, reason: r.reason }, "reaped");
          metrics?.sessionsReaped.inc({ reason: r.reason });
        }
        for (const f of report.failed) {
          logger.warn({ session: f.id, error: f.error }, "reap failed");
          metrics?.reaperFailures.inc();
        }
      } catch (err) {
        logger.error({ err }, "reaper pass failed");
        metrics?.reaperFailures.inc();
      }
    }
    try {
      const swept = await files.sweep();
      if (swept > 0) logger.info({ files: swept }, "expired files removed");
    } catch (err) {
      logger.error({ err }, "file sweep failed");
      metrics?.reaperFailures.inc();
    }
  }

  function runOnce(): Promise<void> {
    if (!running) {
      running = pass().finally(() => {
        running = null;
      });
    }
    return running;
  }

  function schedule(delay: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void runOnce().then(() => schedule(intervalMs));
    }, delay);
    timer.unref();
  }

  schedule(opts.runImmediately === false ? intervalMs : 0);

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (running) await running;
    },
  };
}
