/**
 * The retry and error rules with a scripted fetch (in addition to the real-server tests):
 * which answers are retried, how long the client waits, and what is thrown.
 */
import { describe, expect, it } from "vitest";
import {
  CodeInterpreter,
  ConnectionError,
  PayloadTooLargeError,
  ServerError,
  StreamError,
  UnavailableError,
  ValidationError,
  parseRetryAfter,
} from "../src/index.js";

type Answer = Response | Error;

function scripted(answers: Answer[]) {
  const calls: Array<{ url: string; method: string; at: number; userAgent: string | undefined }> = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    calls.push({
      url: String(input),
      method: init?.method ?? "GET",
      at: Date.now(),
      userAgent: headers["user-agent"],
    });
    const next = answers.shift();
    if (!next) throw new Error("no more scripted answers");
    if (next instanceof Error) throw next;
    return next;
  };
  return { calls, fetchImpl };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

const client = (fetchImpl: typeof fetch, extra = {}) =>
  new CodeInterpreter({ baseUrl: "http://ci.test/", fetch: fetchImpl, retryMinDelayMs: 10, ...extra });

const session = {
  session_id: "code-session-00000000-0000-4000-8000-000000000000",
  status: "running",
  created_at: 1_700_000_000.5,
  expires_at: 1_700_000_600.5,
  last_active_at: 1_700_000_000.5,
  metadata: {},
};

describe("retries", () => {
  it("retries 503 with backoff and returns the later success", async () => {
    const { calls, fetchImpl } = scripted([
      json(503, { detail: "engine down" }),
      json(503, { detail: "engine down" }),
      json(201, session),
    ]);
    const s = await client(fetchImpl).sessions.create();
    expect(s.id).toBe(session.session_id);
    expect(s.info.createdAt.toISOString()).toBe("2023-11-14T22:13:20.500Z");
    expect(calls).toHaveLength(3);
    expect(calls[0]!.url).toBe("http://ci.test/v1/sessions");
    expect(calls[0]!.userAgent).toMatch(/^code-interpreter-client-ts\//);
  });

  it("gives up after maxRetries with the typed error", async () => {
    const { calls, fetchImpl } = scripted([json(503, { detail: "a" }), json(503, { detail: "b" })]);
    const err = await client(fetchImpl, { maxRetries: 1 })
      .sessions.create()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ status: 503, detail: "b" });
    expect(calls).toHaveLength(2);
  });

  it("never retries other client errors", async () => {
    for (const [status, cls] of [
      [422, ValidationError],
      [413, PayloadTooLargeError],
      [500, ServerError],
    ] as const) {
      const { calls, fetchImpl } = scripted([json(status, { detail: "no" })]);
      await expect(client(fetchImpl).execute("1")).rejects.toBeInstanceOf(cls);
      expect(calls).toHaveLength(1);
    }
  });

  it("retries a refused connection for GET, never for POST (the run may have started)", async () => {
    const refused = () => new TypeError("fetch failed", { cause: new Error("ECONNREFUSED") });
    const get = scripted([refused(), json(200, session)]);
    expect((await client(get.fetchImpl).sessions.get(session.session_id)).id).toBe(session.session_id);
    expect(get.calls).toHaveLength(2);

    const post = scripted([refused()]);
    const err = await client(post.fetchImpl)
      .execute("1")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).toMatchObject({ status: 0 });
    expect(post.calls).toHaveLength(1);
  });

  it("honours Retry-After as seconds and as an HTTP date, capped at retryMaxDelayMs", () => {
    expect(parseRetryAfter("2")).toBe(2);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 7_000)).toBe(3);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it("a Retry-After longer than retryMaxDelayMs waits retryMaxDelayMs", async () => {
    const { calls, fetchImpl } = scripted([
      json(429, { detail: "full" }, { "retry-after": "3600" }),
      json(201, session),
    ]);
    await client(fetchImpl, { retryMaxDelayMs: 200 }).sessions.create();
    const waited = calls[1]!.at - calls[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(2_000);
  });

  it("an abort while waiting to retry rejects with the abort reason", async () => {
    const { fetchImpl } = scripted([json(429, { detail: "full" }, { "retry-after": "60" })]);
    const controller = new AbortController();
    const p = client(fetchImpl, { retryMaxDelayMs: 60_000 }).sessions.create({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 50);
    await expect(p).rejects.toThrow("stop");
  });
});

it("timeoutMs bounds an attempt: a server that never answers is a ConnectionError", async () => {
  const hang: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) => {
      init?.signal?.addEventListener("abort", () => reject(init.signal?.reason as Error));
    });
  const err = await client(hang, { timeoutMs: 200 })
    .execute("1")
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectionError);
  expect((err as ConnectionError).detail).toMatch(/within 200 ms/);
});

describe("streams from a hostile server", () => {
  const sse = (body: string) =>
    new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  const run = (body: string) =>
    client(scripted([sse(body)]).fetchImpl).execute("1", { onStdout: () => undefined });

  it("an error event is a StreamError with its message", async () => {
    await expect(run('event: error\ndata: {"message":"boom"}\n\n')).rejects.toThrow(StreamError);
    await expect(run('event: error\ndata: {"message":"boom"}\n\n')).rejects.toThrow("boom");
  });

  it("a stream without result, or with malformed events, is a StreamError", async () => {
    await expect(run('event: output\ndata: {"stream":"stdout","data":"x"}\n\n')).rejects.toThrow(
      /before its result/,
    );
    await expect(run("event: output\ndata: {not json\n\n")).rejects.toThrow(/malformed output/);
    await expect(run('event: output\ndata: {"stream":"other","data":"x"}\n\n')).rejects.toThrow(
      /malformed output/,
    );
    await expect(run('event: result\ndata: {"exit_code":"0"}\n\n')).rejects.toThrow(/malformed result/);
  });

  it("events split across chunks and unknown events are handled; nothing counts after result", async () => {
    const chunks = [
      'event: output\ndata: {"stream":"stdout","da',
      'ta":"a"}\n\n: comment\n\nevent: future\ndata: 1\n\n',
      'event: result\ndata: {"exit_code":0,"timed_out":false,"duration_ms":5,"files":[]}\n\n',
      'event: output\ndata: {"stream":"stdout","data":"late"}\n\n',
    ];
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch));
        c.close();
      },
    });
    const seen: string[] = [];
    const r = await client(scripted([new Response(body, { status: 200 })]).fetchImpl).execute("1", {
      onStdout: (d) => void seen.push(d),
    });
    expect(seen).toEqual(["a"]);
    expect(r).toMatchObject({ stdout: "a", exitCode: 0, durationMs: 5 });
  });
});
