/**
 * The real API server in-process (the `code-interpreter-api` binary's runMain, configured by
 * environment as in production) on 127.0.0.1:0, backed by the real Docker engine
 * (DOCKER_HOST), with its file store in a temporary directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { runMain } from "@code-interpreter/api";

export interface TestServer {
  baseUrl: string;
  docker: Dockerode;
  /** True while the engine still has a container of this name (a session id). */
  containerExists(name: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const docker = new Dockerode();
  await docker.ping().catch((err: unknown) => {
    throw new Error(`no Docker engine answers (${String(err)}): run \`pnpm run setup\` first`);
  });
  const dir = await mkdtemp(join(tmpdir(), "ci-client-test-"));
  const handle = await runMain({
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "silent",
      FILE_STORAGE_DIR: dir,
      EXECUTOR_IMAGE: process.env.EXECUTOR_IMAGE ?? "code-interpreter-executor:latest",
      MAX_EXEC_TIMEOUT_MS: "30000",
      DEFAULT_EXEC_TIMEOUT_MS: "10000",
      SESSION_MAX_LIFETIME_SECONDS: "600",
      MEMORY_LIMIT_MB: "128",
      // MAX_SESSIONS counts every session on the engine (per key when keys are set).
      MAX_SESSIONS: "10000",
      // No warm pool: members would outlive the test server (the API's own tests cover the pool).
      WARM_POOL_SIZE: "0",
      ...env,
    },
    handleSignals: false,
    exit: () => undefined,
  });
  if (!handle) throw new Error("the API did not start (invalid configuration)");
  return {
    baseUrl: handle.running.url,
    docker,
    async containerExists(name) {
      try {
        await docker.getContainer(name).inspect();
        return true;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return false;
        throw err;
      }
    },
    async close() {
      await handle.running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
