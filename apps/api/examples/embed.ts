/**
 * The README's embedding example, as a file this package's tests compile and run against the
 * real engine (test/examples.test.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
// In your project: import { createApp, executorLimits, loadConfig, startServer } from "@code-interpreter/api";
import { createApp, executorLimits, loadConfig, startServer } from "../src/index.js";

export async function embed(env: Record<string, string | undefined> = process.env): Promise<string> {
  const config = loadConfig(env); // the server's environment (see Configuration); throws ConfigError
  const backend = createDockerBackend({
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
  });
  const dir = await mkdtemp(join(tmpdir(), "ci-embed-"));
  const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 3600 });

  // Just the Express app: mount it, or hand it to supertest / http.createServer.
  createApp({ backend, files, config /* , logger, metrics, jsonLimitBytes */ });

  // Or the whole server: listen + reaper + graceful close(). Port 0 picks a free port.
  const running = await startServer({ backend, files, config, host: "127.0.0.1", port: 0 });
  try {
    const res = await fetch(`${running.url}/v1/execute`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: "x = 2\nx * 21" }),
    });
    return ((await res.json()) as { stdout: string }).stdout;
  } finally {
    await running.close(); // drains, stops the reaper, backend.close(); sessions are kept
    await rm(dir, { recursive: true, force: true });
  }
}
