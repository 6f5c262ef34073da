#!/usr/bin/env node
// Overhead of the API over raw Docker, as ratios (run `pnpm bench` from the repo root; it
// builds first). Needs a Docker engine and the executor image.
//
//   one-shot:  POST /v1/execute {"code": "print(1)"}   vs  docker run --rm --network none <image> python3 -c 'print(1)'
//   session:   POST /v1/sessions/{id}/execute           vs  docker exec <container> python3 -c 'print(1)'
//
// BENCH_N (default 10) runs of each, sequentially, after one warm-up; prints medians and p90s.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { executorLimits, loadConfig } from "@code-interpreter/core";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import { startServer } from "../dist/index.js";

const N = Number(process.env.BENCH_N ?? 10);
const config = loadConfig({ ...process.env, LOG_LEVEL: "silent" });
const image = config.executorImage;

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p90: at(0.9) };
}

async function time(fn) {
  await fn(); // warm-up
  const out = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return stats(out);
}

const dir = mkdtempSync(join(tmpdir(), "ci-bench-"));
const backend = createDockerBackend({
  image,
  limits: executorLimits(config),
  sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
  maxFileBytes: config.maxFileSizeBytes,
});
const files = new LocalFileStore({ dir, maxFileBytes: config.maxFileSizeBytes, ttlSeconds: 600 });
const running = await startServer({
  backend,
  files,
  config,
  logger: pino({ level: "silent" }),
  host: "127.0.0.1",
  port: 0,
  reaper: false,
});
const post = async (path, body) => {
  const res = await fetch(`${running.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};

let sessionId;
let raw;
try {
  const apiOneShot = await time(() => post("/v1/execute", { code: "print(1)", timeout_ms: 10_000 }));
  const dockerRun = await time(() =>
    execFileSync("docker", ["run", "--rm", "--network", "none", image, "python3", "-c", "print(1)"]),
  );

  sessionId = (await post("/v1/sessions", { ttl_seconds: 600 })).session_id;
  const apiSession = await time(() => post(`/v1/sessions/${sessionId}/execute`, { code: "print(1)" }));
  raw = execFileSync("docker", ["run", "-d", "--network", "none", image, "sleep", "600"]).toString().trim();
  const dockerExec = await time(() => execFileSync("docker", ["exec", raw, "python3", "-c", "print(1)"]));

  const row = (name, api, base) =>
    `${name.padEnd(10)} api ${api.median.toFixed(0).padStart(6)} ms (p90 ${api.p90.toFixed(0)})   ` +
    `docker ${base.median.toFixed(0).padStart(6)} ms (p90 ${base.p90.toFixed(0)})   ` +
    `ratio ${(api.median / base.median).toFixed(2)}x`;
  console.log(`${N} runs each, medians:`);
  console.log(row("one-shot", apiOneShot, dockerRun));
  console.log(row("session", apiSession, dockerExec));
} finally {
  if (sessionId) await fetch(`${running.url}/v1/sessions/${sessionId}`, { method: "DELETE" });
  if (raw) execFileSync("docker", ["rm", "-f", raw]);
  await running.close();
  rmSync(dir, { recursive: true, force: true });
}
