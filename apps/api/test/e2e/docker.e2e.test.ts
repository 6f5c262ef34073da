/**
 * The end-to-end suite against the real Docker engine: createApp + createDockerBackend + a
 * LocalFileStore in a temp dir, on 127.0.0.1:0, with small limits so the heavy tests are quick.
 * Never skipped: with no engine, setup fails and says how to get one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { executorLimits, loadConfig, type Config } from "../../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { dockerInspector, trackCreatedContainers } from "./docker-platform.js";
import { describeApiE2E, type E2EEnv } from "./suite.js";
import { E2E_ENV, FaultyFileStore, listenApp, requireDockerEngine } from "./support.js";

const config = loadConfig({ ...E2E_ENV });

function backendFor(docker: Dockerode, config: Config) {
  return createDockerBackend({
    docker,
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
  });
}

async function setup(): Promise<E2EEnv> {
  await requireDockerEngine();
  const dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-docker-"));
  const files = new FaultyFileStore(
    new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: config.fileTtlSec }),
  );
  const docker = new Dockerode();
  const created = trackCreatedContainers(docker);
  const backend = backendFor(docker, config);
  const server = await listenApp({ backend, files, config });
  const inspect = dockerInspector({ docker: new Dockerode(), created, image: config.executorImage });

  return {
    baseUrl: server.baseUrl,
    backendKind: "docker",
    limits: { maxOutputBytes: config.maxOutputBytes, maxExecTimeoutMs: config.maxExecTimeoutMs },
    inspect,
    failFileOpen: (fileId) => files.failOpen(fileId),
    startUnreachable: async () => {
      // A socket path where no engine answers.
      const dead = createDockerBackend({
        socketPath: "/tmp/nope.sock",
        image: config.executorImage,
        limits: executorLimits(config),
        sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
        maxFileBytes: config.maxFileSizeBytes,
        apiTimeoutMs: 5_000,
      });
      return listenApp({ backend: dead, files, config });
    },
    startWith: async (overrides) => {
      const c = loadConfig({ ...E2E_ENV, ...overrides });
      return listenApp({ backend: backendFor(docker, c), files, config: c });
    },
    close: async () => {
      await server.close();
      await inspect.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describeApiE2E("docker", setup);
