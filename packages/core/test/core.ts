/**
 * Everything in core's source, for its unit tests: the package's public entry points
 * (src/index.ts, src/backend-kit.ts) export a deliberate subset; tests reach every module.
 */
export * from "../src/backend.js";
export * from "../src/errors.js";
export * from "../src/exec-runner.js";
export * from "../src/executor-scripts.js";
export * from "../src/labels.js";
export * from "../src/lifetime.js";
export * from "../src/limits.js";
export * from "../src/naming.js";
export * from "../src/output.js";
export * from "../src/paths.js";
export * from "../src/session.js";
export * from "../src/sessions/activity.js";
export * from "../src/sessions/exhaustion.js";
export * from "../src/sessions/keyed-mutex.js";
export * from "../src/sessions/poll.js";
export * from "../src/sessions/pool-platform.js";
export * from "../src/sessions/warm-pool.js";
export * from "../src/testing/memory-pool-platform.js";
export * from "../src/sessions/validation.js";
export * from "../src/agent/channel.js";
export * from "../src/agent/channels.js";
export * from "../src/agent/protocol.js";
/** Reads a stream fully: Node's own consumer (core's source keeps no copy of it). */
export { buffer as readAll } from "node:stream/consumers";
