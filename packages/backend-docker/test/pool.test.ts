/**
 * The warm pool on the real engine (issue 10): members hardened exactly like sessions, claims
 * atomic across API processes (two backends on one engine), claimed sessions that any process
 * sees with their owner and metadata, a keeper that follows the claim's lifetime, one-shot
 * runs that each get a fresh member and leave nothing behind.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { SessionNotFoundError, type ExecRequest } from "@code-interpreter/core";
import { memberLabels, newPoolMemberName, STATE_FILE } from "@code-interpreter/core/backend-kit";
import { DockerPlatform, containerTemplate, type DockerBackend } from "../src/index.js";
import {
  cleanup,
  docker,
  gone,
  IMAGE,
  LIMITS,
  makeBackend,
  makePooledBackend,
  ourContainers,
  poolReady,
  sessionReq,
  startPlainContainer,
  track,
} from "./helpers.js";

const py = (code: string): ExecRequest => ({
  language: "python",
  code,
  timeoutMs: 20_000,
  maxOutputBytes: 100_000,
});
const sh = (code: string): ExecRequest => ({ ...py(code), language: "bash" });

const backends: DockerBackend[] = [];
function pooled(...args: Parameters<typeof makePooledBackend>): ReturnType<typeof makePooledBackend> {
  const made = makePooledBackend(...args);
  backends.push(made.backend);
  return made;
}

afterEach(async () => {
  const all = backends.splice(0);
  if (all[0]) await all[0].drainWarmPool();
  await Promise.all(all.map((b) => b.close()));
  await cleanup();
});
afterAll(async () => {
  // Nothing of ours is left: no member, no session, no executor.
  expect(await ourContainers()).toEqual([]);
});

/** What makes a container hardened, from `docker inspect`. */
async function hardening(ref: string) {
  const c = await docker.getContainer(ref).inspect();
  const h = c.HostConfig;
  return {
    user: c.Config.User,
    image: c.Config.Image,
    workdir: c.Config.WorkingDir,
    env: c.Config.Env,
    network: h.NetworkMode,
    capDrop: h.CapDrop,
    securityOpt: h.SecurityOpt,
    readonly: h.ReadonlyRootfs,
    privileged: h.Privileged,
    tmpfs: h.Tmpfs,
    pids: h.PidsLimit,
    memory: h.Memory,
    swap: h.MemorySwap,
    cpus: h.NanoCpus,
    autoRemove: h.AutoRemove,
    mounts: (c.Mounts ?? []).map((m) => ({ type: m.Type, destination: m.Destination, rw: m.RW })),
    identity: [c.Config.Labels["app"], c.Config.Labels["component"]],
  };
}

describe("the engine's rename, the claim's atomic step", () => {
  it("of concurrent renames of one container to the same name exactly one succeeds", async () => {
    for (let round = 0; round < 3; round++) {
      const from = track(`code-pool-rename-test-${process.pid}-${round}`);
      const to = track(`code-session-rename-test-${process.pid}-${round}`);
      await startPlainContainer(from, {});
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => docker.getContainer(from).rename({ name: to })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) {
        if (r.status === "rejected")
          expect([400, 404, 409]).toContain((r.reason as { statusCode?: number }).statusCode);
      }
    }
  });
});

describe("warm pool members", () => {
  it("fill to the size, are hardened exactly like a cold session, and are never listed or counted", async () => {
    const cold = makeBackend();
    backends.push(cold);
    const s = await cold.createSession(sessionReq());
    track(s.id);
    const { backend } = pooled(3);
    await poolReady(backend, 3);
    const members = (await ourContainers()).filter((n) => n.startsWith("code-pool-"));
    expect(members).toHaveLength(3);
    const coldSpec = await hardening(s.id);
    for (const m of members) expect(await hardening(m)).toEqual(coldSpec);
    expect((await backend.listSessions()).map((x) => x.id)).toEqual([s.id]);
    expect(await backend.countSessions()).toBe(1);
    // Nor are they anyone's to reach by name.
    await expect(backend.getSession(members[0]!)).rejects.toBeInstanceOf(SessionNotFoundError);
  });

  it("a member made with another fingerprint (another image or limits) is reaped; a restarted API adopts the rest", async () => {
    const platform = new DockerPlatform({
      docker,
      image: IMAGE,
      template: containerTemplate(IMAGE, LIMITS),
      cpuSeconds: 10,
      maxFileBytes: 1 << 20,
      apiTimeoutMs: 30_000,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      now: Date.now,
    });
    const now = Date.now();
    const stale = await platform.pool.createMember({
      name: newPoolMemberName(),
      labels: memberLabels("0000stale0000"),
      createdAt: now,
      expiresAt: now + 600_000,
    });
    track(stale.handle);
    const first = pooled(2);
    await poolReady(first.backend, 2);
    expect(await gone(stale.handle, 10_000)).toBe(true);
    const mine = (await ourContainers()).filter((n) => n.startsWith("code-pool-")).sort();
    expect(mine).toHaveLength(2);
    await first.backend.close(); // a restart: the members stay
    const second = pooled(2);
    await poolReady(second.backend, 2);
    expect((await ourContainers()).filter((n) => n.startsWith("code-pool-")).sort()).toEqual(mine);
  });
});

