import { defineConfig } from "vitest/config";

// These tests drive a real Docker engine, shared with other engineers' test runs on a small
// machine: generous timeouts, one file at a time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
