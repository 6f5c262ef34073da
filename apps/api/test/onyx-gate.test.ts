/**
 * The Onyx client's version gate, as restated in e2e/onyx-models.ts, and what our /health
 * reports to it. The gate passes for our server once the service is released as >= 0.4.0:
 * the release plan of the pending changesets (what `changeset version` will write) is checked
 * to get there, so the test holds both before and after the release is versioned.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import getReleasePlan from "@changesets/get-release-plan";
import request from "supertest";
import { describe, expect, it } from "vitest";
import {
  ONYX_SESSIONS_MIN_VERSION,
  onyxHealth,
  onyxVersionGte,
  parseOnyxVersion,
} from "./e2e/onyx-models.js";
import { makeApp } from "./helpers.js";

const pkg = createRequire(import.meta.url)("../package.json") as { version: string };

describe("the Onyx client's version gate", () => {
  it("parses versions as the client does", () => {
    expect(parseOnyxVersion("0.4.0")).toEqual([0, 4, 0]);
    expect(parseOnyxVersion("v0.4.0")).toEqual([0, 4, 0]);
    expect(parseOnyxVersion("0.4.0-rc.1")).toEqual([0, 4, 0]);
    expect(parseOnyxVersion("0.4.0+build.7")).toEqual([0, 4, 0]);
    expect(parseOnyxVersion("1.2")).toEqual([1, 2, 0]);
    expect(parseOnyxVersion("not-a-version")).toEqual([0, 0, 0]);
    expect(parseOnyxVersion("")).toEqual([0, 0, 0]);
  });

  it("enables the session methods from 0.4.0 on", () => {
    for (const v of ["0.4.0", "0.4.5", "0.10.0", "1.0.0", "1.2.3", "v0.4.0-rc.1"]) {
      expect(onyxVersionGte(v, ONYX_SESSIONS_MIN_VERSION), v).toBe(true);
    }
    for (const v of ["0.3.9", "0.3.0", "0.1.0", "0.0.0", "garbage"]) {
      expect(onyxVersionGte(v, ONYX_SESSIONS_MIN_VERSION), v).toBe(false);
    }
  });

  it("/health reports the service package's real version, which the gate reads", async () => {
    const { app } = makeApp();
    const res = await request(app).get("/health").expect(200);
    const health = onyxHealth(res.body);
    expect(health).toEqual({ healthy: true, version: pkg.version });
    expect(health.version).toMatch(/^\d+\.\d+\.\d+([-+].*)?$/);
    // Sessions are enabled for the Onyx app exactly when the released version allows it
    // (true once the service is released as 1.0.0).
    expect(onyxVersionGte(health.version, ONYX_SESSIONS_MIN_VERSION)).toBe(
      onyxVersionGte(pkg.version, ONYX_SESSIONS_MIN_VERSION),
    );
  });

  it("the service as released (package.json plus the pending changesets) passes the gate", async () => {
    const repo = fileURLToPath(new URL("../../..", import.meta.url));
    const plan = await getReleasePlan(repo);
    const api = plan.releases.find((r) => r.name === "@code-interpreter/api");
    // No pending changeset for the API: the released version is package.json's.
    const released = api?.newVersion ?? pkg.version;
    expect(api === undefined || api.oldVersion === pkg.version).toBe(true);
    expect(onyxVersionGte(released, ONYX_SESSIONS_MIN_VERSION), released).toBe(true);
  });
});
