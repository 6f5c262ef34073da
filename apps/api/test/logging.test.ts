import { Writable } from "node:stream";
import { pino } from "pino";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createApp } from "../src/index.js";
import { MemoryFileStore, testConfig } from "./helpers.js";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n"))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: pino({ level: "info" }, stream) };
}

describe("request logging", () => {
  it("logs id, method, url, status and duration, never headers, keys or bodies", async () => {
    const { lines, logger } = capture();
    const app = createApp({
      backend: new InMemoryBackend({ run: () => ({ stdout: "out" }) }),
      files: new MemoryFileStore(),
      config: testConfig({ API_KEYS: "super-secret-key" }),
      logger,
    });
    await request(app)
      .post("/v1/execute")
      .set("Authorization", "Bearer super-secret-key")
      .set("X-Request-Id", "req-1")
      .send({ code: "print('body-secret')" })
      .expect(200);
    await request(app).get("/v1/files").set("Authorization", "Bearer wrong-secret").expect(401);

    const all = JSON.stringify(lines);
    expect(all).not.toContain("super-secret-key");
    expect(all).not.toContain("wrong-secret");
    expect(all).not.toContain("body-secret");
    expect(all).not.toMatch(/authorization/i);
    const done = lines.find((l) => (l.req as { id?: string } | undefined)?.id === "req-1");
    expect(done).toMatchObject({
      req: { id: "req-1", method: "POST", url: "/v1/execute" },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    });
  });

  it("logs unexpected errors with their stack (server side only)", async () => {
    const { lines, logger } = capture();
    const app = createApp({
      backend: new InMemoryBackend({
        run: () => {
          throw new RangeError("boom inside");
        },
      }),
      files: new MemoryFileStore(),
      config: testConfig(),
      logger,
    });
    const res = await request(app).post("/v1/execute").send({ code: "x" }).expect(500);
    expect(res.text).not.toContain("boom");
    const errLine = lines.find((l) => l.msg === "request failed");
    expect((errLine?.err as { stack?: string } | undefined)?.stack).toMatch(/RangeError: boom inside/);
  });
});
