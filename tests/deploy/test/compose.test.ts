/**
 * compose.yaml on Debian's docker-compose (1.29): validates, comes up with the host-network
 * override (the API on 127.0.0.1:$PORT, the engine's socket from DOCKER_HOST, the file store
 * on a named volume), answers /readyz, runs a session and a file upload; `down -v` removes
 * everything it made.
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

const project = `citest${randomUUID().slice(0, 8)}`;
let base = "";
let env: NodeJS.ProcessEnv = {};
const files = ["-f", `${ROOT}/compose.yaml`, "-f", `${ROOT}/compose.host-network.yaml`];

function compose(...args: string[]) {
  return run("docker-compose", ["-p", project, ...files, ...args], { env, cwd: ROOT, timeout: 300_000 });
}

beforeAll(async () => {
  // setup builds both images; the image test rebuilds when stale.
  await run("bash", [`${ROOT}/images/api/build-offline.sh`], { timeout: 900_000 });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  env = {
    ...process.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    DOCKER_SOCKET: engineSocket(),
    DOCKER_GID: String(engineSocketGid()),
    LOG_LEVEL: "warn",
    // No warm pool: members would outlive `docker-compose down` (up to WARM_POOL_MAX_AGE_SECONDS).
    WARM_POOL_SIZE: "0",
  };
}, 900_000);

afterAll(async () => {
  await compose("down", "-v", "--timeout", "10").catch(() => undefined);
});

describe("compose", () => {
  it("docker-compose validates compose.yaml alone, with its default override and with the host-network override", async () => {
    await run("docker-compose", ["-f", `${ROOT}/compose.yaml`, "config", "-q"], { env, cwd: ROOT });
    // No -f: compose.yaml + compose.override.yaml (the documented `docker-compose up -d`).
    const { stdout: dflt } = await run("docker-compose", ["config"], { env, cwd: ROOT });
    expect(dflt).toMatch(/published: \d+/);
    const { stdout } = await compose("config");
    expect(stdout).toContain("network_mode: host");
    expect(stdout).not.toContain("published:");
    expect(stdout).toMatch(/files:\/data\/files/);
  });

  it("brings the API up: /readyz answers, a session runs, files land on the named volume", async () => {
    await compose("up", "-d");
    await waitFor(
      base,
      "/readyz",
      200,
      90_000,
      async () => (await compose("logs").catch((e: Error) => ({ stdout: String(e) }))).stdout,
    );
    await smoke(base);

    const form = new FormData();
    form.append("file", new Blob([Buffer.from("kept on the volume")]), "note.txt");
    const up = await fetch(`${base}/v1/files`, { method: "POST", body: form });
    expect(up.status).toBe(201);
    const volumes = await docker("volume", "ls", "-q", "--filter", `name=${project}_files`);
    expect(volumes.trim()).toBe(`${project}_files`);
    const { file_id: fileId } = (await up.json()) as { file_id: string };
    expect((await call(base, "GET", `/v1/files/${fileId}`)).status).toBe(200);
  });

  it("down -v removes the container and the volume", async () => {
    await compose("down", "-v", "--timeout", "10");
    expect(
      (await docker("ps", "-aq", "--filter", `label=com.docker.compose.project=${project}`)).trim(),
    ).toBe("");
    expect((await docker("volume", "ls", "-q", "--filter", `name=${project}_files`)).trim()).toBe("");
  });
});
