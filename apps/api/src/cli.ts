/**
 * What the `code-interpreter-api` binary does, as functions a test can call: read config,
 * build the file store and the chosen backend (only that package is loaded), start the
 * server, shut down gracefully on SIGTERM/SIGINT.
 */
import { pino, type Logger } from "pino";
import type { Backend } from "@code-interpreter/core";
import { ConfigError, executorLimits, loadConfig, type Config } from "./config.js";
import { createFileStore, type FileStore } from "@code-interpreter/files-client";
import { startServer, type RunningServer } from "./server.js";
import { API_VERSION } from "./version.js";

/** The backend EXECUTOR_BACKEND names, loaded with a dynamic import. */
export async function createBackendFromConfig(config: Config, logger: Logger): Promise<Backend> {
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

export function createFileStoreFromConfig(config: Config): FileStore {
  return createFileStore({
    url: config.fileServiceUrl,
    dir: config.fileStorageDir,
    maxFileBytes: config.maxFileSizeBytes,
    ttlSeconds: config.fileTtlSec,
  });
}

export interface MainOptions {
  env?: Record<string, string | undefined>;
  /** Where config errors go (default process.stderr). */
  stderr?: { write(s: string): unknown };
  exit?: (code: number) => void;
  logger?: Logger;
  /** Overrides for tests and embedders. */
  createBackend?: (config: Config, logger: Logger) => Promise<Backend>;
  createFiles?: (config: Config) => FileStore;
  /** Install SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
}

export interface MainHandle {
  running: RunningServer;
  config: Config;
  /** What SIGTERM/SIGINT do: graceful shutdown, then exit(0) (exit(1) if it failed). */
  shutdown(signal?: string): Promise<void>;
}

/** Returns null (after exit(1)) when the configuration is invalid. */
export async function runMain(opts: MainOptions = {}): Promise<MainHandle | null> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const stderr = opts.stderr ?? process.stderr;
  let config: Config;
  try {
    config = loadConfig(opts.env ?? process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr.write(`${err.message}\n`);
      exit(1);
      return null;
    }
    throw err;
  }
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { service: "code-interpreter-api" } });

  const files = (opts.createFiles ?? createFileStoreFromConfig)(config);
  const backend = await (opts.createBackend ?? createBackendFromConfig)(config, logger);
  const running = await startServer({ backend, files, config, logger });
  logger.info(
    { url: running.url, backend: backend.kind, version: API_VERSION, auth: config.apiKeys.length > 0 },
    `code-interpreter API listening on ${running.url}`,
  );

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (signal = "shutdown"): Promise<void> => {
    if (shuttingDown) {
      logger.warn({ signal }, "second signal: exiting now");
      exit(1);
      return shuttingDown;
    }
    logger.info({ signal }, "shutting down (sessions are kept)");
    shuttingDown = running.close().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        exit(1);
      },
    );
    return shuttingDown;
  };
  if (opts.handleSignals ?? true) {
    // A second signal while draining gives up waiting (see shutdown).
    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
  }
  return { running, config, shutdown };
}
