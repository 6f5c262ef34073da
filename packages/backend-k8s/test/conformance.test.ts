/**
 * The shared backend conformance suite (core/testing) against KubernetesBackend, driven
 * through the real client-node by the fake apiserver whose pods are Docker containers.
 */
import { describeBackendConformance } from "@code-interpreter/core/testing/conformance";
import { FakeApiServer } from "./fake-apiserver/server.js";
import { makeBackend } from "./helpers.js";

describeBackendConformance(
  "kubernetes (fake apiserver, Docker-backed pods)",
  async () => {
    const fake = await new FakeApiServer().start();
    const backend = makeBackend(fake, { sessionMaxLifetimeSeconds: 3600 });
    return { backend, cleanup: () => fake.stop() };
  },
  { sessionMaxLifetimeSeconds: 3600 },
);
