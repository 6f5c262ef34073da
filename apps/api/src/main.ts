#!/usr/bin/env node
/**
 * The code-interpreter-api binary: config from the environment, the file store, the backend
 * chosen by EXECUTOR_BACKEND (only that package is loaded), then listen until SIGTERM/SIGINT.
 */
import { pino, type Logger } from "pino";
import { ConfigError, executorLimits, loadConfig, type Backend, type Config } from "@code-interpreter/core";
import { createFileStore } from "@code-interpreter/files-client";
import { startServer } from "./server.js";
import { API_VERSION } from "./version.js";

async function createBackend(config: Config, logger: Logger): Promise<Backend> {
  const common = {
    image: config.executorImage,
    limits: executorLimits(config),
    sessionMaxLifetimeSeconds: config.sessionMaxLifetimeSeconds,
    maxFileBytes: config.maxFileSizeBytes,
    logger: logger.child({ component: "backend" }),
  };
  if (config.executorBackend === "kubernetes") {
    const { createKubernetesBackend } = await import("@code-interpreter/backend-k8s");
    const k = config.kubernetes;
    return createKubernetesBackend({
      ...common,
      namespace: k.namespace,
      imagePullPolicy: k.imagePullPolicy,
      podReadyTimeoutSec: k.podReadyTimeoutSec,
      ownerDeployment: k.ownerDeployment,
      networkLockdown: k.networkLockdown,
      runtimeClass: k.runtimeClass,
    });
  }
  const { createDockerBackend } = await import("@code-interpreter/backend-docker");
  return createDockerBackend(common);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel, base: { service: "code-interpreter-api" } });

  const files = createFileStore({
    url: config.fileServiceUrl,
    dir: config.fileStorageDir,
    maxFileBytes: config.maxFileSizeBytes,
    ttlSeconds: config.fileTtlSec,
  });
  const backend = await createBackend(config, logger);

  const running = await startServer({ backend, files, config, logger });
  logger.info(
    { url: running.url, backend: backend.kind, version: API_VERSION, auth: config.apiKeys.length > 0 },
    `code-interpreter API listening on ${running.url}`,
  );

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "shutting down");
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

main().catch((err: unknown) => {
  console.error("code-interpreter API failed to start:", err);
  process.exit(1);
});
