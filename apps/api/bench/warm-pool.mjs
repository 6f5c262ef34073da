// The warm pool's pairs of `pnpm bench` (issue 10), measured in the same run as the others:
//   session    POST /v1/sessions from the warm pool    vs  raw container create+start
//              (target: at most 0.1x; tens of milliseconds on an idle machine)
//   one-shot   POST /v1/execute `print(1)` from the pool  vs  raw `docker run --rm` of it
//              (target: at most 0.3x)
// Only the request (or the raw calls) is timed: each iteration first waits until the pool is
// full again (a steady state at a request rate the pool keeps up with), and removes what it
// made afterwards, untimed. The claims' hits and misses are reported beside the figures.
import { setTimeout as sleep } from "node:timers/promises";
import { PassThrough } from "node:stream";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { createApp, executorLimits } from "../dist/index.js";
import { serve } from "./http.mjs";

const POOL_SIZE = Number(process.env.BENCH_WARM_POOL_SIZE ?? 2);
const PRINT = "print(1)";

async function measureMs(name, n, warmup, once) {
  for (let i = 0; i < warmup; i++) await once();
  const samples = [];
  for (let i = 0; i < n; i++) samples.push(await once());
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  return { name, n, median: q(0.5), p90: q(0.9), min: samples[0] };
}

const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

export async function measureWarmPool({ docker, config, files, n, warmup }) {
  const image = config.executorImage;
  const claims = { hit: 0, miss: 0 };
  const backend = createDockerBackend({
    image,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
    warmPool: { size: POOL_SIZE, maxAgeSeconds: 600, syncIntervalMs: 1000 },
  });
  backend.warmPool.observe({ claim: (outcome) => claims[outcome]++ });
  const app = createApp({ backend, files, config });
  const { server, base, post } = await serve(app);
  const full = async () => {
    while (backend.warmPool.stats().ready < POOL_SIZE) await sleep(20);
  };
  try {
    await full();
    const rawCreateStart = await measureMs("raw container create+start", n, warmup, async () => {
      const t0 = process.hrtime.bigint();
      const c = await docker.createContainer({
        Image: image,
        Cmd: ["sleep", "60"],
        HostConfig: { NetworkMode: "none" },
      });
      await c.start();
      const ms = since(t0);
      await c.remove({ force: true });
      return ms;
    });
    const poolCreate = await measureMs("API POST /v1/sessions (warm pool)", n, warmup, async () => {
      await full();
      const t0 = process.hrtime.bigint();
      const s = await post("/v1/sessions", {});
      const ms = since(t0);
      await fetch(`${base}/v1/sessions/${s.session_id}`, { method: "DELETE" });
      return ms;
    });
    const sessionClaims = { ...claims };
    const rawRun = await measureMs("raw docker run --rm `print(1)`", n, warmup, async () => {
      const t0 = process.hrtime.bigint();
      const c = await docker.createContainer({
        Image: image,
        Cmd: ["python3", "-c", PRINT],
        HostConfig: { NetworkMode: "none" },
      });
      const stream = await c.attach({ stream: true, stdout: true, stderr: true });
      const out = new PassThrough();
      docker.modem.demuxStream(stream, out, out);
      out.resume();
      await c.start();
      await c.wait();
      await c.remove({ force: true });
      return since(t0);
    });
    const poolExec = await measureMs("API POST /v1/execute `print(1)` (warm pool)", n, warmup, async () => {
      await full();
      const t0 = process.hrtime.bigint();
      const r = await post("/v1/execute", { code: PRINT });
      if (r.stdout !== "1\n") throw new Error(`execute: ${JSON.stringify(r)}`);
      return since(t0);
    });
    const execClaims = { hit: claims.hit - sessionClaims.hit, miss: claims.miss - sessionClaims.miss };
    return {
      pairs: [
        [poolCreate, rawCreateStart],
        [poolExec, rawRun],
      ],
      claims: { sessions: sessionClaims, oneShots: execClaims },
    };
  } finally {
    server.close();
    await backend.warmPool.drain();
    await backend.close();
  }
}
