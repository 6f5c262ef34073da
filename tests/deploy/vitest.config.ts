import { defineConfig } from "vitest/config";

// Builds images, starts containers and compose projects on the one engine, installs packages:
// one file at a time, with generous timeouts (two cores shared by everything).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
