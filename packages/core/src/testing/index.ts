/**
 * Test helpers (`@code-interpreter/core/testing`): an in-memory Backend for unit tests of
 * anything built on the Backend interface. Not for production use.
 */
export * from "./memory-backend.js";
export * from "./conformance.js";
