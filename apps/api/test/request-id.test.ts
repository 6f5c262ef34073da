/** The request id is on every log line of that request, the backend's included. */
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import request from "supertest";
import { describe, expect, it } from "vitest";
import type { ExecResult, OneShotRequest } from "@code-interpreter/core";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createApp } from "../src/index.js";
import { requestIdMixin } from "../src/request-context.js";
import { MemoryFileStore, testConfig } from "./helpers.js";

/** A backend that logs the way real ones do: with a child logger it was given at construction. */
class LoggingBackend extends InMemoryBackend {
  constructor(private readonly log: Logger) {
    super({ kind: "docker" });
  }

  override async execute(req: OneShotRequest): Promise<ExecResult> {
    this.log.info("starting executor");
    await new Promise((r) => setTimeout(r, 5));
    const result = await super.execute(req);
    this.log.info("executor removed");
    return result;
  }
}

describe("request id in logs", () => {
  it("reaches the backend's log lines through the logger's mixin", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n"))
          if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logger = pino({ level: "info", mixin: requestIdMixin }, stream);
    const backend = new LoggingBackend(logger.child({ component: "backend" }));
    const app = createApp({ backend, files: new MemoryFileStore(), config: testConfig(), logger });

    await Promise.all([
      request(app).post("/v1/execute").set("X-Request-Id", "req-a").send({ code: "1" }).expect(200),
      request(app).post("/v1/execute").set("X-Request-Id", "req-b").send({ code: "2" }).expect(200),
    ]);
    const backendLines = lines.filter((l) => l.component === "backend");
    expect(backendLines).toHaveLength(4);
    expect(backendLines.map((l) => l.reqId).sort()).toEqual(["req-a", "req-a", "req-b", "req-b"]);

    // Outside a request there is no id.
    logger.child({ component: "backend" }).info("reaper pass");
    expect(lines.at(-1)).not.toHaveProperty("reqId");
  });
});
