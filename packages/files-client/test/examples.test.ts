/** The README's example (examples/quickstart.ts) compiles and runs, and says what it shows. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { quickstart } from "../examples/quickstart.js";
import { LocalFileStore } from "../src/index.js";
import { startServer } from "./server.js";

it("examples/quickstart.ts runs: a local store with owners, then a remote one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "files-example-server-"));
  const srv = await startServer(new LocalFileStore({ dir, maxFileBytes: 1 << 20, ttlSeconds: 60 }));
  try {
    await expect(quickstart(srv.url)).resolves.toEqual({
      local: "a,b\n1,2\n",
      otherOwnerSees: false,
      remote: "hello",
    });
  } finally {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  }
});
