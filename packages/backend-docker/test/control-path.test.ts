/**
 * Issue 8 holes 1 and 6, issue 12's listing, on the real engine: session state is read and
 * written with the archive API (no process in the container, never as root); listing is one
 * engine call; a session whose process slots are used up (fork bomb) stays listable,
 * inspectable, keepalive-able and deletable, and its calls answer SessionExhaustedError.
 */
import { afterAll, describe, expect, it } from "vitest";
import Dockerode from "dockerode";
import { SessionExhaustedError, SessionNotFoundError } from "@code-interpreter/core";
import { IMAGE, LIMITS, cleanup, gone, plainExec, sessionReq, track } from "./helpers.js";
import { createDockerBackend } from "../src/index.js";

interface DialOptions {
  path?: string;
  method?: string;
  options?: Record<string, unknown>;
}

/** A client whose every engine request is recorded (method + path + body). */
function countingClient(): { docker: Dockerode; requests: DialOptions[] } {
  const docker = new Dockerode();
  const requests: DialOptions[] = [];
  const modem = docker.modem as { dial: (o: DialOptions, cb: unknown) => unknown };
  const dial = modem.dial.bind(modem);
  modem.dial = (o: DialOptions, cb: unknown) => {
    requests.push({ path: o.path, method: o.method, options: o.options });
    return dial(o, cb);
  };
  return { docker, requests };
}

const { docker, requests } = countingClient();
const backend = createDockerBackend({
  docker,
  image: IMAGE,
  limits: LIMITS,
  sessionMaxLifetimeSeconds: 3600,
});

afterAll(async () => {
  await backend.close();
  await cleanup();
});

const execCreates = () => requests.filter((r) => /\/containers\/[^/]+\/exec\b/.test(r.path ?? ""));

describe("listing", { timeout: 120_000 }, () => {
  it("is one engine call, with no exec and no per-session request", async () => {
    const owner = `list-${Date.now()}`;
    const made = await Promise.all(
      Array.from({ length: 5 }, () => backend.createSession(sessionReq({ owner, ttlSeconds: 600 }))),
    );
    made.forEach((s) => track(s.id));
    // A fresh backend (another API process): nothing cached.
    const other = countingClient();
    const fresh = createDockerBackend({ docker: other.docker, image: IMAGE, limits: LIMITS });
    try {
      const listed = await fresh.listSessions({ owner });
      expect(listed.map((s) => s.id).sort()).toEqual(made.map((s) => s.id).sort());
      expect(other.requests.map((r) => `${r.method} ${r.path?.split("?")[0]}`)).toEqual([
        "GET /containers/json",
      ]);
      expect(await fresh.countSessions({ owner })).toBe(5);
    } finally {
      await fresh.close();
    }
  });
});

describe("the control path runs nothing as root", { timeout: 120_000 }, () => {
  it("keepalive, get, exec and file calls: no root exec; state via the archive API", async () => {
    const s = await backend.createSession(sessionReq({ idleTimeoutSeconds: 60 }));
    track(s.id);
    requests.length = 0;
    await backend.keepalive(s.id, 600);
    await backend.getSession(s.id);
    await backend.execInSession(s.id, {
      language: "bash",
      code: "true",
      timeoutMs: 10_000,
      maxOutputBytes: 100,
    });
    await backend.listSessionFiles(s.id);
    const rootExecs = execCreates().filter((r) => {
      const user = r.options?.User;
      return typeof user === "string" && /^(0|root)(:|$)/.test(user);
    });
    expect(rootExecs).toEqual([]);
    expect(requests.some((r) => r.method === "PUT" && /\/archive\b/.test(r.path ?? ""))).toBe(true);
    const st = await plainExec(s.id, [
      "stat",
      "-c",
      "%u %a",
      "/run/code-interpreter",
      "/run/code-interpreter/state.json",
    ]);
    expect(st.stdout.toString().trim().split("\n")).toEqual(["0 755", "0 644"]);
  });
});

describe("a session whose process slots are used up (fork bomb)", { timeout: 120_000 }, () => {
  it("stays gettable, listable, keepalive-able and deletable; calls answer SessionExhaustedError", async () => {
    const s = await backend.createSession(sessionReq({ ttlSeconds: 600 }));
    track(s.id);
    const bomb = [
      "import os, time",
      "while True:",
      "    try:",
      "        os.fork()",
      "    except OSError:",
      "        time.sleep(0.05)",
    ].join("\n");
    const started = await backend.execInSession(s.id, {
      language: "bash",
      code: `setsid python3 -c '${bomb}' >/dev/null 2>&1 < /dev/null & sleep 3; echo started`,
      timeoutMs: 20_000,
      maxOutputBytes: 10_000,
    });
    expect(started.stdout).toContain("started");
    requests.length = 0;
    expect((await backend.getSession(s.id)).id).toBe(s.id);
    expect((await backend.listSessions()).map((x) => x.id)).toContain(s.id);
    const k = await backend.keepalive(s.id, 1200);
    expect(k.expiresAt).toBeGreaterThan(s.expiresAt);
    const err = await backend
      .execInSession(s.id, { language: "python", code: "print(1)", timeoutMs: 10_000, maxOutputBytes: 100 })
      .catch((e: unknown) => e);
    expect(err, JSON.stringify(err)).toBeInstanceOf(SessionExhaustedError);
    expect((err as SessionExhaustedError).status).toBe(409);
    expect((err as Error).message).toMatch(/no free process slots/);
    await backend.deleteSession(s.id);
    expect(await gone(s.id)).toBe(true);
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
  });
});

describe("the state volume", { timeout: 120_000 }, () => {
  const anonymousVolumes = async () => (await docker.listVolumes()).Volumes?.length ?? 0;

  it("goes away with the session, deleted or ended by its keeper", async () => {
    const before = await anonymousVolumes();
    const a = await backend.createSession(sessionReq({ ttlSeconds: 600 }));
    const b = await backend.createSession(sessionReq({ ttlSeconds: 2 }));
    [a, b].forEach((x) => track(x.id));
    await backend.keepalive(a.id, 900); // a state file exists on a's volume
    expect(await anonymousVolumes()).toBe(before + 2);
    await backend.deleteSession(a.id);
    expect(await gone(a.id)).toBe(true);
    expect(await gone(b.id, 20_000)).toBe(true); // its keeper exits at expiry; AutoRemove
    const until = Date.now() + 5000;
    while ((await anonymousVolumes()) > before && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect(await anonymousVolumes()).toBe(before);
  });
});

describe("debounced activity", { timeout: 120_000 }, () => {
  it("never lets the keeper's idle deadline end a session in use", async () => {
    // Idle timeout 4 s: activity reaches the state file at most every second; the keeper gets
    // that second as slack. Calls every 1.5 s for 12 s keep the session alive throughout.
    const s = await backend.createSession(sessionReq({ idleTimeoutSeconds: 4 }));
    track(s.id);
    const until = Date.now() + 12_000;
    while (Date.now() < until) {
      const r = await backend.execInSession(s.id, {
        language: "bash",
        code: "echo ok",
        timeoutMs: 10_000,
        maxOutputBytes: 100,
      });
      expect(r.stdout).toBe("ok\n");
      await new Promise((r) => setTimeout(r, 1500));
    }
    expect((await backend.getSession(s.id)).id).toBe(s.id);
    // Left alone, it ends: by its keeper (idle + slack) or, found on access, by the layer.
    expect(await gone(s.id, 15_000)).toBe(true);
  });
});
