/**
 * The shared backend conformance suite (core/testing) against KubernetesBackend, driven
 * through the real client-node by the fake apiserver whose pods are Docker containers. It runs
 * twice: with cold pods, and with a warm pool (issue 10), where session creates and one-shot
 * runs claim member pods — the suite's sessions then are claimed members, and its clean-up
 * fails if no claim was made.
 */
import { describeBackendConformance } from "@code-interpreter/core/testing/conformance";
import { FakeApiServer } from "./fake-apiserver/server.js";
import { makeBackend, makePooledBackend, poolReady } from "./helpers.js";

describeBackendConformance(
  "kubernetes (fake apiserver, Docker-backed pods)",
  async () => {
    const fake = await new FakeApiServer().start();
    const backend = makeBackend(fake, { sessionMaxLifetimeSeconds: 3600 });
    return { backend, cleanup: () => fake.stop() };
  },
  { sessionMaxLifetimeSeconds: 3600 },
);

let pooledHarnesses = 0;
describeBackendConformance(
  "kubernetes with a warm pool (sessions and one-shots claimed from member pods)",
  async () => {
    // The first harness serves the whole suite; later ones (the close() test's) only close.
    const main = pooledHarnesses++ === 0;
    const fake = await new FakeApiServer().start();
    const { backend, probe } = makePooledBackend(fake, 2, { sessionMaxLifetimeSeconds: 3600 });
    await poolReady(backend, 2);
    return {
      backend,
      cleanup: async () => {
        await fake.stop();
        if (main && (probe.hits("session") === 0 || probe.hits("executor") === 0))
          throw new Error(`the warm pool was not used: ${JSON.stringify(probe.claims)}`);
      },
    };
  },
  { sessionMaxLifetimeSeconds: 3600 },
);
