/**
 * Issue 4: session lifetimes end to end over HTTP on the real Docker engine — TTL, idle timeout,
 * keepalive and the hard max lifetime, 404 for expired sessions before any reaper ran, the
 * reaper on its own (a session whose keeper failed), and state shared by two API processes.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL_EXPIRES_AT, LABEL_MAX_EXPIRES_AT } from "@code-interpreter/core/backend-kit";
import {
  docker,
  goneBy,
  isRunning,
  ms,
  removeTracked,
  seedKeeperlessSession,
  sleep,
  startTestServer,
  type Client,
  type TestServer,
} from "./helpers.js";

const INTERVAL_S = 1;
/** Engine latency on a busy 2-core machine: container exit, AutoRemove, our polling. */
const SLACK_MS = 2_000;

const servers: TestServer[] = [];
const owners = new Set<string>();

async function server(opts: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const s = await startTestServer(opts);
  servers.push(s);
  owners.add(s.client.owner);
  return s;
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await removeTracked([...owners]);
});

describe("ttl and idle timeout", { timeout: 120_000 }, () => {
  let s: TestServer;
  let api: Client;
  beforeAll(async () => {
    s = await server({
      env: { SESSION_REAPER_INTERVAL_SECONDS: String(INTERVAL_S), SESSION_MAX_LIFETIME_SECONDS: "600" },
    });
    api = s.client;
  });

  it("records the expiry on the container at creation", async () => {
    const sess = await api.createSession({ ttl_seconds: 300 });
    const labels = (await docker.getContainer(sess.session_id).inspect()).Config.Labels;
    expect(Number(labels[LABEL_EXPIRES_AT]) * 1000).toBe(ms(sess.expires_at));
    expect(Number(labels[LABEL_MAX_EXPIRES_AT]) * 1000).toBe(ms(sess.max_expires_at));
    expect(ms(sess.expires_at) - ms(sess.created_at)).toBe(300_000);
    expect(ms(sess.max_expires_at) - ms(sess.created_at)).toBe(600_000);
    expect((await api.call("DELETE", `/v1/sessions/${sess.session_id}`)).status).toBe(204);
  });

  it("ttl_seconds: 3 — container removed and GET 404 within ttl + 2 reaper intervals", async () => {
    const sess = await api.createSession({ ttl_seconds: 3 });
    const id = sess.session_id;
    expect((await api.bash(id, "echo hi")).body).toMatchObject({ stdout: "hi\n", exit_code: 0 });
    const deadline = ms(sess.expires_at) + 2 * INTERVAL_S * 1000 + SLACK_MS;
    const goneAt = await goneBy(id, deadline);
    expect(goneAt, "container still exists after ttl + 2 intervals").not.toBeNull();
    expect(goneAt as number).toBeGreaterThanOrEqual(ms(sess.expires_at) - 1000);
    expect((await api.call("GET", `/v1/sessions/${id}`)).status).toBe(404);
    expect((await api.call("DELETE", `/v1/sessions/${id}`)).status).toBe(404);
    const list = await api.call("GET", "/v1/sessions");
    expect((list.body.sessions as Array<{ session_id: string }>).map((x) => x.session_id)).not.toContain(id);
  });

  it("idle_timeout_seconds: 3 — a bash call every second keeps it alive past 6 s; reaped ~2 intervals after the calls stop", async () => {
    const sess = await api.createSession({ idle_timeout_seconds: 3 });
    const id = sess.session_id;
    expect(sess.idle_timeout_seconds).toBe(3);
    const created = Date.now();
    const seen: number[] = [ms(sess.last_active_at)];
    for (let i = 0; Date.now() - created < 7_000; i++) {
      const tick = Date.now();
      const r = await api.bash(id, `echo ${i}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.stdout).toBe(`${i}\n`);
      const g = await api.call("GET", `/v1/sessions/${id}`);
      expect(g.status).toBe(200);
      seen.push(ms((g.body as unknown as { last_active_at: number }).last_active_at));
      await sleep(Math.max(0, 1_000 - (Date.now() - tick)));
    }
    // Alive past 6 s, and every call moved last_active_at.
    expect(Date.now() - created).toBeGreaterThan(6_000);
    expect((await api.call("GET", `/v1/sessions/${id}`)).status).toBe(200);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] as number);
    expect(seen.length).toBeGreaterThanOrEqual(5);

    const lastActive = seen[seen.length - 1] as number;
    const idleDeadline = lastActive + 3_000;
    const goneAt = await goneBy(id, idleDeadline + 2 * INTERVAL_S * 1000 + SLACK_MS);
    expect(goneAt, "idle session not reaped within 2 intervals after its idle deadline").not.toBeNull();
    expect(goneAt as number).toBeGreaterThanOrEqual(idleDeadline - 500);
    expect((await api.call("GET", `/v1/sessions/${id}`)).status).toBe(404);
  });

  it("the reaper alone removes an expired session whose keeper failed, and logs it", async () => {
    // PID 1 is `sleep`: nothing inside the container ends it. Nobody calls the API for it either.
    const { id, expiresAt } = await seedKeeperlessSession({ owner: api.owner, ttlSeconds: 2 });
    expect(await isRunning(id)).toBe(true);
    const goneAt = await goneBy(id, expiresAt + 2 * INTERVAL_S * 1000 + SLACK_MS);
    expect(goneAt, "the reaper did not remove it within 2 intervals").not.toBeNull();
    expect(s.logs.lines).toContainEqual(
      expect.objectContaining({ msg: "reaped", session: id, reason: "expired" }),
    );
  });
});

describe("keepalive and the max lifetime (SESSION_MAX_LIFETIME_SECONDS=8)", { timeout: 120_000 }, () => {
  let api: Client;
  let other: Client;
  beforeAll(async () => {
    const key = `lc-${randomUUID()}`;
    const env = { SESSION_REAPER_INTERVAL_SECONDS: String(INTERVAL_S), SESSION_MAX_LIFETIME_SECONDS: "8" };
    api = (await server({ env, key })).client;
    // A second API process on the same engine (its own backend, no reaper).
    other = (await server({ env, key, reaper: false })).client;
  });

  it("ttl_seconds defaults to and is capped by the max lifetime", async () => {
    const sess = await api.createSession({});
    expect(ms(sess.expires_at) - ms(sess.created_at)).toBe(8_000);
    expect(sess.max_expires_at).toBe(sess.expires_at);
    const over = await api.call("POST", "/v1/sessions", { ttl_seconds: 9 });
    expect(over.status).toBe(422);
    expect(over.body.detail).toMatch(/maximum session lifetime of 8 seconds/);
    await api.call("DELETE", `/v1/sessions/${sess.session_id}`);
  });

  it("keepalive moves expires_at later, the session outlives its TTL, and never past created_at + max", async () => {
    const sess = await api.createSession({ ttl_seconds: 3 });
    const id = sess.session_id;
    const created = ms(sess.created_at);
    const originalExpiry = ms(sess.expires_at);
    await sleep(1_000);

    const k1 = await api.call("POST", `/v1/sessions/${id}/keepalive`, { ttl_seconds: 5 });
    expect(k1.status, JSON.stringify(k1.body)).toBe(200);
    const extended = ms(k1.body.expires_at as number);
    expect(extended).toBeGreaterThan(originalExpiry);
    expect(extended).toBeLessThanOrEqual(created + 8_000);
    // Another API process sees the extension (the state lives in the container).
    expect(ms((await other.call("GET", `/v1/sessions/${id}`)).body.expires_at as number)).toBe(extended);

    // Past the original TTL it is still alive and usable.
    await sleep(Math.max(0, originalExpiry + 1_000 - Date.now()));
    expect((await api.call("GET", `/v1/sessions/${id}`)).status).toBe(200);
    expect((await other.bash(id, "echo alive")).body).toMatchObject({ stdout: "alive\n" });

    // Asking for more than is left: capped at the hard max.
    const k2 = await api.call("POST", `/v1/sessions/${id}/keepalive`, { ttl_seconds: 8 });
    expect(k2.status).toBe(200);
    expect(ms(k2.body.expires_at as number)).toBe(created + 8_000);
    expect(k2.body.max_expires_at).toBe(k2.body.expires_at);
    expect((await api.call("POST", `/v1/sessions/${id}/keepalive`, { ttl_seconds: 9 })).status).toBe(422);

    const goneAt = await goneBy(id, created + 8_000 + 2 * INTERVAL_S * 1000 + SLACK_MS);
    expect(goneAt, "still there after the max lifetime + 2 intervals").not.toBeNull();
    expect(goneAt as number).toBeGreaterThanOrEqual(created + 8_000 - 500);
    expect((await api.call("GET", `/v1/sessions/${id}`)).status).toBe(404);
    expect((await api.call("POST", `/v1/sessions/${id}/keepalive`, { ttl_seconds: 5 })).status).toBe(404);
  });

  it("activity through one API process moves last_active_at seen by another", async () => {
    const sess = await api.createSession({ ttl_seconds: 8 });
    const id = sess.session_id;
    await sleep(1_100);
    expect((await other.bash(id, "true")).status).toBe(200);
    const after = await api.call("GET", `/v1/sessions/${id}`);
    expect(ms(after.body.last_active_at as number)).toBeGreaterThan(ms(sess.last_active_at));
    await api.call("DELETE", `/v1/sessions/${id}`);
  });
});

describe("an expired session is 404 before any reaper ran", { timeout: 120_000 }, () => {
  let api: Client;
  beforeAll(async () => {
    api = (await server({ reaper: false, env: { SESSION_MAX_LIFETIME_SECONDS: "600" } })).client;
  });

  const everyCall = (id: string) => [
    api.call("GET", `/v1/sessions/${id}`),
    api.bash(id, "echo no"),
    api.call("POST", `/v1/sessions/${id}/execute`, { code: "print(1)" }),
    api.call("POST", `/v1/sessions/${id}/keepalive`, { ttl_seconds: 60 }),
    api.call("GET", `/v1/sessions/${id}/files`),
    api.call("GET", `/v1/sessions/${id}/files/a.txt`),
  ];

  it("a ttl_seconds: 3 session answers 404 on every call once expires_at has passed", async () => {
    const sess = await api.createSession({ ttl_seconds: 3 });
    const id = sess.session_id;
    expect((await api.bash(id, "echo x > a.txt")).status).toBe(200);
    await sleep(Math.max(0, ms(sess.expires_at) + 50 - Date.now()));
    for (const r of await Promise.all(everyCall(id))) expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect((await api.call("DELETE", `/v1/sessions/${id}`)).status).toBe(404);
  });

  it("the API's own expiry check answers 404 while the container is still running", async () => {
    // Keeper-less: the container would run for 10 more minutes; no reaper runs in this server.
    const { id } = await seedKeeperlessSession({
      owner: api.owner,
      createdAt: Date.now() - 10_000,
      ttlSeconds: 5,
    });
    expect(await isRunning(id)).toBe(true);
    for (const r of await Promise.all(everyCall(id))) expect(r.status, JSON.stringify(r.body)).toBe(404);
    const list = await api.call("GET", "/v1/sessions");
    expect((list.body.sessions as Array<{ session_id: string }>).map((x) => x.session_id)).not.toContain(id);
    // Seeing it expired, the API removes it in the background.
    expect(await goneBy(id, Date.now() + 10_000)).not.toBeNull();
  });

  it("a live keeper-less session is served (the seeds are faithful session look-alikes)", async () => {
    const { id } = await seedKeeperlessSession({ owner: api.owner, ttlSeconds: 60 });
    const r = await api.call("GET", `/v1/sessions/${id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ session_id: id, status: "running", metadata: { seeded: "keeperless" } });
    expect((await api.call("DELETE", `/v1/sessions/${id}`)).status).toBe(204);
  });
});
