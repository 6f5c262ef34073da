// code-interpreter benchmark: our overhead as ratios against raw Docker, measured in the same
// process against the same engine and image, so machine speed cancels out.
//
//   pnpm bench                      (from the repo root, after `pnpm run setup`)
//   BENCH_ITERATIONS=30 pnpm bench
//
// Pairs (ours / baseline):
//   one-shot   POST /v1/execute (HTTP, full API)      vs  raw `docker run --rm` of the same code
//   one-shot   backend.execute()                       vs  raw `docker run --rm`
//   session    POST /v1/sessions/{id}/execute (HTTP)   vs  raw `docker exec` in a running container
//   session    POST /v1/sessions/{id}/execute `pass`   vs  raw `docker exec` of `true` in the session's container
//   session    POST /v1/sessions/{id}/bash `true`      vs  the same raw `docker exec` of `true`
//              (issue 9: a session call rides the resident agent's open channel, no exec per
//              call; target: at most 0.25x the raw exec)
//   session    POST + DELETE /v1/sessions (HTTP)       vs  raw container create+start+remove
//   listing    GET /v1/sessions with BENCH_LIST_SESSIONS (default 100) live sessions
//                                                      vs  raw label-filtered container list
//              (target: under 0.5 s on an idle machine; one engine call, no exec per session)
//   warm pool  session create and one-shot `print(1)` from the pool (bench/warm-pool.mjs)
// Writes bench-results.json beside the current directory's package and prints a table.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import Dockerode from "dockerode";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { createApp, executorLimits, loadConfig } from "../dist/index.js";
import { measureWarmPool } from "./warm-pool.mjs";
import { serve } from "./http.mjs";

const N = Number(process.env.BENCH_ITERATIONS ?? 15);
const LIST_SESSIONS = Number(process.env.BENCH_LIST_SESSIONS ?? 100);
const WARMUP = 2;
const CODE = "print(sum(range(1000)))";
// The pairs without a pool measure the cold path (the pool's pairs have their own backend).
const config = loadConfig({ LOG_LEVEL: "silent", MAX_SESSIONS: "0", WARM_POOL_SIZE: "0" });
const image = config.executorImage;
const docker = new Dockerode();

async function time(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function measure(name, fn) {
  for (let i = 0; i < WARMUP; i++) await fn();
  const samples = [];
  for (let i = 0; i < N; i++) samples.push(await time(fn));
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  return { name, n: N, median: q(0.5), p90: q(0.9), min: samples[0] };
}

function drain(stream) {
  const out = new PassThrough();
  docker.modem.demuxStream(stream, out, out);
  out.resume();
}

// Baselines: what a caller would do with plain Docker.
async function rawDockerRun() {
  const c = await docker.createContainer({
    Image: image,
    Cmd: ["python3", "-c", CODE],
    HostConfig: { NetworkMode: "none" },
  });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true });
  drain(stream);
  await c.start();
  await c.wait();
  await c.remove({ force: true });
}

async function rawContainerLifecycle() {
  const c = await docker.createContainer({
    Image: image,
    Cmd: ["sleep", "60"],
    HostConfig: { NetworkMode: "none" },
  });
  await c.start();
  await c.remove({ force: true });
}

