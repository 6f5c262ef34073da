/** AgentChannel against a forged agent: everything it says is hostile input. */
import { PassThrough, type Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  AgentChannel,
  AgentChannelError,
  AgentFrameParser,
  AgentReplyKind,
  AgentRequestKind,
  encodeAgentFrame,
  type ExecProcess,
  type ExecRequest,
  type ExecTransport,
} from "./core.js";

type Reply = (kind: number, id: number, payload: Buffer) => Buffer[];

/** A transport whose "agent" greets, then answers each request frame with `reply`. */
function forged(reply: Reply, hello = true) {
  let execs = 0;
  const t: ExecTransport = {
    exec(_cmd, opts): Promise<ExecProcess> {
      execs++;
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const stdin = opts?.stdin as Readable;
      let programSeen = false;
      // The first chunk written is the program; frames follow (requests are single frames here).
      stdin.on("data", (b: Buffer) => {
        if (!programSeen) {
          programSeen = true;
          return;
        }
        for (let off = 0; off + 9 <= b.length;) {
          const n = b.readUInt32BE(off);
          const kind = b.readUInt8(off + 4);
          const id = b.readUInt32BE(off + 5);
          for (const f of reply(kind, id, b.subarray(off + 9, off + 9 + n))) stdout.write(f);
          off += 9 + n;
        }
      });
      if (hello) {
        stdout.write(
          encodeAgentFrame(AgentReplyKind.hello, 0, Buffer.from('{"boot_id":"ab12","fresh":true}')),
        );
      }
      const done = new Promise<number | null>((resolve) => stdout.on("close", () => resolve(null)));
      return Promise.resolve({ stdout, stderr, done, destroy: () => stdout.destroy() });
    },
  };
  return { t, execs: () => execs };
}

const req = (more: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code: "x",
  timeoutMs: 200,
  maxOutputBytes: 10,
  ...more,
});
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const ok = { exit_code: 0, timed_out: false, duration_ms: 1 };

describe("AgentChannel against a hostile agent", () => {
  it("a request frame is well formed and the parser is linear over split chunks", () => {
    const frames: Array<[number, number, string]> = [];
    const p = new AgentFrameParser(
      (k, id, payload) => frames.push([k, id, payload.toString()]),
      () => undefined,
    );
    const bytes = Buffer.concat([
      encodeAgentFrame(AgentReplyKind.stdout, 7, Buffer.from("hello")),
      encodeAgentFrame(AgentReplyKind.result, 7, Buffer.from("{}")),
    ]);
    for (const b of bytes) p.push(Buffer.from([b]));
    expect(frames).toEqual([
      [AgentReplyKind.stdout, 7, "hello"],
      [AgentReplyKind.result, 7, "{}"],
    ]);
    expect(() => encodeAgentFrame(AgentRequestKind.chunk, 1, Buffer.alloc((1 << 16) + 1))).toThrow(
      RangeError,
    );
  });

  it("an oversized or unknown frame breaks the channel, never the API", () => {
    const reasons: string[] = [];
    const p = new AgentFrameParser(
      () => undefined,
      (r) => reasons.push(r),
    );
    const head = Buffer.alloc(9);
    head.writeUInt32BE((1 << 16) + 1, 0);
    head.writeUInt8(AgentReplyKind.stdout, 4);
    p.push(head);
    p.push(Buffer.from("more"));
    expect(reasons).toEqual([`a frame of ${(1 << 16) + 1} bytes (at most ${1 << 16})`]);
  });

  it("more output than asked for stops the run with a note and closes the channel", async () => {
    const { t, execs } = forged((kind, id) =>
      kind === AgentRequestKind.python
        ? [
            encodeAgentFrame(AgentReplyKind.stdout, id, Buffer.alloc(100, 120)),
            encodeAgentFrame(AgentReplyKind.result, id, json(ok)),
          ]
        : [],
    );
    const ch = new AgentChannel(t, { maxFileBytes: 100 });
    const r = await ch.run(req());
    expect(r.exitCode).toBeNull();
    expect(r.stderr).toMatch(/broke the protocol \(more stdout than asked for\)/);
    await ch.run(req()).catch(() => undefined);
    expect(execs()).toBe(2);
    ch.close();
  });

  it("files nobody asked for, a malformed result and a second result are violations", async () => {
    for (const bad of [
      (id: number) => [encodeAgentFrame(AgentReplyKind.files, id, Buffer.alloc(512))],
      (id: number) => [
        encodeAgentFrame(
          AgentReplyKind.result,
          id,
          json({ exit_code: -3, timed_out: false, duration_ms: 1 }),
        ),
      ],
      (id: number) => [encodeAgentFrame(AgentReplyKind.meta, id, json({ size: 1 }))],
    ]) {
      const { t } = forged((kind, id) => (kind === AgentRequestKind.python ? bad(id) : []));
      const ch = new AgentChannel(t, { maxFileBytes: 100 });
      const r = await ch.run(req());
      expect(r.stderr).toMatch(/broke the protocol/);
      ch.close();
    }
  });

  it("an agent that never answers hits the deadline (a run ends as timed out)", async () => {
    const { t } = forged(() => []);
    const ch = new AgentChannel(t, { maxFileBytes: 100, runMarginMs: 100, opTimeoutMs: 200 });
    const r = await ch.run(req());
    expect(r).toMatchObject({ timedOut: true, exitCode: null, files: [] });
    expect(r.stderr).toMatch(/did not answer in time/);
    await expect(ch.list()).rejects.toBeInstanceOf(AgentChannelError);
    ch.close();
  });

  it("no hello means no channel", async () => {
    const { t } = forged(() => [], false);
    const ch = new AgentChannel(t, { maxFileBytes: 100, openTimeoutMs: 200 });
    await expect(ch.ping()).rejects.toThrow(/did not answer/);
    ch.close();
  });

  it("listings drop unsafe rows and reads refuse more bytes than announced", async () => {
    const { t } = forged((kind, id) => {
      if (kind === AgentRequestKind.list)
        return [
          encodeAgentFrame(
            AgentReplyKind.data,
            id,
            json([
              ["ok", "file", 1],
              ["../etc", "file", 1],
              ["x", "socket", 0],
            ]),
          ),
          encodeAgentFrame(AgentReplyKind.result, id, json({ count: 3 })),
        ];
      if (kind === AgentRequestKind.read)
        return [
          encodeAgentFrame(AgentReplyKind.meta, id, json({ size: 2 })),
          encodeAgentFrame(AgentReplyKind.data, id, Buffer.from("abc")),
        ];
      return [];
    });
    const ch = new AgentChannel(t, { maxFileBytes: 100 });
    expect(await ch.list()).toEqual([{ path: "ok", kind: "file", sizeBytes: 1 }]);
    const f = await ch.read("a");
    await expect(
      (async () => {
        for await (const _ of f.content) void _;
      })(),
    ).rejects.toThrow(/more bytes than announced/);
    ch.close();
  });
});
