import { defineConfig } from "vitest/config";

// Most files here start real containers, and several run reapers, which remove every expired
// session on the engine: a file's seeded "expired" sessions must not be reaped by another
// file's reaper in the middle of its assertions. One file at a time (what a 2-core machine
// does anyway), on any machine.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
  },
});
