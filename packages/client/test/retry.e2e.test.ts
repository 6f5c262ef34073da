/**
 * Retries on the real server: with MAX_SESSIONS=1 a second create is answered 429 with
 * `Retry-After`; the client waits that long and tries again, and succeeds once the first
 * session is deleted. Without retries the error is a RateLimitError carrying `retryAfter`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CodeInterpreter, RateLimitError } from "../src/index.js";
import { startTestServer, type TestServer } from "./server.js";

// A key of its own: MAX_SESSIONS counts per key when keys are set, so other suites'
// sessions on the same engine do not count against it.
const KEY = `key-${randomUUID()}`;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ API_KEYS: KEY, MAX_SESSIONS: "1" });
}, 60_000);

afterAll(async () => {
  const client = new CodeInterpreter({ baseUrl: server.baseUrl, apiKey: KEY });
  for (const s of await client.sessions.list().toArray()) await s[Symbol.asyncDispose]();
  await server?.close();
}, 60_000);

it("a 429 is a RateLimitError with retryAfter when retries are off", async () => {
  const client = new CodeInterpreter({ baseUrl: server.baseUrl, apiKey: KEY, maxRetries: 0 });
  await using _first = await client.sessions.create();
  const err = await client.sessions.create().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RateLimitError);
  // The server asks for 2 s on a 429 (RETRY_AFTER_SECONDS in apps/api/src/http-errors.ts).
  expect(err).toMatchObject({ status: 429, retryAfter: 2 });
}, 60_000);

it("a 429 is retried after Retry-After until capacity frees up", async () => {
  const attempts: Array<{ status: number; at: number }> = [];
  const client = new CodeInterpreter({
    baseUrl: server.baseUrl,
    apiKey: KEY,
    maxRetries: 10,
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method === "POST") attempts.push({ status: res.status, at: Date.now() });
      return res;
    },
  });
  const first = await client.sessions.create();
  attempts.length = 0;
  const second = client.sessions.create();
  // Frees the slot only after the second create was refused at least once.
  while (!attempts.some((a) => a.status === 429)) await new Promise((r) => setTimeout(r, 50));
  await first.delete();
  const s = await second;
  try {
    expect(s.id).toMatch(/^code-session-/);
    expect(attempts[0]?.status).toBe(429);
    expect(attempts.at(-1)?.status).toBe(201);
    // Each retry waited the server's Retry-After (1 s), not the client's shorter backoff.
    for (let i = 1; i < attempts.length; i++) {
      expect(attempts[i]!.at - attempts[i - 1]!.at).toBeGreaterThanOrEqual(950);
    }
  } finally {
    await s.delete();
  }
}, 60_000);
