/**
 * The resident agent's channel on a real hardened session container: one relay exec through
 * DockerExecTransport, then every call rides it (no engine request per call).
 */
import { Readable } from "node:stream";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError, type ExecRequest } from "@code-interpreter/core";
import { AgentChannel, AgentChannelError } from "@code-interpreter/core/backend-kit";
import { DockerExecTransport } from "../src/index.js";
import { cleanup, makeBackend, sessionReq, track } from "./helpers.js";

const backend = makeBackend();
/** A client of its own, whose every engine request is counted. */
const counted = new Dockerode();
let engineRequests = 0;
const modem = counted.modem as { dial: (...args: unknown[]) => unknown };
const dial = modem.dial.bind(modem);
modem.dial = (...args: unknown[]) => {
  engineRequests++;
  return dial(...args);
};
let ch: AgentChannel;

const py = (code: string, more: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code,
  timeoutMs: 10_000,
  maxOutputBytes: 10_000,
  ...more,
});

beforeAll(async () => {
  const s = await backend.createSession(sessionReq());
  track(s.id);
  ch = new AgentChannel(new DockerExecTransport(counted.getContainer(s.id)), { maxFileBytes: 1 << 20 });
});
afterAll(async () => {
  ch.close();
  await backend.close();
  await cleanup();
});

describe("the session layer over the agent", () => {
  it("20 session calls after the first make no engine request at all", async () => {
    const layered = makeBackend({ docker: counted });
    try {
      const s = await layered.createSession(sessionReq());
      track(s.id);
      await layered.execInSession(s.id, py("n = 0"));
      await layered.writeSessionFile(s.id, "seen.txt", {
        size: 2,
        content: Readable.from([Buffer.from("ok")]),
      });
      const before = engineRequests;
      for (let i = 0; i < 10; i++)
        expect((await layered.execInSession(s.id, py("n += 1\nn"))).stdout).toBe(`${i + 1}\n`);
      for (let i = 0; i < 5; i++)
        expect((await layered.execInSession(s.id, { ...py("cat seen.txt"), language: "bash" })).stdout).toBe(
          "ok",
        );
      for (let i = 0; i < 3; i++) await layered.listSessionFiles(s.id);
      for (let i = 0; i < 2; i++) {
        const f = await layered.readSessionFile(s.id, "seen.txt");
        f.content.resume();
        await new Promise((r) => f.content.on("end", r));
      }
      expect(engineRequests - before).toBe(0);
    } finally {
      await layered.close();
    }
  });
});

describe("AgentChannel on a Docker session", () => {
  it("keeps Python state between calls", async () => {
    // The session's agent was started when the session was created.
    expect((await ch.hello()).fresh).toBe(false);
    await ch.run(py("x = 5"));
    const r = await ch.run(py("print(x)"));
    expect(r).toMatchObject({ stdout: "5\n", exitCode: 0, timedOut: false });
  });

  it("a timeout interrupts the cell; the state survives", async () => {
    const r = await ch.run(py("while True:\n    pass", { timeoutMs: 1000 }));
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    expect(r.stateReset).toBeUndefined();
    expect((await ch.run(py("print(x)"))).stdout).toBe("5\n");
  });

  it("20 calls make no engine request once the channel is open", async () => {
    await ch.ping();
    const before = engineRequests;
    for (let i = 0; i < 10; i++) expect((await ch.run(py(`x + ${i}`))).stdout).toBe(`${5 + i}\n`);
    for (let i = 0; i < 5; i++)
      expect((await ch.bash({ code: `echo ${i}`, timeoutMs: 5000, maxOutputBytes: 100 })).stdout).toBe(
        `${i}\n`,
      );
    for (let i = 0; i < 5; i++) await ch.list();
    expect(engineRequests - before).toBe(0);
  });

  it("runs as the code's uid, bash in /workspace", async () => {
    const r = await ch.bash({ code: "id -u; pwd", timeoutMs: 5000, maxOutputBytes: 100 });
    expect(r.stdout).toBe("65532\n/workspace\n");
  });

  it("the agent is out of the code's reach: its descriptors cannot be opened", async () => {
    const r = await ch.run(
      py(
        "import os\ntry:\n    os.listdir('/proc/%d/fd' % os.getppid())\n    print('open')\nexcept PermissionError:\n    print('denied')",
      ),
    );
    expect(r.stdout).toBe("denied\n");
  });

  it("a bash timeout kills escaped descendants too", async () => {
    const r = await ch.bash({
      code: "( env -i setsid sh -c 'sleep 1000' & ); sleep 1000",
      timeoutMs: 1000,
      maxOutputBytes: 100,
    });
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    const sleepers = (code: string) =>
      ch.run(
        py(
          `${code}\nimport os, time\ntime.sleep(0.5)\nn = 0\nfor p in os.listdir('/proc'):\n    try:\n        n += p.isdigit() and open('/proc/%s/cmdline' % p, 'rb').read() == b'sleep\\x001000\\x00'\n    except OSError:\n        pass\nprint(n)`,
        ),
      );
    // exactly one sleeper - the probe's own - so the escaped one is gone; then none
    expect((await sleepers("import subprocess\nq = subprocess.Popen(['sleep', '1000'])")).stdout).toBe("1\n");
    expect((await sleepers("q.kill(); q.wait()")).stdout).toBe("0\n");
  });

  it("writes and reads files without following symlinks", async () => {
    await ch.write("d/in.txt", { size: 3, content: Readable.from([Buffer.from("abc")]) });
    expect((await ch.run(py("print(open('d/in.txt').read())"))).stdout).toBe("abc\n");
    await ch.run(py("import os\nos.symlink('/etc/passwd', 'pw')"));
    await expect(ch.read("pw")).rejects.toBeInstanceOf(NotFoundError);
    const f = await ch.read("d/in.txt");
    expect(f.sizeBytes).toBe(3);
  });

  it("a code-killed agent fails that call clearly; the next call gets a fresh agent with state_reset", async () => {
    const killed = await ch.run(py("import os\nos.kill(os.getppid(), 9)")).then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(killed).toBeInstanceOf(AgentChannelError);
    const r = await ch.run(py("print('x' in globals())"));
    expect(r.stdout).toBe("False\n");
    expect(r.stateReset?.reason).toMatch(/restarted/);
    expect((await ch.hello()).fresh).toBe(true);
  });
});
