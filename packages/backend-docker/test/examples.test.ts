/** The README's example (examples/quickstart.ts) runs against the real engine and prints what it says. */
import { expect, it } from "vitest";
import { quickstart } from "../examples/quickstart.js";

it("examples/quickstart.ts runs: a session computes 42, a one-shot too", { timeout: 120_000 }, async () => {
  await expect(quickstart()).resolves.toEqual({ session: "42\n", oneShot: "42\n" });
});
