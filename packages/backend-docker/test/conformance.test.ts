/**
 * The shared backend conformance suite (core/testing) against DockerBackend on the real
 * engine, twice: sessions and one-shot runs started cold, and claimed from a warm pool
 * (issue 10: a claimed session behaves exactly as a cold one). The suite deletes every
 * session it creates; one-shot containers are removed by the backend itself.
 */
import { describeBackendConformance } from "@code-interpreter/core/testing/conformance";
import { makeBackend, makePooledBackend, poolReady } from "./helpers.js";

describeBackendConformance(
  "docker (real engine)",
  async () => ({ backend: makeBackend({ sessionMaxLifetimeSeconds: 3600 }), cleanup: async () => undefined }),
  // The keeper ends an expired session's container itself (AutoRemove), often before the reaper.
  { sessionMaxLifetimeSeconds: 3600, selfExpiring: true },
);

describeBackendConformance(
  "docker (real engine), from the warm pool",
  async () => {
    const { backend } = makePooledBackend(2, { sessionMaxLifetimeSeconds: 3600 });
    await poolReady(backend, 2);
    return { backend, cleanup: async () => void (await backend.drainWarmPool()) };
  },
  { sessionMaxLifetimeSeconds: 3600, selfExpiring: true },
);
