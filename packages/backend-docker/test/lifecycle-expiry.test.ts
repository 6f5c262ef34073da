/**
 * Issue 4, backend side: an expired session is "not found" for every call, deleteSession
 * included (which still removes the container), while a session kept alive past its original
 * expiry is not; countSessions (MAX_SESSIONS) agrees. A second backend with a clock set ahead plays "later", so the keeper (which
 * uses the real clock) has not ended the container yet.
 */
import { afterAll, describe, expect, it } from "vitest";
import { SessionNotFoundError } from "@code-interpreter/core";
import { cleanup, exists, gone, makeBackend, sessionReq, track } from "./helpers.js";

const backend = makeBackend();
const SKEW_MS = 60_000;
const later = makeBackend({ now: () => Date.now() + SKEW_MS });

afterAll(async () => {
  await Promise.all([backend.close(), later.close()]);
  await cleanup();
});

describe("expired sessions", { timeout: 120_000 }, () => {
  it("deleteSession of an expired session is not found, and removes the container", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 30 }));
    track(s.id);
    await expect(later.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    // getSession's background cleanup may already be removing it; create another to be sure
    // deleteSession itself sees a running, expired container.
    const t = await backend.createSession(sessionReq({ ttlSeconds: 30 }));
    track(t.id);
    expect(await exists(t.id)).toBe(true);
    await expect(later.deleteSession(t.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect(await gone(t.id)).toBe(true);
    expect(await gone(s.id)).toBe(true);
  });

  it("an idle-expired session is not found on delete either", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 600, idleTimeoutSeconds: 30 }));
    track(s.id);
    await expect(later.deleteSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect(await gone(s.id)).toBe(true);
  });

  it("a session kept alive past its original expiry is deleted normally", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 30 }));
    track(s.id);
    const k = await backend.keepalive(s.id, 600);
    expect(k.expiresAt).toBeGreaterThan(Date.now() + SKEW_MS);
    await expect(later.getSession(s.id)).resolves.toMatchObject({ id: s.id, expiresAt: k.expiresAt });
    await later.deleteSession(s.id);
    expect(await gone(s.id)).toBe(true);
    await expect(backend.deleteSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
  });

  it("countSessions counts live sessions only, reading state just for the label-expired ones", async () => {
    const owner = `count-${Date.now()}`;
    const kept = await backend.createSession(sessionReq({ ttlSeconds: 30, owner }));
    const lapsed = await backend.createSession(sessionReq({ ttlSeconds: 30, owner }));
    const long = await backend.createSession(sessionReq({ ttlSeconds: 600, owner }));
    [kept, lapsed, long].forEach((x) => track(x.id));
    await backend.keepalive(kept.id, 600);
    expect(await backend.countSessions({ owner })).toBe(3);
    expect(await backend.countSessions({ owner: "someone-else" })).toBe(0);
    // "Later": lapsed has expired; kept only by its state record; long by its labels.
    expect(await later.countSessions({ owner })).toBe(2);
    expect((await later.listSessions({ owner })).map((x) => x.id).sort()).toEqual([kept.id, long.id].sort());
    for (const x of [kept, lapsed, long]) await backend.deleteSession(x.id);
    expect(await backend.countSessions({ owner })).toBe(0);
  });
});
