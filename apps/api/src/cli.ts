/**
 * What the `code-interpreter-api` binary does, as functions a test can call: answer
 * `--help` / `--version`, read config, build the file store and the chosen backend (only that
 * package is loaded), start the server, shut down gracefully on SIGTERM/SIGINT.
 */
import { parseArgs } from "node:util";
import { pino, type Logger } from "pino";
import type { Backend } from "@code-interpreter/core";
import { ConfigError, executorLimits, loadConfig, type Config } from "./config.js";
import { createFileStore, type FileStore } from "@code-interpreter/files-client";
import { startServer, type RunningServer } from "./server.js";
import { requestIdMixin } from "./request-context.js";
import { API_PACKAGE_NAME, API_VERSION } from "./version.js";

export const USAGE = `Usage: code-interpreter-api [--help] [--version]

Runs the code-interpreter REST API (${API_PACKAGE_NAME} ${API_VERSION}).
Configuration comes from environment variables only, for example:

  EXECUTOR_BACKEND   docker (default) or kubernetes
  EXECUTOR_IMAGE     image of executor containers/pods (code-interpreter-executor:latest)
  HOST, PORT         listen address (0.0.0.0) and port (8000)
  API_KEYS           comma-separated bearer keys (none: no auth)
  DOCKER_HOST        the Docker engine (unix:///var/run/docker.sock)
  FILE_STORAGE_DIR   where uploaded files are kept (/tmp/code-interpreter-files)
  LOG_LEVEL          fatal, error, warn, info (default), debug, trace or silent

Every variable is listed in the package README. Probes: GET /livez (process alive),
GET /readyz (backend and file store answer), GET /health (onyx-compatible), GET /metrics.

Options:
  -h, --help     print this text and exit
  -v, --version  print the version and exit
`;

/**
 * Handles the command line. Returns the exit code when the process should exit without
 * serving (--help, --version, a bad option), null when it should serve.
 */
export function handleArgs(
  argv: readonly string[],
  out: { write(s: string): unknown },
  err: { write(s: string): unknown },
): number | null {
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    err.write(`code-interpreter-api: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(USAGE);
    return 0;
  }
  if (values.version) {
    out.write(`${API_VERSION}\n`);
    return 0;
  }
  return null;
}

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
    // An optional peer dependency: a Docker-only install does not pull the Kubernetes client.
    const { createKubernetesBackend } = await import("@code-interpreter/backend-k8s").catch(
      (err: unknown) => {
        if ((err as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND") {
          throw new ConfigError([
            "EXECUTOR_BACKEND=kubernetes needs the package @code-interpreter/backend-k8s: install it next to @code-interpreter/api",
          ]);
        }
        throw err;
      },
    );
    const k = config.kubernetes;
    return createKubernetesBackend({
      ...common,
      namespace: k.namespace,
      imagePullPolicy: k.imagePullPolicy,
      podReadyTimeoutSec: k.podReadyTimeoutSec,
      ownerDeployment: k.ownerDeployment,
      requestTimeoutMs: k.requestTimeoutMs,
      runtimeClass: k.runtimeClass,
      warmPool: config.warmPool,
    });
  }
  const { createDockerBackend } = await import("@code-interpreter/backend-docker");
  return createDockerBackend({ ...common, warmPool: config.warmPool });
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
  /** Command-line arguments (default process.argv.slice(2)). */
  argv?: readonly string[];
  /** Where --help / --version print (default process.stdout). */
  stdout?: { write(s: string): unknown };
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

/**
 * Returns null (after exit(...)) when it does not serve: --help / --version (exit 0), a bad
 * option (exit 2), an invalid configuration (exit 1).
 */
export async function runMain(opts: MainOptions = {}): Promise<MainHandle | null> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const stderr = opts.stderr ?? process.stderr;
  const argsExit = handleArgs(opts.argv ?? process.argv.slice(2), opts.stdout ?? process.stdout, stderr);
  if (argsExit !== null) {
    exit(argsExit);
    return null;
  }
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
  // mixin: the request id on every line logged while a request is handled, the backend's too.
  const logger =
    opts.logger ??
    pino({ level: config.logLevel, base: { service: "code-interpreter-api" }, mixin: requestIdMixin });

  const files = (opts.createFiles ?? createFileStoreFromConfig)(config);
  let backend: Backend;
  try {
    backend = await (opts.createBackend ?? createBackendFromConfig)(config, logger);
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr.write(`${err.message}\n`);
      exit(1);
      return null;
    }
    throw err;
  }
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
