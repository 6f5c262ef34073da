import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import {
  BackendError,
  BackendUnavailableError,
  SessionNotFoundError,
  type StagedFile,
} from "@code-interpreter/core";
import {
  cleanup,
  docker,
  exists,
  gone,
  makeBackend,
  sessionContainersWithLabels,
  sessionReq,
  staged,
  startPlainContainer,
  track,
} from "./helpers.js";
import { createDockerBackend } from "../src/index.js";
import { LIMITS } from "./helpers.js";

const backend = makeBackend();

afterAll(async () => {
  await backend.close();
  await cleanup();
});

describe("deleteSession", () => {
  it("removes the container; a second delete is not found", async () => {
    const s = await backend.createSession(sessionReq());
    track(s.id);
    expect(await exists(s.id)).toBe(true);
    await backend.deleteSession(s.id);
    expect(await gone(s.id)).toBe(true);
    await expect(backend.deleteSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
  });

  it("rejects ids that are not session ids without touching anything", async () => {
    const name = `ci-test-plain-${randomUUID()}`;
    await startPlainContainer(name, {});
    await expect(backend.deleteSession(name)).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(backend.getSession(name)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect((await docker.getContainer(name).inspect()).State.Running).toBe(true);
  });

  it("refuses session-named containers that lack an identity label", async () => {
    const onlyApp = `code-session-${randomUUID()}`;
    const onlyComponent = `code-session-${randomUUID()}`;
    const none = `code-session-${randomUUID()}`;
    await startPlainContainer(onlyApp, { app: "code-interpreter" });
    await startPlainContainer(onlyComponent, { component: "session" });
    await startPlainContainer(none, {});
    for (const n of [onlyApp, onlyComponent, none]) {
      await expect(backend.deleteSession(n)).rejects.toBeInstanceOf(SessionNotFoundError);
      await expect(backend.getSession(n)).rejects.toBeInstanceOf(SessionNotFoundError);
      expect((await docker.getContainer(n).inspect()).State.Running).toBe(true);
    }
  });

  it("hides sessions of other owners", async () => {
    const s = await backend.createSession(sessionReq({ owner: "owner-a", metadata: { chat: "1" } }));
    track(s.id);
    expect(s.metadata).toEqual({ chat: "1" });
    await expect(backend.getSession(s.id, { owner: "owner-b" })).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(backend.deleteSession(s.id, { owner: null })).rejects.toBeInstanceOf(SessionNotFoundError);
    expect((await backend.listSessions({ owner: "owner-b" })).map((x) => x.id)).not.toContain(s.id);
    expect((await backend.listSessions({ owner: "owner-a" })).map((x) => x.id)).toContain(s.id);
    expect((await backend.getSession(s.id, { owner: "owner-a" })).id).toBe(s.id);
    await backend.deleteSession(s.id, { owner: "owner-a" });
    expect(await gone(s.id)).toBe(true);
  });
});

describe("staging failures", () => {
  const sessionsBefore = async () => new Set((await backend.listSessions()).map((s) => s.id));

  it("removes the container when a staged stream errors", async () => {
    const before = await sessionsBefore();
    const bad: StagedFile = {
      path: "bad.bin",
      size: 1000,
      open: async () =>
        new Readable({
          read() {
            this.destroy(new Error("disk on fire"));
          },
        }),
    };
    const err = await backend
      .createSession(sessionReq({ files: [staged("ok.txt", "ok"), bad] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    await expectNoNewSessionContainer(before);
  });

  it("removes the container when open() rejects", async () => {
    const before = await sessionsBefore();
    const bad: StagedFile = {
      path: "bad.bin",
      size: 3,
      open: () => Promise.reject(new Error("no such upload")),
    };
    await expect(backend.createSession(sessionReq({ files: [bad] }))).rejects.toBeInstanceOf(BackendError);
    await expectNoNewSessionContainer(before);
  });

  async function expectNoNewSessionContainer(before: Set<string>) {
    // Any session container created by this backend since `before` (running or not).
    const all = await docker.listContainers({
      all: true,
      filters: { label: ["app=code-interpreter", "component=session"] },
    });
    const created = all
      .map((c) => c.Names[0]!.slice(1))
      .filter((n) => !before.has(n))
      .filter((n) => mine.has(n));
    expect(created).toEqual([]);
  }
  // Session ids are random, so we learn them through a wrapped docker client.
  const mine = new Set<string>();
  const orig = docker.createContainer.bind(docker);
  docker.createContainer = ((opts: Parameters<typeof orig>[0]) => {
    if (opts.name) mine.add(track(opts.name));
    return orig(opts);
  }) as typeof docker.createContainer;
  it("tracked the failed sessions' names", () => {
    expect(mine.size).toBeGreaterThanOrEqual(2);
  });
  it("left none of them behind", async () => {
    for (const n of mine) {
      expect(await sessionContainersWithLabels(n)).toEqual([]);
    }
  });
});

describe("an unreachable engine", () => {
  const dead = createDockerBackend({
    socketPath: "/tmp/nonexistent.sock",
    image: "code-interpreter-executor:latest",
    limits: LIMITS,
    sessionMaxLifetimeSeconds: 3600,
    maxFileBytes: 1024,
  });

  it("is BackendUnavailableError on every call", async () => {
    await expect(dead.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(dead.createSession(sessionReq())).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(dead.listSessions()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(dead.getSession(`code-session-${randomUUID()}`)).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    await expect(dead.deleteSession(`code-session-${randomUUID()}`)).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    await expect(dead.reap()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(
      dead.execute({ language: "python", code: "1", timeoutMs: 1000, maxOutputBytes: 100, files: [] }),
    ).rejects.toBeInstanceOf(BackendUnavailableError);
    const err = await dead.ping().catch((e: unknown) => e);
    expect((err as BackendUnavailableError).status).toBe(503);
  });

  it("still answers 404 for non-session ids without calling the engine", async () => {
    await expect(dead.getSession("not-a-session")).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(dead.deleteSession("code-session-../../x")).rejects.toBeInstanceOf(SessionNotFoundError);
  });
});

describe("a missing image", () => {
  it("says how to build it", async () => {
    const b = makeBackend({ image: "code-interpreter-executor:does-not-exist" });
    const err = await b.createSession(sessionReq()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toContain("bash images/executor/build-offline.sh");
    await b.close();
  });
});

describe("ping", () => {
  it("answers", async () => {
    await expect(backend.ping()).resolves.toBeUndefined();
  });
});
