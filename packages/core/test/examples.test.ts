/** The README's example (examples/quickstart.ts) compiles and runs, and says what it shows. */
import { expect, it } from "vitest";
import { quickstart } from "../examples/quickstart.js";

it("examples/quickstart.ts runs: the safety checks, then a session on the in-memory backend", async () => {
  await expect(quickstart()).resolves.toEqual({ answer: "42\n", checks: ["true", "false", "422"] });
});