describe("sessions claimed from the pool", () => {
  it("need no container start, and every API process sees their owner, metadata and lifetime", async () => {
    const { backend, probe } = pooled(2);
    await poolReady(backend, 2);
    const members = (await ourContainers()).filter((n) => n.startsWith("code-pool-"));
    const s = await backend.createSession(
      sessionReq({ owner: "alice", metadata: { turn: "7" }, ttlSeconds: 300 }),
    );
    track(s.id);
    expect(probe.hits("session")).toBe(1);
    // The member's uuid, now a session: the same container (started before the request).
    expect(members).toContain(s.id.replace("code-session-", "code-pool-"));
    const other = makeBackend(); // another API process, knowing nothing
    backends.push(other);
    expect(await other.getSession(s.id, { owner: "alice" })).toMatchObject({
      owner: "alice",
      metadata: { turn: "7" },
    });
    expect((await other.listSessions({ owner: "alice" })).map((x) => x.id)).toEqual([s.id]);
    expect(await other.listSessions({ owner: "bob" })).toEqual([]);
    await expect(other.getSession(s.id, { owner: "bob" })).rejects.toBeInstanceOf(SessionNotFoundError);
    // It works like any session: Python state, keepalive (the claim survives the state write).
    await backend.execInSession(s.id, py("x = 41"));
    expect((await other.execInSession(s.id, py("print(x + 1)"))).stdout).toBe("42\n");
    const kept = await other.keepalive(s.id, 900, { owner: "alice" });
    expect(kept.expiresAt).toBeGreaterThan(s.expiresAt);
    const third = makeBackend();
    backends.push(third);
    expect(await third.getSession(s.id)).toMatchObject({ owner: "alice", expiresAt: kept.expiresAt });
    // The code can read its state (the keeper's record) but not write it.
    const w = await backend.execInSession(
      s.id,
      sh(`cat ${STATE_FILE} >/dev/null && echo readable; echo x > ${STATE_FILE} || echo denied`),
    );
    expect(w.stdout).toContain("readable");
    expect(w.stdout).toContain("denied");
    await backend.deleteSession(s.id, { owner: "alice" });
    expect(await gone(s.id)).toBe(true);
  });

  it("files given at creation are staged into the claimed member", async () => {
    const { backend, probe } = pooled(1);
    await poolReady(backend, 1);
    const content = Buffer.from("hello from the pool");
    const s = await backend.createSession(
      sessionReq({
        files: [
          {
            path: "in/a.txt",
            size: content.length,
            open: async () => (await import("node:stream")).Readable.from([content]),
          },
        ],
      }),
    );
    track(s.id);
    expect(probe.hits("session")).toBe(1);
    expect((await backend.execInSession(s.id, sh("cat in/a.txt"))).stdout).toBe("hello from the pool");
  });

  it("two API processes doing 20 concurrent creates never hand out the same session or container", async () => {
    const a = pooled(5);
    const b = pooled(5);
    await poolReady(a.backend, 5);
    await poolReady(b.backend, 5);
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).backend.createSession(sessionReq())),
    );
    for (const s of created) track(s.id);
    const ids = created.map((s) => s.id);
    expect(new Set(ids).size).toBe(20);
    const containerIds = await Promise.all(
      ids.map(async (id) => (await docker.getContainer(id).inspect()).Id),
    );
    expect(new Set(containerIds).size).toBe(20);
    expect(a.probe.hits() + b.probe.hits()).toBeGreaterThan(0);
    // Every session answers as itself.
    const who = await Promise.all(ids.map((id) => a.backend.execInSession(id, sh("hostname"))));
    expect(new Set(who.map((r) => r.stdout)).size).toBe(20);
  });

  it("the keeper follows the claim: a claimed session outlives the member's max age, and ends at its own deadline with no API", async () => {
    const { backend, probe } = pooled(2, { maxAgeSeconds: 8 });
    await poolReady(backend, 2);
    const long = await backend.createSession(sessionReq({ ttlSeconds: 600 }));
    const short = await backend.createSession(sessionReq({ ttlSeconds: 4 }));
    track(long.id);
    track(short.id);
    expect(probe.hits("session")).toBe(2);
    await backend.drainWarmPool();
    await backend.close(); // no API process from here on
    expect(await gone(short.id, 20_000)).toBe(true);
    await sleep(Math.max(0, long.createdAt + 12_000 - Date.now()));
    expect((await docker.getContainer(long.id).inspect()).State.Running).toBe(true);
  });
});

describe("one-shot runs from the pool", () => {
  it("each run gets a fresh member (10 runs: no marker seen twice) and no container is left", async () => {
    const { backend, probe } = pooled(3);
    await poolReady(backend, 3);
    const runs = [];
    for (let i = 0; i < 10; i++) {
      runs.push(
        await backend.execute({
          ...sh(
            `ls -A /workspace /tmp; echo marker-${i} > /workspace/marker-${i}; echo m > /tmp/marker-${i}`,
          ),
          files: [],
        }),
      );
    }
    for (const r of runs) {
      expect(r.exitCode).toBe(0);
      expect(r.stdout).not.toMatch(/marker-/);
    }
    expect(probe.hits("executor")).toBeGreaterThan(0);
    await backend.drainWarmPool();
    await backend.close();
    for (let i = 0; i < 50 && (await ourContainers()).length > 0; i++) await sleep(100);
    expect(await ourContainers()).toEqual([]);
  });
});
