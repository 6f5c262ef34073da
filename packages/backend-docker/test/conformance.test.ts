/**
 * The shared backend conformance suite (core/testing) against DockerBackend on the real
 * engine. The suite deletes every session it creates; one-shot containers are removed by
 * the backend itself.
 */
import { describeBackendConformance } from "@code-interpreter/core/testing/conformance";
import { makeBackend } from "./helpers.js";

describeBackendConformance(
  "docker (real engine)",
  async () => ({ backend: makeBackend({ sessionMaxLifetimeSeconds: 3600 }), cleanup: async () => undefined }),
  // The keeper ends an expired session's container itself (AutoRemove), often before the reaper.
  { sessionMaxLifetimeSeconds: 3600, selfExpiring: true },
);
