/**
 * The README's usage example, as a file this package's tests compile and run
 * (test/examples.test.ts). Core does no platform I/O, so the backend here is the in-memory one
 * from `@code-interpreter/core/testing`, whose "program" is a function you supply: code written
 * against the `Backend` interface runs unchanged on the Docker or Kubernetes backend.
 */
import { Readable } from "node:stream";
// In your project: import { ... } from "@code-interpreter/core"; and ".../core/testing".
import {
  ValidationError,
  assertSafeWorkspacePath,
  isSessionId,
  ownerTag,
  type Backend,
} from "../src/index.js";
import { InMemoryBackend } from "../src/testing/index.js";

/** Code written against the Backend interface: one session, one run, always deleted. */
export async function answer(backend: Backend, apiKey: string): Promise<string> {
  const owner = ownerTag(apiKey); // a hash: API keys never appear on containers or pods
  const session = await backend.createSession({
    files: [{ path: "data/in.txt", size: 2, open: async () => Readable.from([Buffer.from("21")]) }],
    ttlSeconds: 600,
    idleTimeoutSeconds: 300,
    metadata: { chat_id: "abc" },
    owner,
  });
  try {
    const r = await backend.execInSession(
      session.id,
      {
        language: "python",
        code: "int(open('data/in.txt').read()) * 2",
        timeoutMs: 10_000,
        maxOutputBytes: 1e6,
      },
      { owner }, // another owner's scope would get SessionNotFoundError (404)
    );
    return r.stdout;
  } finally {
    await backend.deleteSession(session.id, { owner });
  }
}

export async function quickstart(): Promise<{ answer: string; checks: string[] }> {
  // The safety checks done before anything reaches a platform:
  const checks = [
    `${isSessionId("code-session-3f1c2a4e-8b7d-4c1e-9f2a-0b1c2d3e4f50")}`, // true
    `${isSessionId("code-session-../../etc")}`, // false: never used as a container or pod name
  ];
  assertSafeWorkspacePath("data/in.txt"); // fine
  try {
    assertSafeWorkspacePath("../etc/passwd");
  } catch (e) {
    if (e instanceof ValidationError) checks.push(`${e.status}`); // 422, naming the path
  }

  // A backend whose "program" doubles the number in the staged file.
  const backend = new InMemoryBackend({
    run: (_req, ctx) => ({ stdout: `${Number(ctx.workspace.get("data/in.txt")) * 2}\n` }),
  });
  try {
    return { answer: await answer(backend, "my-api-key"), checks };
  } finally {
    await backend.close(); // every later call is BackendUnavailableError (503)
  }
}
