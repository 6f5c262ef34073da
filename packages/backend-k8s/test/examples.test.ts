/** The README's example (examples/quickstart.ts) runs against the fake apiserver and prints what it says. */
import { expect, it } from "vitest";
import { quickstart } from "../examples/quickstart.js";
import { NAMESPACE, startFake } from "./helpers.js";

it("examples/quickstart.ts runs: 1 + 1 in a session pod", { timeout: 120_000 }, async () => {
  const fake = await startFake();
  try {
    await expect(quickstart({ kubeConfig: fake.kubeConfig(NAMESPACE), namespace: NAMESPACE })).resolves.toBe(
      "2\n",
    );
  } finally {
    await fake.stop();
  }
});
