/**
 * The hardened container definition shared by sessions and one-shot executors. The parts that
 * do not change per container are computed once (see DockerBackend's constructor).
 */
import type Dockerode from "dockerode";
import { WORKSPACE_DIR, assertExecutorLimits, type ExecutorLimits } from "@code-interpreter/core";
import { EXECUTOR_UID, STATE_DIR } from "@code-interpreter/core/backend-kit";

export { EXECUTOR_UID };
/** The unprivileged user code runs as (the executor image's default user too). */
export const EXECUTOR_USER = `${EXECUTOR_UID}:${EXECUTOR_UID}`;

const MB = 1024 * 1024;

export function hardenedHostConfig(limits: ExecutorLimits): Dockerode.HostConfig {
  const memory = Math.floor(limits.memoryLimitMb * MB);
  return {
    AutoRemove: true,
    NetworkMode: "none",
    CapDrop: ["ALL"],
    SecurityOpt: ["no-new-privileges"],
    ReadonlyRootfs: true,
    Privileged: false,
    Tmpfs: {
      [WORKSPACE_DIR]: `rw,nosuid,nodev,size=${limits.workspaceSizeMb}m,uid=${EXECUTOR_UID},gid=${EXECUTOR_UID},mode=0755`,
      "/tmp": `rw,nosuid,nodev,size=${limits.tmpSizeMb}m,mode=1777`,
    },
    PidsLimit: limits.pidsLimit,
    Memory: memory,
    MemorySwap: memory, // equal to Memory: no swap
    NanoCpus: Math.round(limits.cpuLimit * 1e9),
    IpcMode: "private",
    Init: false, // the keeper is PID 1 and reaps zombies itself
    // Program output travels over exec streams; nothing useful reaches container logs.
    LogConfig: { Type: "none", Config: {} },
  };
}

/**
 * Sessions only: the state volume (see state.ts). An anonymous volume, because the archive
 * API reaches volumes but not HostConfig.Tmpfs mounts; backed by a small root-owned tmpfs the
 * code can read but not write. It goes away with the container (AutoRemove, remove `v`).
 */
export const STATE_MOUNT: Dockerode.MountSettings = {
  Type: "volume",
  Source: "", // anonymous
  Target: STATE_DIR,
  VolumeOptions: {
    NoCopy: true,
    Labels: {},
    DriverConfig: {
      Name: "local",
      Options: { type: "tmpfs", device: "tmpfs", o: "size=1m,mode=0755,noexec,nosuid,nodev" },
    },
  },
};

export interface ContainerTemplate {
  Image: string;
  User: string;
  WorkingDir: string;
  Env: string[];
  HostConfig: Dockerode.HostConfig;
}

export function containerTemplate(image: string, limits: ExecutorLimits): ContainerTemplate {
  // The tmpfs mounts count against the memory limit: they must leave room for the processes.
  assertExecutorLimits(limits);
  return {
    Image: image,
    User: EXECUTOR_USER,
    WorkingDir: WORKSPACE_DIR,
    Env: [`HOME=${WORKSPACE_DIR}`, "PYTHONUNBUFFERED=1"],
    HostConfig: hardenedHostConfig(limits),
  };
}

/** Create options for one container: the template plus name, labels and the keeper command. */
export function createOptions(
  t: ContainerTemplate,
  name: string,
  labels: Record<string, string>,
  cmd: string[],
  opts: { abortSignal?: AbortSignal; stateVolume?: boolean } = {},
): Dockerode.ContainerCreateOptions {
  return {
    name,
    Image: t.Image,
    User: t.User,
    WorkingDir: t.WorkingDir,
    Env: t.Env,
    Cmd: cmd,
    Labels: labels,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    NetworkDisabled: true,
    HostConfig: opts.stateVolume ? { ...t.HostConfig, Mounts: [STATE_MOUNT] } : t.HostConfig,
    ...(opts.abortSignal ? { abortSignal: opts.abortSignal } : {}),
  };
}
