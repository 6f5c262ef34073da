/**
 * Conformance rows for the session layer (issue 12's table): behaviour that once drifted
 * between backends. Called from describeBackendConformance; each row runs on every backend.
 */
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, it } from "vitest";
import type { Backend, CreateSessionRequest, ExecRequest, SessionInfo } from "../backend.js";
import {
  BackendUnavailableError,
  PayloadTooLargeError,
  SessionNotFoundError,
  ValidationError,
} from "../errors.js";
import { REAP_REASONS } from "../lifetime.js";
import type { ConformanceHarness } from "./conformance.js";

export interface LayerRowsContext {
  backend: () => Backend;
  create: (req?: Partial<CreateSessionRequest>) => Promise<SessionInfo>;
  makeBackend: () => Promise<ConformanceHarness>;
  maxLifetimeSeconds: number;
}

const sh = (code: string): ExecRequest => ({
  language: "bash",
  code,
  timeoutMs: 20_000,
  maxOutputBytes: 10_000,
});
const rejection = <T>(p: Promise<T>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

export function describeSessionLayerRows(ctx: LayerRowsContext): void {
  it("serialises two concurrent Python cells on one session; bash runs beside them", async () => {
    const b = ctx.backend();
    const s = await ctx.create();
    const cell = (tag: string): ExecRequest => ({
      language: "python",
      code: `import time\nopen("order.log", "a").write("${tag}-start\\n")\ntime.sleep(1)\nopen("order.log", "a").write("${tag}-end\\n")`,
      timeoutMs: 20_000,
      maxOutputBytes: 10_000,
    });
    const write = b.writeSessionFile(s.id, "w.txt", { size: 1, content: Readable.from([Buffer.from("w")]) });
    const started = Date.now();
    const [, , bash] = await Promise.all([
      b.execInSession(s.id, cell("a")),
      b.execInSession(s.id, cell("b")),
      b.execInSession(s.id, sh("sleep 1; echo side")),
      write,
    ]);
    expect(bash.stdout).toBe("side\n");
    const log = (await b.execInSession(s.id, sh("cat order.log"))).stdout.trim().split("\n");
    expect([
      ["a-start", "a-end", "b-start", "b-end"],
      ["b-start", "b-end", "a-start", "a-end"],
    ]).toContainEqual(log);
    // The bash command did not wait for the two cells: it ran beside them.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await b.execInSession(s.id, sh("cat w.txt"))).stdout).toBe("w");
  });

  it("keeps Python state across calls (issue 9); a timeout keeps it; resetState clears it", async () => {
    const b = ctx.backend();
    const s = await ctx.create();
    const py = (code: string, more: Partial<ExecRequest> = {}): ExecRequest => ({
      language: "python",
      code,
      timeoutMs: 20_000,
      maxOutputBytes: 10_000,
      ...more,
    });
    expect(await b.execInSession(s.id, py("x = 5\ndef f(v):\n    return v + x"))).toMatchObject({
      exitCode: 0,
      stateReset: null,
    });
    expect((await b.execInSession(s.id, py("print(f(1))"))).stdout).toBe("6\n");
    const slow = await b.execInSession(s.id, py("while True:\n    pass", { timeoutMs: 1000 }));
    expect(slow).toMatchObject({ timedOut: true, exitCode: null, stateReset: null });
    expect((await b.execInSession(s.id, py("print(x)"))).stdout).toBe("5\n");
    const reset = await b.execInSession(s.id, py("print('x' in globals())", { resetState: true }));
    expect(reset.stdout).toBe("False\n");
    expect(reset.stateReset).toEqual({ reason: expect.any(String) });
    expect((await b.execInSession(s.id, py("print(1)"))).stateReset).toBeNull();
  });

  it("validates with one set of messages", async () => {
    const b = ctx.backend();
    const base = { files: [], ttlSeconds: 60, idleTimeoutSeconds: null, metadata: {}, owner: null };
    const cases: Array<[Partial<CreateSessionRequest>, RegExp]> = [
      [{ ttlSeconds: 0 }, /^ttl_seconds must be a positive integer$/],
      [{ ttlSeconds: 1.5 }, /^ttl_seconds must be a positive integer$/],
      [
        { ttlSeconds: ctx.maxLifetimeSeconds + 1 },
        new RegExp(
          `^ttl_seconds ${ctx.maxLifetimeSeconds + 1} exceeds the maximum session lifetime of ${ctx.maxLifetimeSeconds} seconds$`,
        ),
      ],
      [{ idleTimeoutSeconds: 0 }, /^idle_timeout_seconds must be a positive integer$/],
      [{ metadata: { k: 1 } as unknown as Record<string, string> }, /^metadata\.k must be a string$/],
      [
        { files: [{ path: "../x", size: 1, open: () => Promise.resolve(Readable.from([])) }] },
        /^files\[0\]\.path/,
      ],
    ];
    for (const [req, message] of cases) {
      const err = await rejection(b.createSession({ ...base, ...req }));
      expect(err, JSON.stringify(req)).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(message);
    }
    const s = await ctx.create();
    const k = await rejection(b.keepalive(s.id, 0));
    expect(k).toBeInstanceOf(ValidationError);
    expect((k as Error).message).toBe("ttl_seconds must be a positive integer");
    const tooBig = await rejection(
      b.writeSessionFile(s.id, "big.bin", { size: Number.MAX_SAFE_INTEGER, content: Readable.from([]) }),
    );
    expect(tooBig).toBeInstanceOf(PayloadTooLargeError);
    expect((tooBig as Error).message).toMatch(/^the file is larger than the limit of \d+ bytes$/);
    const unsafe = await rejection(b.readSessionFile(s.id, "../../etc/passwd"));
    expect(unsafe).toBeInstanceOf(ValidationError);
  });

  it("is BackendUnavailableError on every call after close(), and close() is idempotent", async () => {
    const h = await ctx.makeBackend();
    const b = h.backend;
    try {
      await b.close();
      await b.close();
      const id = "code-session-00000000-0000-4000-8000-000000000000";
      const calls: Array<() => Promise<unknown>> = [
        () => b.ping(),
        () => b.listSessions(),
        () => b.countSessions(),
        () => b.getSession(id),
        () => b.deleteSession(id),
        () => b.keepalive(id, 60),
        () => b.execInSession(id, sh("true")),
        () => b.listSessionFiles(id),
        () => b.readSessionFile(id, "x"),
        () => b.reap(),
        () =>
          b.createSession({ files: [], ttlSeconds: 60, idleTimeoutSeconds: null, metadata: {}, owner: null }),
        () => b.execute({ ...sh("true"), files: [] }),
      ];
      for (const call of calls) {
        expect(await rejection(call()), call.toString()).toBeInstanceOf(BackendUnavailableError);
      }
    } finally {
      await h.cleanup();
    }
  });

  it("an expired session found on access is not found, and removed without waiting for the reaper", async () => {
    const b = ctx.backend();
    const s = await ctx.create({ ttlSeconds: 2 });
    await sleep(Math.max(0, s.expiresAt - Date.now()) + 300);
    await expect(b.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(b.execInSession(s.id, sh("true"))).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(b.keepalive(s.id, 600)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect((await b.listSessions()).map((x) => x.id)).not.toContain(s.id);
    await sleep(1500);
    const report = await b.reap();
    // Already removed (by the access, or by the platform itself): nothing left for the reaper.
    expect(report.reaped.map((r) => r.id)).not.toContain(s.id);
    for (const r of report.reaped) expect(REAP_REASONS).toContain(r.reason);
  });
}
