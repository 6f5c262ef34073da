export { createApp, DEFAULT_JSON_LIMIT_BYTES, type AppOptions } from "./app.js";
export { startServer, type ServerOptions, type RunningServer } from "./server.js";
export { startReaper, type Reaper, type ReaperOptions } from "./reaper.js";
export {
  createMetrics,
  type ApiMetrics,
  type MetricsOptions,
  type ExecRoute,
  type ExecOutcome,
} from "./metrics.js";
export {
  toErrorAnswer,
  clientErrorHandler,
  UnauthorizedError,
  BadRequestError,
  LengthRequiredError,
} from "./http-errors.js";
export { API_VERSION } from "./version.js";
export { ConfigError, configSchema, envSchema, executorLimits, loadConfig, type Config } from "./config.js";
export {
  runMain,
  createBackendFromConfig,
  createFileStoreFromConfig,
  type MainOptions,
  type MainHandle,
} from "./cli.js";
export { openApiDocument, OPERATIONS } from "./openapi.js";