async function main() {
  await docker.ping();
  const dir = mkdtempSync(join(tmpdir(), "ci-bench-"));
  const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 600 });
  const backend = createDockerBackend({
    image,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
  });
  const app = createApp({ backend, files, config });
  const { server, base, post } = await serve(app);

  const execBase = await docker.createContainer({
    Image: image,
    Cmd: ["sleep", "3600"],
    HostConfig: { NetworkMode: "none" },
  });
  await execBase.start();
  const rawExec = async () => {
    const e = await execBase.exec({ Cmd: ["python3", "-c", CODE], AttachStdout: true, AttachStderr: true });
    const s = await e.start({ hijack: true, stdin: false });
    await new Promise((resolve) => {
      drain(s);
      s.on("end", resolve);
    });
    await e.inspect();
  };
  const session = await post("/v1/sessions", {});
  // `docker exec true` in the session's own container: the floor of any exec-per-call design.
  const sessionContainer = docker.getContainer(session.session_id);
  const rawExecTrue = async () => {
    const e = await sessionContainer.exec({ Cmd: ["true"], AttachStdout: true, AttachStderr: true });
    const s = await e.start({ hijack: true, stdin: false });
    await new Promise((resolve) => {
      drain(s);
      s.on("end", resolve);
    });
    await e.inspect();
  };

  const rows = [];
  let poolClaims = null;
  try {
    const rawRun = await measure("raw docker run --rm", rawDockerRun);
    const rawEx = await measure("raw docker exec", rawExec);
    const rawLife = await measure("raw container create+start+remove", rawContainerLifecycle);
    const rawTrue = await measure("raw docker exec `true` (session container)", rawExecTrue);
    const pairs = [
      [await measure("API POST /v1/execute", () => post("/v1/execute", { code: CODE })), rawRun],
      [
        await measure("backend.execute()", () =>
          backend.execute({
            language: "python",
            code: CODE,
            timeoutMs: 10_000,
            maxOutputBytes: 1e6,
            files: [],
          }),
        ),
        rawRun,
      ],
      [
        await measure("API POST /v1/sessions/{id}/execute", () =>
          post(`/v1/sessions/${session.session_id}/execute`, { code: CODE }),
        ),
        rawEx,
      ],
      [
        await measure("API session execute `pass`", () =>
          post(`/v1/sessions/${session.session_id}/execute`, { code: "pass" }),
        ),
        rawTrue,
      ],
      [
        await measure("API session bash `true`", () =>
          post(`/v1/sessions/${session.session_id}/bash`, { cmd: "true" }),
        ),
        rawTrue,
      ],
      [
        await measure("API POST+DELETE /v1/sessions", async () => {
          const s = await post("/v1/sessions", {});
          const r = await fetch(`${base}/v1/sessions/${s.session_id}`, { method: "DELETE" });
          if (r.status !== 204) throw new Error(`delete: ${r.status}`);
        }),
        rawLife,
      ],
    ];
    pairs.push(await measureListing(base, post));
    const pool = await measureWarmPool({ docker, config, files, n: N, warmup: WARMUP });
    pairs.push(...pool.pairs);
    poolClaims = pool.claims;
    for (const [ours, baseline] of pairs) {
      rows.push({
        ...ours,
        baseline: baseline.name,
        baselineMedian: baseline.median,
        ratio: ours.median / baseline.median,
      });
    }
  } finally {
    await fetch(`${base}/v1/sessions/${session.session_id}`, { method: "DELETE" }).catch(() => undefined);
    await execBase.remove({ force: true }).catch(() => undefined);
    server.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(`\ncode-interpreter benchmark (${N} iterations after ${WARMUP} warm-up, medians in ms)\n`);
  console.log("| ours | median | p90 | baseline | median | ratio |");
  console.log("| --- | ---: | ---: | --- | ---: | ---: |");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.median.toFixed(0)} | ${r.p90.toFixed(0)} | ${r.baseline} | ${r.baselineMedian.toFixed(0)} | ${r.ratio.toFixed(2)}x |`,
    );
  }
  if (poolClaims) {
    const { sessions, oneShots } = poolClaims;
    console.log(
      `\nwarm pool claims: session creates ${sessions.hit} hits / ${sessions.miss} misses, ` +
        `one-shots ${oneShots.hit} hits / ${oneShots.miss} misses`,
    );
  }
  writeFileSync(
    "bench-results.json",
    JSON.stringify({ iterations: N, rows, warmPool: poolClaims }, null, 2) + "\n",
  );
}

/** GET /v1/sessions with LIST_SESSIONS live sessions vs the raw label-filtered list; deletes them after. */
async function measureListing(base, post) {
  const ids = [];
  try {
    for (let i = 0; i < LIST_SESSIONS; i += 10) {
      const batch = Array.from({ length: Math.min(10, LIST_SESSIONS - i) }, () => post("/v1/sessions", {}));
      for (const s of await Promise.all(batch)) ids.push(s.session_id);
    }
    const ours = await measure(`API GET /v1/sessions (${LIST_SESSIONS} live)`, async () => {
      const r = await fetch(`${base}/v1/sessions`);
      const body = await r.json();
      if (!r.ok) throw new Error(`list: ${r.status} ${JSON.stringify(body)}`);
    });
    const raw = await measure("raw label-filtered container list", () =>
      docker.listContainers({ filters: { label: ["app=code-interpreter", "component=session"] } }),
    );
    return [ours, raw];
  } finally {
    for (let i = 0; i < ids.length; i += 10) {
      await Promise.all(
        ids
          .slice(i, i + 10)
          .map((id) => fetch(`${base}/v1/sessions/${id}`, { method: "DELETE" }).catch(() => undefined)),
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
