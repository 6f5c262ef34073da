/** /livez never depends on the backend; /readyz answers 503 naming what it waits for. */
import { pino } from "pino";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { InMemoryBackend } from "@code-interpreter/core/testing";
import { createApp } from "../src/index.js";
import { backendTarget } from "../src/routes/health.js";
import { MemoryFileStore, testConfig } from "./helpers.js";

class DownBackend extends InMemoryBackend {
  override async ping(): Promise<void> {
    throw new Error("connect ENOENT /run/nothing.sock");
  }
}

class HangingBackend extends InMemoryBackend {
  override ping(): Promise<void> {
    return new Promise(() => undefined);
  }
}

class DownFiles extends MemoryFileStore {
  override async ping(): Promise<void> {
    throw new Error("EACCES: /data/files is not writable");
  }
}

function app(backend: InMemoryBackend, files = new MemoryFileStore(), env: Record<string, string> = {}) {
  return createApp({
    backend,
    files,
    config: testConfig(env),
    logger: pino({ level: "silent" }),
    backendTarget: "the Docker engine at unix:///run/nothing.sock",
  });
}

describe("health split", () => {
  it("/livez and /readyz answer 200 when everything answers", async () => {
    const a = app(new InMemoryBackend({ kind: "docker" }));
    const live = await request(a).get("/livez").expect(200);
    expect(live.body).toMatchObject({ status: "ok", version: expect.any(String) });
    const ready = await request(a).get("/readyz").expect(200);
    expect(ready.body).toMatchObject({
      status: "ready",
      backend: "docker",
      checks: { backend: "ok", files: "ok" },
    });
  });

  it("/livez is 200 while the backend is down; /readyz is 503 naming the engine it waits for", async () => {
    const a = app(new DownBackend({ kind: "docker" }));
    await request(a).get("/livez").expect(200);
    const ready = await request(a).get("/readyz").expect(503);
    expect(ready.body.detail).toBe(
      "not ready: waiting for the Docker engine at unix:///run/nothing.sock (connect ENOENT /run/nothing.sock)",
    );
    expect(ready.body.checks).toEqual({ backend: "connect ENOENT /run/nothing.sock", files: "ok" });
    // /health (onyx-compatible) keeps its own shape.
    const health = await request(a).get("/health").expect(503);
    expect(health.body.status).toBe("unavailable");
  });

  it("/readyz is 503 when the file store does not answer", async () => {
    const a = app(new InMemoryBackend(), new DownFiles());
    const ready = await request(a).get("/readyz").expect(503);
    expect(ready.body.detail).toBe(
      "not ready: waiting for the file store (EACCES: /data/files is not writable)",
    );
  });

  it("/readyz gives up on a backend that never answers", async () => {
    const a = createApp({
      backend: new HangingBackend(),
      files: new MemoryFileStore(),
      config: testConfig(),
      logger: pino({ level: "silent" }),
    });
    // The default deadline is 5 s; a hanging engine must not hang the probe past it.
    const started = Date.now();
    const ready = await request(a).get("/readyz").expect(503);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(ready.body.checks.backend).toBe("no answer within 5000 ms");
  }, 15_000);

  it("probes need no API key, everything else still does", async () => {
    const a = app(new InMemoryBackend(), new MemoryFileStore(), { API_KEYS: "k1" });
    await request(a).get("/livez").expect(200);
    await request(a).get("/readyz").expect(200);
    await request(a).get("/v1/files").expect(401);
  });

  it("names the engine from the environment", () => {
    expect(backendTarget("docker", { DOCKER_HOST: "tcp://docker.example:2375" })).toBe(
      "the Docker engine at tcp://docker.example:2375",
    );
    expect(backendTarget("docker", {})).toBe("the Docker engine at unix:///var/run/docker.sock");
    expect(
      backendTarget("kubernetes", { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }),
    ).toBe("the Kubernetes API at https://10.96.0.1:443");
  });
});
