/**
 * Test helpers (`@code-interpreter/core/testing`): an in-memory Backend for unit tests of
 * anything built on the Backend interface. Not for production use. No test runner is loaded
 * by this entry; the backend conformance suite (which needs vitest) is
 * `@code-interpreter/core/testing/conformance`.
 */
export * from "./memory-backend.js";
export * from "./memory-pool-platform.js";
