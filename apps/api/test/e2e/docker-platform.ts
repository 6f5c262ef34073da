/**
 * The Docker side of the e2e env: a dockerode client that records the names of the containers
 * our backend asks for (so a test knows which executors are *its own* while other suites use
 * the same engine), and an inspector that looks at the engine directly, not through the backend.
 */
import { PassThrough } from "node:stream";
import { buffer } from "node:stream/consumers";
import type Dockerode from "dockerode";
import type { ExecOutput, PlatformInspector } from "./suite.js";

/** Wraps `docker.createContainer` so every requested name is recorded (in order). */
export function trackCreatedContainers(docker: Dockerode): string[] {
  const names: string[] = [];
  const original = docker.createContainer.bind(docker);
  docker.createContainer = ((opts: Dockerode.ContainerCreateOptions, ...rest: unknown[]) => {
    if (typeof opts?.name === "string") names.push(opts.name);
    return (original as (...a: unknown[]) => unknown)(opts, ...rest);
  }) as typeof docker.createContainer;
  return names;
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === "number" ? s : undefined;
}

/** Runs `cmd` in a container through the engine (optionally as `user`); output and exit code. */
export async function dockerExec(
  docker: Dockerode,
  container: Dockerode.Container,
  cmd: string[],
  user?: string,
): Promise<ExecOutput> {
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    ...(user ? { User: user } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  docker.modem.demuxStream(stream, out, err);
  const outDone = buffer(out);
  const errDone = buffer(err);
  await new Promise<void>((resolve, reject) => {
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", reject);
  });
  out.end();
  err.end();
  const [stdout, stderr] = await Promise.all([outDone, errDone]);
  const info = await exec.inspect();
  return { stdout, stderr, exitCode: info.ExitCode ?? -1 };
}

export interface DockerInspector extends PlatformInspector {
  /** Force-removes the unrelated containers this inspector started and any still-present tracked ones. */
  cleanup(): Promise<void>;
}

export function dockerInspector(opts: {
  docker: Dockerode;
  created: readonly string[];
  image: string;
}): DockerInspector {
  const { docker, created, image } = opts;
  const unrelated: string[] = [];

  async function inspect(name: string): Promise<Dockerode.ContainerInspectInfo | null> {
    try {
      return await docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async function forceRemove(name: string): Promise<void> {
    try {
      await docker.getContainer(name).remove({ force: true });
    } catch (err) {
      const s = statusOf(err);
      if (s !== 404 && s !== 409) throw err;
    }
  }

  return {
    async containerExists(name) {
      return (await inspect(name)) !== null;
    },

    async isRunning(name) {
      return (await inspect(name))?.State?.Running === true;
    },

    async labels(name) {
      const info = await inspect(name);
      if (!info) throw new Error(`container ${name} does not exist`);
      return { ...(info.Config?.Labels ?? {}) };
    },

    async exec(name, cmd, execOpts = {}) {
      return dockerExec(docker, docker.getContainer(name), cmd, execOpts.user);
    },

    createdNames() {
      return created;
    },

    async listLabelled(component) {
      const list = await docker.listContainers({
        all: true,
        filters: { label: ["app=code-interpreter", `component=${component}`] },
      });
      return list.flatMap((c) => (c.Names ?? []).map((n) => n.replace(/^\//, "")));
    },

    async startUnrelated(name) {
      const container = await docker.createContainer({
        name,
        Image: image,
        Cmd: ["sleep", "600"],
        Labels: { "code-interpreter-e2e": "unrelated" },
        NetworkDisabled: true,
        HostConfig: { AutoRemove: true, NetworkMode: "none", ReadonlyRootfs: true, Memory: 32 * 1024 * 1024 },
      });
      unrelated.push(name);
      await container.start();
    },

    async hardening(name) {
      const info = await inspect(name);
      if (!info) throw new Error(`container ${name} does not exist`);
      return {
        user: info.Config?.User ?? "",
        networkNone: info.HostConfig?.NetworkMode === "none",
        readOnlyRoot: info.HostConfig?.ReadonlyRootfs === true,
      };
    },

    async cleanup() {
      await Promise.all([...unrelated, ...created].map((n) => forceRemove(n)));
    },
  };
}
