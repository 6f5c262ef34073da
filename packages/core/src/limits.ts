/**
 * The limits every backend applies to executor containers/pods, with documented defaults:
 * a library user gets a working backend without going through the server's env parser.
 * The REST server maps its environment variables onto these (apps/api config).
 */

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
  /** Size of /workspace, MiB (WORKSPACE_SIZE_MB). @default 512 */
  workspaceSizeMb: number;
  /** Size of /tmp, MiB (TMP_SIZE_MB). @default 64 */
  tmpSizeMb: number;
}

export const DEFAULT_EXECUTOR_LIMITS: Readonly<ExecutorLimits> = Object.freeze({
  memoryLimitMb: 256,
  cpuLimit: 1,
  cpuTimeLimitSec: 5,
  pidsLimit: 128,
  workspaceSizeMb: 512,
  tmpSizeMb: 64,
});
