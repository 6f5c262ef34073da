/**
 * Issue 4: MAX_SESSIONS over HTTP, and 50 sessions created and deleted concurrently through the
 * API leaving nothing behind — on the real engine. Each test has its own API key, so the limit
 * and the leftovers check only count this test's sessions (MAX_SESSIONS is per key when keys
 * are configured), whatever else runs on the engine.
 */
import { afterAll, describe, expect, it } from "vitest";
import {
  exists,
  mapLimit,
  ownedSessionContainers,
  removeTracked,
  seedKeeperlessSession,
  startTestServer,
  type TestServer,
} from "./helpers.js";

const servers: TestServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await removeTracked(servers.map((s) => s.client.owner));
});

describe("MAX_SESSIONS=2", { timeout: 120_000 }, () => {
  it("answers the third create 429 with a clear detail; after a delete, create works again", async () => {
    const s = await startTestServer({ reaper: false, env: { MAX_SESSIONS: "2" } });
    servers.push(s);
    const api = s.client;
    // An expired session not yet reaped (its keeper failed) does not count.
    const { id: stale } = await seedKeeperlessSession({
      owner: api.owner,
      createdAt: Date.now() - 60_000,
      ttlSeconds: 5,
    });
    const a = await api.createSession({ ttl_seconds: 120 });
    const b = await api.createSession({ ttl_seconds: 120 });
    const third = await api.call("POST", "/v1/sessions", { ttl_seconds: 120 });
    expect(third.status).toBe(429);
    expect(third.body.detail).toBe(
      "session limit reached (2, MAX_SESSIONS): delete a session or wait for one to expire",
    );
    expect((await ownedSessionContainers(api.owner)).sort()).toEqual(
      [a.session_id, b.session_id, stale].sort(),
    );

    expect((await api.call("DELETE", `/v1/sessions/${a.session_id}`)).status).toBe(204);
    const c = await api.createSession({ ttl_seconds: 120 });
    expect((await api.bash(c.session_id, "echo ok")).body).toMatchObject({ stdout: "ok\n" });
    expect((await api.call("POST", "/v1/sessions", {})).status).toBe(429);

    for (const id of [b.session_id, c.session_id]) {
      expect((await api.call("DELETE", `/v1/sessions/${id}`)).status).toBe(204);
    }
  });
});

describe("50 sessions created and deleted concurrently", { timeout: 300_000 }, () => {
  it("leave zero of their containers behind", async () => {
    const s = await startTestServer({ reaper: false, env: { MAX_SESSIONS: "1000" } });
    servers.push(s);
    const api = s.client;
    const ids: string[] = [];
    const statuses: string[] = [];
    const n = Array.from({ length: 50 }, (_, i) => i);
    // ~10 in flight at a time: first all 50 creates, then all 50 deletes.
    await mapLimit(n, 10, async (i) => {
      const r = await api.call("POST", "/v1/sessions", { ttl_seconds: 600, metadata: { n: String(i) } });
      statuses.push(`create ${r.status}`);
      if (r.status === 201) ids.push(r.body.session_id as string);
    });
    const listed = (await api.call("GET", "/v1/sessions")).body.sessions as Array<{ session_id: string }>;
    expect(new Set(listed.map((x) => x.session_id))).toEqual(new Set(ids));
    await mapLimit(ids, 10, async (id) => {
      const d = await api.call("DELETE", `/v1/sessions/${id}`);
      statuses.push(`delete ${d.status}`);
    });
    expect(statuses.filter((x) => x !== "create 201" && x !== "delete 204")).toEqual([]);
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    for (const id of ids) expect(await exists(id), id).toBe(false);
    // Also nothing of this key's under another name (e.g. a half-made container).
    expect(await ownedSessionContainers(api.owner)).toEqual([]);
    expect((await api.call("GET", "/v1/sessions")).body).toEqual({ sessions: [] });
  });
});
