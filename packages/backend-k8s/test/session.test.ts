import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buffer as readAll } from "node:stream/consumers";
import { SessionNotFoundError } from "@code-interpreter/core";
import type { KubernetesBackend } from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import { NAMESPACE, makeBackend, startFake, staged } from "./helpers.js";

describe("KubernetesBackend sessions against the fake apiserver (Docker-backed pods)", () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  beforeAll(async () => {
    fake = await startFake();
    backend = makeBackend(fake);
  });
  afterAll(async () => {
    await backend?.close();
    await fake?.stop();
  });

  it("creates a pod, stages files, runs code over WebSocket exec, and deletes it", async () => {
    const s = await backend.createSession({
      files: [staged("data/in.txt", "hello k8s\n")],
      ttlSeconds: 600,
      idleTimeoutSeconds: null,
      metadata: { chat: "1" },
      owner: null,
    });
    expect(s.id).toMatch(/^code-session-/);
    expect(s.status).toBe("running");
    const pod = fake.getPod(NAMESPACE, s.id);
    expect(pod.metadata.labels).toMatchObject({ app: "code-interpreter", component: "session" });

    const r = await backend.execInSession(s.id, {
      language: "python",
      code: "print(open('data/in.txt').read().strip())\nimport os\nos.getuid()",
      timeoutMs: 10_000,
      maxOutputBytes: 10_000,
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello k8s\n65532\n");
    expect(r.exitCode).toBe(0);

    const bad = await backend.execInSession(s.id, {
      language: "bash",
      code: "echo out; echo err >&2; exit 3",
      timeoutMs: 10_000,
      maxOutputBytes: 10_000,
    });
    expect(bad).toMatchObject({ stdout: "out\n", stderr: "err\n", exitCode: 3, timedOut: false });

    const f = await backend.readSessionFile(s.id, "data/in.txt");
    expect((await readAll(f.content)).toString()).toBe("hello k8s\n");

    await backend.deleteSession(s.id);
    await expect(backend.getSession(s.id)).rejects.toBeInstanceOf(SessionNotFoundError);
  });
});
