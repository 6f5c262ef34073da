/**
 * One reaper pass, for every platform: which sessions and one-shot executors to remove, and
 * why (one vocabulary: REAP_REASONS). Safe to run from several API processes at once: a
 * resource someone else removed first is simply not reported.
 */
import type { Logger, ReapReport, SessionInfo } from "../backend.js";
import { LABEL_REAP_AFTER, hasComponentLabels } from "../labels.js";
import { expiryReason, fromUnixSeconds, isExpired, type ReapReason } from "../lifetime.js";
import { isExecutorName, isSessionId } from "../naming.js";
import { lifetimeOf, type SessionState } from "../session.js";
import { mapLimit } from "./keyed-mutex.js";
import type { PlatformResource, SessionPlatform } from "./platform.js";

export interface ReapContext {
  platform: SessionPlatform;
  logger: Logger;
  concurrency: number;
  pendingGraceMs: number;
  /** The session as the layer sees it (tags + given state + what this process knows). */
  view(r: PlatformResource, state?: SessionState): SessionInfo | null;
  readState(r: PlatformResource): Promise<SessionState>;
  /** False once the resource is gone or no longer running (see SessionStore.stillRunning). */
  stillRunning(id: string): Promise<boolean>;
}

interface Job {
  r: PlatformResource;
  reason: ReapReason;
}

export async function reapResources(ctx: ReapContext, now: number): Promise<ReapReport> {
  const { platform } = ctx;
  const report: ReapReport = { reaped: [], failed: [] };
  let sessions: PlatformResource[];
  let executors: PlatformResource[];
  try {
    [sessions, executors] = await Promise.all([platform.list({}), platform.listExecutors()]);
  } catch (err) {
    throw platform.mapError(err, "listing resources to reap");
  }

  const decided = await mapLimit(sessions, ctx.concurrency, async (r): Promise<Job | null> => {
    if (!isSessionId(r.name) || !hasComponentLabels(r.tags, "session") || r.phase === "removing") return null;
    if (r.phase === "stopped") return { r, reason: "stopped" };
    // A young pending resource is another process's createSession in flight.
    if (r.phase === "pending" && now - r.createdAt < ctx.pendingGraceMs) return null;
    if (r.phase === "pending") return { r, reason: "stopped" };
    let info = ctx.view(r);
    if (!info) {
      ctx.logger.warn({ sessionId: r.name }, "reaper: session tags are unreadable; leaving it alone");
      return null;
    }
    if (isExpired(lifetimeOf(info), now) && r.state === undefined) {
      try {
        info = ctx.view(r, await ctx.readState(r));
      } catch (err) {
        const mapped = platform.mapError(err, "reading the session state", r.name);
        // Gone meanwhile (its keeper ended it, another reaper removed it): not a failure.
        if (mapped.status !== 404 && (await ctx.stillRunning(r.name))) {
          report.failed.push({ id: r.name, error: mapped.message });
        }
        return null;
      }
    }
    if (!info || !isExpired(lifetimeOf(info), now)) return null;
    return { r, reason: expiryReason(lifetimeOf(info), now) ?? "expired" };
  });
  const jobs = decided.filter((j): j is Job => j !== null);

  for (const r of executors) {
    if (!isExecutorName(r.name) || !hasComponentLabels(r.tags, "executor") || r.phase === "removing")
      continue;
    const reapAfter = fromUnixSeconds(r.tags[LABEL_REAP_AFTER]);
    if ((reapAfter !== null && now >= reapAfter) || r.phase === "stopped") {
      jobs.push({ r, reason: "orphaned-executor" });
    }
  }

  await mapLimit(jobs, ctx.concurrency, async ({ r, reason }) => {
    try {
      if ((await platform.remove(r)) !== "removed") return; // someone else was faster
      report.reaped.push({ id: r.name, reason });
      ctx.logger.info({ sessionId: r.name, reason }, "reaped");
    } catch (err) {
      const error = platform.mapError(err, "removing a resource").message;
      report.failed.push({ id: r.name, error });
      ctx.logger.warn({ sessionId: r.name, reason, error }, "reaping failed");
    }
  });
  return report;
}
