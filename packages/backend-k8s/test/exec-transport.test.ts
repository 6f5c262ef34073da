/**
 * The exec transport over both channel protocols a cluster may negotiate: v5 (clusters >=
 * 1.30, what client-node offers first) with the close-stream frame, and v4 (older clusters,
 * forced here by a fake that speaks only v4). Same commands, same answers; only v5 can give
 * a command EOF on stdin.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execCapture, runCode } from "@code-interpreter/core/backend-kit";
import { EXEC_V5_PROTOCOL, PodExecTransport } from "../src/index.js";
import { EXEC_V4, EXEC_V5, type FakeApiServer } from "./fake-apiserver/server.js";
import { NAMESPACE, makeBackend, startFake } from "./helpers.js";

const req = { files: [], ttlSeconds: 600, idleTimeoutSeconds: null, metadata: {}, owner: null };

describe.each([
  { protocol: EXEC_V5, serverSpeaks: [EXEC_V5, EXEC_V4] },
  { protocol: EXEC_V4, serverSpeaks: [EXEC_V4] },
])("exec over $protocol", ({ protocol, serverSpeaks }) => {
  let fake: FakeApiServer;
  let transport: PodExecTransport;
  let pod: string;
  beforeAll(async () => {
    fake = await startFake({ execProtocols: serverSpeaks });
    const backend = makeBackend(fake);
    pod = (await backend.createSession(req)).id;
    transport = new PodExecTransport(fake.kubeConfig(NAMESPACE), NAMESPACE, pod);
  });
  afterAll(async () => {
    await fake?.stop();
  });

  it("negotiates the newest protocol both sides speak", async () => {
    fake.execProtocolsNegotiated.length = 0;
    const r = await execCapture(transport, ["sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toMatchObject({ stdout: Buffer.from("out\n"), stderr: Buffer.from("err\n"), exitCode: 3 });
    expect(fake.execProtocolsNegotiated).toEqual([protocol]);
  });

  it("carries stdin larger than one frame, byte for byte", async () => {
    const input = Buffer.alloc(700 * 1024);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7) % 251;
    const r = await execCapture(
      transport,
      [
        "python3",
        "-c",
        `import sys, hashlib; print(hashlib.sha256(sys.stdin.buffer.read(${input.length})).hexdigest())`,
      ],
      { stdin: input },
    );
    const { createHash } = await import("node:crypto");
    expect(r.stdout.toString().trim()).toBe(createHash("sha256").update(input).digest("hex"));
    expect(r.exitCode).toBe(0);
  });

  it("runs code through core's runner (length-framed stdin, no EOF needed)", async () => {
    const r = await runCode(
      transport,
      {
        language: "python",
        code: "import sys\nprint(sys.stdin.read().upper())",
        stdin: "abc",
        timeoutMs: 10_000,
        maxOutputBytes: 10_000,
      },
      { cpuSeconds: 10, maxFileBytes: 1_000_000 },
    );
    expect(r).toMatchObject({ stdout: "ABC\n", exitCode: 0, timedOut: false });
  });

  if (protocol === EXEC_V5) {
    it("half-closes stdin with the close-stream frame: a command reading to EOF ends", async () => {
      expect(EXEC_V5_PROTOCOL).toBe(EXEC_V5);
      const r = await execCapture(transport, ["sh", "-c", "cat | wc -c"], { stdin: Buffer.from("12345") });
      expect(r.stdout.toString().trim()).toBe("5");
      expect(r.exitCode).toBe(0);
    });
  } else {
    it("never half-closes stdin (v4 cannot): a command waiting for EOF is ended by its caller", async () => {
      const proc = await transport.exec(["sh", "-c", "cat >/dev/null; echo eof"], {
        stdin: Buffer.from("x"),
      });
      const out: Buffer[] = [];
      proc.stdout.on("data", (b: Buffer) => out.push(b));
      const settled = await Promise.race([
        proc.done.then(
          () => "ended",
          () => "ended",
        ),
        new Promise((r) => setTimeout(() => r("still running"), 1500)),
      ]);
      expect(settled).toBe("still running");
      proc.destroy();
      expect(Buffer.concat(out).toString()).toBe("");
    });
  }
});
