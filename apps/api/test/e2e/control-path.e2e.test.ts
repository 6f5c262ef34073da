/**
 * Issue 8, holes 1 and 6, through the public HTTP API on the real Docker engine:
 *
 * - hole 1: code plants modules where a Python helper started in /workspace would import them
 *   (`json.py`, a `.pth` file in the user site, `sitecustomize.py`); keepalive, GET, execute
 *   and file calls then run. Nothing is ever created by root in the container (the only
 *   root-owned new file is the state file the engine writes through the archive API), and
 *   the session's deadlines are the API's, not the code's.
 * - hole 6: a fork bomb left running in a session's background; GET, list, keepalive and
 *   DELETE keep working, and an execute answers a clear 409, never a 500.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorLimits, loadConfig } from "../../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { dockerExec } from "./docker-platform.js";
import {
  apiClient,
  E2E_ENV,
  listenApp,
  requireDockerEngine,
  type ApiClient,
  type RunningHttp,
} from "./support.js";

const config = loadConfig({ ...E2E_ENV, PIDS_LIMIT: "48" });
const docker = new Dockerode();
let server: RunningHttp;
let api: ApiClient;
let dir: string;
const sessions: string[] = [];

beforeAll(async () => {
  await requireDockerEngine();
  dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-control-"));
  const backend = createDockerBackend({
    docker: new Dockerode(),
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
  });
  const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 600 });
  server = await listenApp({ backend, files, config });
  api = apiClient(server.baseUrl);
});

afterAll(async () => {
  for (const id of sessions)
    await docker
      .getContainer(id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function createSession(ttl: number): Promise<{ session_id: string; expires_at: unknown }> {
  const res = await api("/v1/sessions", { json: { ttl_seconds: ttl } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const s = res.body as { session_id: string; expires_at: unknown };
  sessions.push(s.session_id);
  return s;
}

const asRoot = (id: string, cmd: string[]) => dockerExec(docker, docker.getContainer(id), cmd, "0:0");

describe("hole 1: helpers never run the user's code as root", { timeout: 180_000 }, () => {
  it("planted json.py, .pth and sitecustomize.py: no root-created file, no moved deadline", async () => {
    const s = await createSession(120);
    const id = s.session_id;
    const payload = [
      "import os, json as _j",
      "tag = 'uid%d' % os.getuid()",
      "open('/tmp/pwned-' + tag + '-' + str(os.getpid()), 'w').write(tag)",
      "try:",
      "    open('/run/code-interpreter/state.json', 'w').write('{\"expiresAt\": 99999999999999, \"lastActiveAt\": 99999999999999}')",
      "except OSError:",
      "    pass",
    ].join("\n");
    const plant = await api(`/v1/sessions/${id}/execute`, {
      json: {
        code: [
          "import os, site",
          `payload = ${JSON.stringify(payload)}`,
          "open('/workspace/json.py', 'w').write(payload)",
          "open('/workspace/sitecustomize.py', 'w').write(payload)",
          "user_site = site.getusersitepackages()",
          "os.makedirs(user_site, exist_ok=True)",
          "open(os.path.join(user_site, 'x.pth'), 'w').write('import os; exec(open(\"/workspace/json.py\").read())\\n')",
          "open('/workspace/.planted', 'w').write('1')",
          "print(user_site)",
        ].join("\n"),
      },
    });
    expect(plant.status, JSON.stringify(plant.body)).toBe(200);
    expect(plant.body.stdout).toContain("/workspace/.local/lib/python3");

    const keep = await api(`/v1/sessions/${id}/keepalive`, { json: { ttl_seconds: 300 } });
    expect(keep.status).toBe(200);
    const got = await api(`/v1/sessions/${id}`);
    expect(got.status).toBe(200);
    const run = await api(`/v1/sessions/${id}/execute`, { json: { code: "print('still here')" } });
    expect(run.status).toBe(200);
    expect(run.body.stdout).toBe("still here\n");
    expect((await api(`/v1/sessions/${id}/files`)).status).toBe(200);
    expect((await api(`/v1/sessions/${id}/files/json.py`)).status).toBe(200);
    const again = await api(`/v1/sessions/${id}/keepalive`, { json: { ttl_seconds: 300 } });
    expect(again.status).toBe(200);

    // Nothing ran as root: no uid0 marker, and no root-owned file newer than the planting
    // anywhere but the state file (written by the engine through the archive API).
    const found = await asRoot(id, [
      "sh",
      "-c",
      "find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o ! -type d -newer /workspace/.planted -user 0 -print",
    ]);
    // (The state file's mtime comes from the tar header, whole seconds: it may or may not show.)
    const rootCreated = found.stdout.toString().trim().split("\n").filter(Boolean);
    expect(rootCreated.filter((p) => p !== "/run/code-interpreter/state.json")).toEqual([]);
    // Nor any root-owned entry at all where the code can write.
    const writable = await asRoot(id, ["find", "/workspace", "/tmp", "-mindepth", "1", "-user", "0"]);
    expect(writable.stdout.toString()).toBe("");
    const markers = await asRoot(id, ["sh", "-c", "ls /tmp | grep pwned- || true"]);
    expect(markers.stdout.toString()).not.toMatch(/pwned-uid0-/);

    // The deadlines are the API's: the code's forged state never took effect.
    const after = await api(`/v1/sessions/${id}`);
    expect(after.status).toBe(200);
    expect(after.body.expires_at).toEqual(again.body.expires_at);
    const lastActive = after.body.last_active_at;
    const lastActiveMs = typeof lastActive === "number" ? lastActive * 1000 : Date.parse(String(lastActive));
    expect(lastActiveMs).toBeLessThanOrEqual(Date.now() + 1000);
    const state = await asRoot(id, ["cat", "/run/code-interpreter/state.json"]);
    expect(state.stdout.toString()).not.toContain("99999999999999");
  });
});

describe("hole 6: a fork bomb in the background", { timeout: 180_000 }, () => {
  it("leaves GET, list, keepalive and DELETE working; execute answers 409, not 500", async () => {
    const s = await createSession(300);
    const id = s.session_id;
    const bomb = [
      "import os, time",
      "while True:",
      "    try:",
      "        os.fork()",
      "    except OSError:",
      "        time.sleep(0.05)",
    ].join("\n");
    const start = await api(`/v1/sessions/${id}/bash`, {
      json: { cmd: `setsid python3 -c '${bomb}' >/dev/null 2>&1 < /dev/null & sleep 3; echo started` },
    });
    expect(start.status, JSON.stringify(start.body)).toBe(200);

    const get = await api(`/v1/sessions/${id}`);
    expect(get.status).toBe(200);
    const list = await api("/v1/sessions");
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).toContain(id);
    const keep = await api(`/v1/sessions/${id}/keepalive`, { json: { ttl_seconds: 600 } });
    expect(keep.status).toBe(200);

    const exec = await api(`/v1/sessions/${id}/execute`, { json: { code: "print(1)" } });
    expect(exec.status, JSON.stringify(exec.body)).toBe(409);
    expect(exec.body.detail).toMatch(/no free process slots/);
    const bash = await api(`/v1/sessions/${id}/bash`, { json: { cmd: "echo hi" } });
    expect(bash.status).not.toBe(500);
    expect(bash.status).toBeLessThan(500);

    const del = await api(`/v1/sessions/${id}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    expect((await api(`/v1/sessions/${id}`)).status).toBe(404);
    const until = Date.now() + 10_000;
    let exists = true;
    while (exists && Date.now() < until) {
      exists = await docker
        .getContainer(id)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (exists) await new Promise((r) => setTimeout(r, 100));
    }
    expect(exists).toBe(false);
  });
});
