/**
 * A hung apiserver (the fake accepts connections and answers nothing, like a SIGSTOPped
 * kube-apiserver) must not hang the API: every REST call made through a DeadlineKubeConfig
 * and every exec handshake fails within its deadline as BackendUnavailableError (503), with
 * the real client library, and works again once the server answers.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreV1Api } from "@kubernetes/client-node";
import { BackendUnavailableError, BackendError } from "@code-interpreter/core";
import { execCapture, newSessionId } from "@code-interpreter/core/backend-kit";
import {
  DeadlineKubeConfig,
  KubernetesTimeoutError,
  PodExecTransport,
  loadDeadlineKubeConfig,
  toCoreError,
  withSignal,
  type KubernetesBackend,
} from "../src/index.js";
import type { FakeApiServer } from "./fake-apiserver/server.js";
import { NAMESPACE, makeBackend, sleep, startFake } from "./helpers.js";

const DEADLINE_MS = 800;
/** Slack for a loaded machine: the call must end near its deadline, not after a TCP timeout. */
const SLACK_MS = 4000;

async function timed<T>(p: Promise<T>): Promise<{ err: unknown; ms: number }> {
  const t0 = Date.now();
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  return { err, ms: Date.now() - t0 };
}

describe("deadlines against a hung apiserver", () => {
  let fake: FakeApiServer;
  let kc: DeadlineKubeConfig;
  let backend: KubernetesBackend;
  let session: string;
  beforeAll(async () => {
    fake = await startFake();
    kc = DeadlineKubeConfig.from(fake.kubeConfig(NAMESPACE), { requestTimeoutMs: DEADLINE_MS });
    backend = makeBackend(fake, { kubeConfig: kc });
    session = (
      await backend.createSession({
        files: [],
        ttlSeconds: 600,
        idleTimeoutSeconds: null,
        metadata: {},
        owner: null,
      })
    ).id;
  });
  afterAll(async () => {
    fake?.resume();
    await fake?.stop();
  });

  it("a REST call fails with KubernetesTimeoutError at its deadline, mapped to 503", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    fake.hang();
    try {
      const { err, ms } = await timed(core.listNamespacedPod({ namespace: NAMESPACE }));
      expect(err).toBeInstanceOf(KubernetesTimeoutError);
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      const mapped = toCoreError(err, "list pods");
      expect(mapped).toBeInstanceOf(BackendUnavailableError);
      expect((mapped as BackendUnavailableError).status).toBe(503);
      expect(mapped.message).toBe(
        `Kubernetes API did not answer within ${DEADLINE_MS} ms while trying to list pods`,
      );
    } finally {
      fake.resume();
    }
    // Answered again once the server is.
    expect((await core.listNamespacedPod({ namespace: NAMESPACE })).kind).toBe("PodList");
  });

  it("the backend's health check and session calls answer 503 within the deadline", async () => {
    fake.hang();
    try {
      for (const call of [
        (): Promise<unknown> => backend.ping(),
        () => backend.getSession(session),
        () => backend.listSessions(),
        () => backend.keepalive(session, 60),
        () => backend.deleteSession(newSessionId()),
      ]) {
        const { err, ms } = await timed(call());
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      }
      // Issue 9: a session call rides the agent's exec stream, already open, with no apiserver
      // request of its own; a hung apiserver stalls that stream too: the call still ends, as a
      // timeout, at its timeout plus the channel's 6 s margin.
      const t0 = Date.now();
      const r = await backend.execInSession(session, {
        language: "python",
        code: "print(1)",
        timeoutMs: 1000,
        maxOutputBytes: 1000,
      });
      expect(r.timedOut || r.stdout === "1\n").toBe(true);
      expect(Date.now() - t0).toBeLessThan(1000 + 6000 + SLACK_MS);
    } finally {
      fake.resume();
    }
    expect((await backend.getSession(session)).id).toBe(session);
  });

  it("a plain KubeConfig given to the backend gets the requestTimeoutMs deadline too", async () => {
    // What a library user passes: a client-node KubeConfig, not a DeadlineKubeConfig.
    const plain = makeBackend(fake, {
      kubeConfig: fake.kubeConfig(NAMESPACE),
      requestTimeoutMs: DEADLINE_MS,
    });
    fake.hang();
    try {
      for (const call of [(): Promise<unknown> => plain.ping(), () => plain.getSession(session)]) {
        const { err, ms } = await timed(call());
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect((err as Error).message).toContain(`within ${DEADLINE_MS} ms`);
        expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
        expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
      }
    } finally {
      fake.resume();
    }
    await plain.close();
  });

  it("an exec handshake fails at its deadline with 503", async () => {
    const t = new PodExecTransport(kc, NAMESPACE, session);
    fake.hang();
    try {
      const { err, ms } = await timed(t.exec(["true"]));
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toMatch(/did not answer within 800 ms/);
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
    } finally {
      fake.resume();
    }
    expect((await execCapture(t, ["echo", "ok"])).stdout.toString()).toBe("ok\n");
  });

  it("a hang in the middle of a running exec still ends the call: timeout + backstop, then the result", async () => {
    // The session's agent channel is open first: the hang must meet a running exec, not the
    // channel's opening (which a loaded machine can stretch past the 300 ms below).
    await backend.execInSession(session, {
      language: "python",
      code: "pass",
      timeoutMs: 5000,
      maxOutputBytes: 100,
    });
    const t0 = Date.now();
    const run = backend.execInSession(session, {
      language: "python",
      code: "import time\nprint('before', flush=True)\ntime.sleep(1)\nprint('after')",
      timeoutMs: 1000,
      maxOutputBytes: 1000,
    });
    // Hang once the command runs (its first output may or may not have been relayed).
    await sleep(300);
    fake.hang();
    try {
      const r = await run;
      // core's runner gives up at timeoutMs + its 3 s backstop; the kill exec then meets the
      // handshake deadline: the call ends, reported as timed out, never hangs.
      expect(r.timedOut).toBe(true);
      expect(r.stdout).not.toContain("after");
      expect(Date.now() - t0).toBeLessThan(1000 + 3000 + DEADLINE_MS + 2000 + SLACK_MS);
    } finally {
      fake.resume();
    }
    expect((await backend.getSession(session)).status).toBe("running");
  });

  it("loadDeadlineKubeConfig loads $KUBECONFIG like loadFromDefault, with the deadline", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    const file = join(dir, "config");
    writeFileSync(file, fake.kubeConfig(NAMESPACE).exportConfig());
    const before = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file;
    try {
      const loaded = loadDeadlineKubeConfig({ requestTimeoutMs: DEADLINE_MS });
      expect(loaded.requestTimeoutMs).toBe(DEADLINE_MS);
      const viaEnv = makeBackend(fake, { kubeConfig: loaded });
      await viaEnv.ping();
      fake.hang();
      const { err, ms } = await timed(viaEnv.ping());
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(ms).toBeLessThan(DEADLINE_MS + SLACK_MS);
    } finally {
      fake.resume();
      if (before === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("withSignal ends one call when the caller's signal fires, before the deadline", async () => {
    const slow = DeadlineKubeConfig.from(fake.kubeConfig(NAMESPACE), { requestTimeoutMs: 60_000 });
    const core = slow.makeApiClient(CoreV1Api);
    fake.hang();
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      const { err, ms } = await timed(
        core.listNamespacedPod({ namespace: NAMESPACE }, withSignal(ac.signal)),
      );
      expect(ms).toBeLessThan(200 + SLACK_MS);
      const mapped = toCoreError(err, "list pods");
      expect(mapped).toBeInstanceOf(BackendError);
      expect(mapped.message).toMatch(/cancelled/);
    } finally {
      fake.resume();
    }
  });
});
