/** The README's embedding example (examples/embed.ts) compiles and runs against the real engine. */
import { expect, it } from "vitest";
import { embed } from "../examples/embed.js";
import { E2E_ENV, requireDockerEngine } from "./e2e/support.js";

it("examples/embed.ts serves POST /v1/execute", { timeout: 120_000 }, async () => {
  await requireDockerEngine();
  await expect(embed({ ...E2E_ENV })).resolves.toBe("42\n");
});
