/**
 * Probes. `GET /livez`: the process answers HTTP — never touches the backend or the file
 * store, so a liveness probe never restarts the API because Docker or the Kubernetes API is
 * away. `GET /readyz`: the backend and the file store both answer (each within a deadline);
 * otherwise 503 with `detail` naming what it waits for. (`GET /health`, the onyx-compatible
 * endpoint, stays in app.ts.)
 */
import { Router } from "express";
import type { Backend } from "@code-interpreter/core";
import type { FileStore } from "@code-interpreter/files-client";
import { API_VERSION } from "../version.js";

export interface HealthOptions {
  backend: Backend;
  files: FileStore;
  /** What the backend talks to, for the 503 detail (default: from the environment, see backendTarget). */
  target?: string;
  /** How long each readiness check may take (default 5000 ms). */
  checkTimeoutMs?: number;
}

/** "the Docker engine at unix:///run/docker.sock", "the Kubernetes API at https://10.0.0.1:443", ... */
export function backendTarget(kind: string, env: Record<string, string | undefined> = process.env): string {
  if (kind === "docker") {
    return `the Docker engine at ${env.DOCKER_HOST || "unix:///var/run/docker.sock"}`;
  }
  if (kind === "kubernetes") {
    if (env.KUBERNETES_SERVICE_HOST) {
      const host = env.KUBERNETES_SERVICE_HOST.includes(":")
        ? `[${env.KUBERNETES_SERVICE_HOST}]`
        : env.KUBERNETES_SERVICE_HOST;
      return `the Kubernetes API at https://${host}:${env.KUBERNETES_SERVICE_PORT || "443"}`;
    }
    return `the Kubernetes API of ${env.KUBECONFIG ? `KUBECONFIG ${env.KUBECONFIG}` : "~/.kube/config"}`;
  }
  return `the ${kind} backend`;
}

async function check(what: () => Promise<void>, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      what().then(
        () => null,
        (err: unknown) => (err instanceof Error ? err.message : String(err)) || "failed",
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRouter(opts: HealthOptions): Router {
  const { backend, files } = opts;
  const target = opts.target ?? backendTarget(backend.kind);
  const timeoutMs = opts.checkTimeoutMs ?? 5000;
  const router = Router();

  router.get("/livez", (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    res.json({ status: "ok", version: API_VERSION });
  });

  router.get("/readyz", async (_req, res) => {
    res.setHeader("Cache-Control", "no-store");
    const [backendError, filesError] = await Promise.all([
      check(() => backend.ping(), timeoutMs),
      check(() => files.ping(), timeoutMs),
    ]);
    const checks = { backend: backendError ?? "ok", files: filesError ?? "ok" };
    if (!backendError && !filesError) {
      res.json({ status: "ready", backend: backend.kind, version: API_VERSION, checks });
      return;
    }
    const waits = [
      ...(backendError ? [`${target} (${backendError})`] : []),
      ...(filesError ? [`the file store (${filesError})`] : []),
    ];
    res.status(503).json({
      status: "unavailable",
      backend: backend.kind,
      version: API_VERSION,
      checks,
      detail: `not ready: waiting for ${waits.join(" and ")}`,
    });
  });

  return router;
}
