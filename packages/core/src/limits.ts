/**
 * The limits every backend applies to executor containers/pods, with documented defaults:
 * a library user gets a working backend without going through the server's env parser.
 * The REST server maps its environment variables onto these (apps/api config).
 */
import { ValidationError } from "./errors.js";

/** The unprivileged uid/gid code runs as in every executor (the executor image's user too). */
export const EXECUTOR_UID = 65532;

export interface ExecutorLimits {
  /** Memory limit of the container/pod, MiB (MEMORY_LIMIT_MB). @default 256 */
  memoryLimitMb: number;
  /** CPUs (fractions allowed) (CPU_LIMIT). @default 1 */
  cpuLimit: number;
  /** RLIMIT_CPU of each program, seconds; 0 = none (CPU_TIME_LIMIT_SEC). @default 5 */
  cpuTimeLimitSec: number;
  /** Processes (PIDS_LIMIT). @default 128 */
  pidsLimit: number;
  /** Size of /workspace, MiB (WORKSPACE_SIZE_MB). @default 128 (half of the memory limit) */
  workspaceSizeMb: number;
  /** Size of /tmp, MiB (TMP_SIZE_MB). @default 32 (an eighth of the memory limit) */
  tmpSizeMb: number;
}

export const DEFAULT_EXECUTOR_LIMITS: Readonly<ExecutorLimits> = Object.freeze({
  memoryLimitMb: 256,
  cpuLimit: 1,
  cpuTimeLimitSec: 5,
  pidsLimit: 128,
  workspaceSizeMb: 128,
  tmpSizeMb: 32,
});

/**
 * `/workspace` and `/tmp` are tmpfs on Docker: their pages count against the container's
 * memory limit. If they could hold more than the limit, filling them would OOM-kill the
 * session's processes (the keeper included) instead of giving the writer ENOSPC. So together
 * they must leave at least a quarter of the memory limit to the processes.
 */
export function memoryHeadroomMb(memoryLimitMb: number): number {
  return Math.ceil(memoryLimitMb / 4);
}

/** The default tmpfs sizes for a memory limit: half for /workspace, an eighth for /tmp. */
export function defaultTmpfsSizes(memoryLimitMb: number): { workspaceSizeMb: number; tmpSizeMb: number } {
  return {
    workspaceSizeMb: Math.max(1, Math.floor(memoryLimitMb / 2)),
    tmpSizeMb: Math.max(1, Math.floor(memoryLimitMb / 8)),
  };
}

/** Why these executor limits are inconsistent (tmpfs sizes vs the memory limit), or null. */
export function executorLimitsProblem(l: ExecutorLimits): string | null {
  const room = l.memoryLimitMb - memoryHeadroomMb(l.memoryLimitMb);
  if (l.workspaceSizeMb + l.tmpSizeMb <= room) return null;
  return (
    `the workspace (${l.workspaceSizeMb} MB) and /tmp (${l.tmpSizeMb} MB) are kept in memory and together ` +
    `may use at most ${room} MB of the ${l.memoryLimitMb} MB memory limit (a quarter stays for the processes)`
  );
}

/** Throws ValidationError when the tmpfs sizes do not fit the memory limit (see memoryHeadroomMb). */
export function assertExecutorLimits(l: ExecutorLimits): void {
  const problem = executorLimitsProblem(l);
  if (problem) throw new ValidationError(`invalid executor limits: ${problem}`);
}
