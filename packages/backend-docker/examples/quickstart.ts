/**
 * The README's usage example, as a file the package's tests compile and run against the real
 * engine (test/examples.test.ts). Every option has a default: the image
 * "code-interpreter-executor:latest" (never pulled; build it with
 * `bash images/executor/build-offline.sh`), DEFAULT_EXECUTOR_LIMITS, DOCKER_HOST or the default
 * socket.
 */
// In your project: import { createDockerBackend } from "@code-interpreter/backend-docker";
import { createDockerBackend } from "../src/index.js";

export async function quickstart(): Promise<{ session: string; oneShot: string }> {
  const backend = createDockerBackend();
  try {
    await backend.ping(); // BackendUnavailableError (503) when the engine does not answer

    const session = await backend.createSession({
      files: [],
      ttlSeconds: 600,
      idleTimeoutSeconds: 300,
      metadata: { chat_id: "abc" },
      owner: null,
    });
    const result = await backend.execInSession(session.id, {
      language: "python",
      code: "x = 2\nx * 21",
      timeoutMs: 10_000,
      maxOutputBytes: 1_000_000,
    });
    await backend.deleteSession(session.id);

    // One-shot: a fresh container, always removed afterwards (success, timeout, abort, error).
    const once = await backend.execute({
      language: "bash",
      code: "echo $((6*7))",
      timeoutMs: 10_000,
      maxOutputBytes: 1000,
      files: [],
    });

    // In a server, call backend.reap() on a timer (expired/idle sessions, orphaned executors)
    // and stop that timer before close().
    await backend.reap();
    return { session: result.stdout, oneShot: once.stdout };
  } finally {
    await backend.close(); // stops what the backend started; every later call is a 503
  }
}
