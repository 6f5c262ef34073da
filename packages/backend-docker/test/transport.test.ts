import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execCapture } from "@code-interpreter/core/backend-kit";
import { DockerExecTransport } from "../src/index.js";
import { cleanup, docker, makeBackend, sessionReq, track } from "./helpers.js";

const backend = makeBackend();
let t: DockerExecTransport;

beforeAll(async () => {
  const s = await backend.createSession(sessionReq());
  track(s.id);
  t = new DockerExecTransport(docker.getContainer(s.id));
});
afterAll(async () => {
  await backend.close();
  await cleanup();
});

describe("DockerExecTransport", () => {
  it("separates stdout and stderr and reports the exit code", async () => {
    const r = await execCapture(t, ["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toEqual({ exitCode: 3, stdout: Buffer.from("out\n"), stderr: Buffer.from("err\n") });
  });

  it("runs every exec as 65532: the transport has no way to ask for root (issue 8, hole 1)", async () => {
    expect((await execCapture(t, ["id", "-u"])).stdout.toString()).toBe("65532\n");
    // @ts-expect-error -- ExecOptions has no user field any more; an extra field changes nothing.
    expect((await execCapture(t, ["id", "-u"], { user: "root" })).stdout.toString()).toBe("65532\n");
  });

  it("half-closes a streamed stdin so the program sees EOF", async () => {
    const chunks = ["a".repeat(100_000), "b".repeat(100_000)];
    const r = await execCapture(t, ["wc", "-c"], { stdin: Readable.from(chunks.map((c) => Buffer.from(c))) });
    expect(r.stdout.toString().trim()).toBe("200000");
  });

  it("destroy() releases the connection of a process that keeps running", async () => {
    const p = await t.exec(["sleep", "30"]);
    const t0 = Date.now();
    p.destroy();
    await p.done;
    expect(Date.now() - t0).toBeLessThan(3000);
    await execCapture(t, ["pkill", "-f", "sleep 30"]).catch(() => undefined);
  });
});
