/** Test helpers: a backend on the real engine, and tracking of every container the tests create. */
import { Readable } from "node:stream";
import Dockerode from "dockerode";
import { buffer as readAll } from "node:stream/consumers";
import { type ExecutorLimits, type StagedFile } from "@code-interpreter/core";
import { createDockerBackend, type DockerBackend, type DockerBackendOptions } from "../src/index.js";

export const IMAGE = process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest";
export const docker = new Dockerode();

export const LIMITS: ExecutorLimits = {
  memoryLimitMb: 128,
  cpuLimit: 1,
  cpuTimeLimitSec: 10,
  pidsLimit: 64,
  workspaceSizeMb: 64,
  tmpSizeMb: 16,
};

/** Names (or ids) of containers created by this test process; removed in cleanup(). */
const tracked = new Set<string>();
export const track = (nameOrId: string): string => {
  tracked.add(nameOrId);
  return nameOrId;
};

export function makeBackend(extra: Partial<DockerBackendOptions> = {}): DockerBackend {
  return createDockerBackend({
    docker,
    image: IMAGE,
    limits: LIMITS,
    sessionMaxLifetimeSeconds: 3600,
    maxFileBytes: 10 * 1024 * 1024,
    ...extra,
  });
}

export async function cleanup(): Promise<void> {
  await Promise.all(
    [...tracked].map(async (n) => {
      try {
        await docker.getContainer(n).remove({ force: true });
      } catch {
        // already gone
      }
      tracked.delete(n);
    }),
  );
}

export async function exists(nameOrId: string): Promise<boolean> {
  try {
    await docker.getContainer(nameOrId).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Waits until the container is gone (AutoRemove / removal in progress). */
export async function gone(nameOrId: string, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await exists(nameOrId))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !(await exists(nameOrId));
}

/** A plain dockerode exec (not through the backend): stdout, stderr, exit code. */
export async function plainExec(
  nameOrId: string,
  cmd: string[],
): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number | null }> {
  const c = docker.getContainer(nameOrId);
  const exec = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { PassThrough } = await import("node:stream");
  const o = new PassThrough();
  const e = new PassThrough();
  o.on("data", (b: Buffer) => out.push(b));
  e.on("data", (b: Buffer) => err.push(b));
  docker.modem.demuxStream(stream, o, e);
  await new Promise<void>((resolve) => {
    stream.on("end", resolve);
    stream.on("close", resolve);
  });
  let info = await exec.inspect();
  for (let i = 0; i < 50 && info.Running; i++) {
    await new Promise((r) => setTimeout(r, 20));
    info = await exec.inspect();
  }
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode: info.ExitCode };
}

/** Starts a plain long-running container from the executor image (not a session). */
export async function startPlainContainer(name: string, labels: Record<string, string>): Promise<string> {
  track(name);
  const c = await docker.createContainer({
    name,
    Image: IMAGE,
    Cmd: ["sleep", "600"],
    Labels: labels,
    HostConfig: { NetworkMode: "none", AutoRemove: false },
  });
  await c.start();
  return c.id;
}

export function staged(path: string, data: Buffer | string): StagedFile {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { path, size: buf.length, open: () => Promise.resolve(Readable.from([buf])) };
}

export function sessionReq(extra: Partial<Parameters<DockerBackend["createSession"]>[0]> = {}) {
  return { files: [], ttlSeconds: 600, idleTimeoutSeconds: null, metadata: {}, owner: null, ...extra };
}

export async function sessionContainersWithLabels(id: string): Promise<Dockerode.ContainerInfo[]> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: ["app=code-interpreter", "component=session"], name: [id] },
  });
  return list.filter((c) => c.Names.includes(`/${id}`));
}

export { readAll };

/** What a pooled backend's pool reported: claims by outcome ("hit:session", "miss:executor", ...). */
export interface PoolProbe {
  claims: string[];
  hits(kind?: "session" | "executor"): number;
}

/** A backend with a warm pool of `size`, and a probe of its claims. */
export function makePooledBackend(
  size = 2,
  extra: Partial<DockerBackendOptions> & { maxAgeSeconds?: number } = {},
): { backend: DockerBackend; probe: PoolProbe } {
  const claims: string[] = [];
  const { maxAgeSeconds, ...rest } = extra;
  const backend = makeBackend({
    warmPool: {
      size,
      syncIntervalMs: 500,
      ...(maxAgeSeconds ? { maxAgeSeconds } : {}),
      events: { claim: (outcome, kind) => claims.push(`${outcome}:${kind}`) },
    },
    ...rest,
  });
  const probe: PoolProbe = {
    claims,
    hits: (kind) => claims.filter((c) => c === `hit:${kind ?? "session"}`).length,
  };
  return { backend, probe };
}

/** Waits until the backend's pool has `n` ready members. */
export async function poolReady(backend: DockerBackend, n: number, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while ((backend.warmPoolStats()?.ready ?? 0) < n) {
    if (Date.now() > until)
      throw new Error(`the warm pool did not reach ${n} members: ${JSON.stringify(backend.warmPoolStats())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every container of ours on the engine (sessions, members, executors), by name. */
export async function ourContainers(): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: ["app=code-interpreter"] } });
  return list.map((c) => (c.Names[0] ?? "").replace(/^\//, ""));
}
