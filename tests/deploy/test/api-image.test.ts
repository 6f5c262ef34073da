/**
 * The API image: built offline (images/api/build-offline.sh, what setup runs; cached, so a
 * no-op when setup already built it), then a container of it — non-root, read-only root,
 * the engine's socket mounted, host network on 127.0.0.1 — passes the HTTP smoke.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ROOT,
  call,
  docker,
  engineSocket,
  engineSocketGid,
  freePort,
  run,
  smoke,
  waitFor,
} from "./support.js";

const IMAGE = process.env.API_IMAGE ?? "code-interpreter-api:latest";
const name = `ci-api-image-test-${randomUUID().slice(0, 8)}`;
let base = "";

beforeAll(async () => {
  await run("bash", [`${ROOT}/images/api/build-offline.sh`, IMAGE], { timeout: 900_000 });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  await docker(
    "run",
    "-d",
    "--name",
    name,
    "--network",
    "host",
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--group-add",
    String(engineSocketGid()),
    "-v",
    `${engineSocket()}:/var/run/docker.sock`,
    "-e",
    "HOST=127.0.0.1",
    "-e",
    `PORT=${port}`,
    "-e",
    "LOG_LEVEL=warn",
    "-e",
    "WARM_POOL_SIZE=0",
    IMAGE,
  );
  await waitFor(base, "/readyz", 200, 60_000, () => docker("logs", name).catch(String));
}, 900_000);

afterAll(async () => {
  await docker("rm", "-f", "-v", name).catch(() => undefined);
});

describe("the API image", () => {
  it("is non-root, with a HEALTHCHECK on /livez and production dependencies only", async () => {
    const config = JSON.parse(await docker("image", "inspect", "-f", "{{json .Config}}", IMAGE)) as {
      User: string;
      Healthcheck?: { Test: string[] };
      Entrypoint: string[];
    };
    expect(config.User).toBe("65532:65532");
    expect(config.Healthcheck?.Test.join(" ")).toContain("/livez");
    const modules = await docker("run", "--rm", "--entrypoint", "ls", IMAGE, "/app/node_modules/.pnpm");
    expect(modules).toContain("@code-interpreter+backend-k8s");
    expect(modules).not.toMatch(/^(vitest|typescript|eslint|supertest|@types\+supertest)@/m);
  });

  it("passes the HTTP smoke against the host's engine (health, execute, session create/bash/delete)", async () => {
    await smoke(base);
    const ready = await call(base, "GET", "/readyz");
    expect(ready.body).toMatchObject({ status: "ready", backend: "docker" });
    const metrics = (await call(base, "GET", "/metrics")).body as string;
    expect(metrics).toMatch(
      /^code_interpreter_http_requests_total\{method="POST",route="\/v1\/execute",status="200"\} 1$/m,
    );
    expect(metrics).toMatch(/^code_interpreter_executions_total\{route="session_bash",outcome="ok"\} 1$/m);
    expect(metrics).toMatch(/^code_interpreter_info\{backend="docker",version="[^"]+"\} 1$/m);
  });

  it("reports healthy through its own HEALTHCHECK", async () => {
    let status = "";
    for (let i = 0; i < 60 && status !== "healthy"; i++) {
      status = (await docker("inspect", "-f", "{{.State.Health.Status}}", name)).trim();
      if (status !== "healthy") await new Promise((r) => setTimeout(r, 1000));
    }
    expect(status).toBe("healthy");
  }, 90_000);

  it("--help prints and exits 0 without serving", async () => {
    const { stdout } = await run("docker", ["run", "--rm", "--network", "none", IMAGE, "--help"], {
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^Usage: code-interpreter-api/);
  });
});
