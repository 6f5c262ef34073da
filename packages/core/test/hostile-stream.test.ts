/**
 * Everything that comes out of an executor is hostile: these feed forged and malformed runner
 * streams to runCode through a fake transport and check that no limit depends on the runner.
 */
import { PassThrough, Readable } from "node:stream";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import {
  FrameParser,
  MAX_COLLECTED_FILES,
  MAX_FRAME_BYTES,
  readAll,
  runCode,
  type ExecProcess,
  type ExecRequest,
  type ExecTransport,
} from "./core.js";

const frame = (kind: string, payload: Buffer | string): Buffer => {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.write(kind, 0, "latin1");
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
};
const exitFrame = (code: number | null = 0) =>
  frame("X", JSON.stringify({ exit_code: code, timed_out: false, duration_ms: 5 }));

/** Frames `data` as the runner does: pieces of at most MAX_FRAME_BYTES. */
function framed(kind: string, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += MAX_FRAME_BYTES)
    out.push(frame(kind, data.subarray(i, i + MAX_FRAME_BYTES)));
  return out;
}

/** A transport whose one exec "prints" the given chunks, then exits 0. */
function fakeTransport(
  chunks: Buffer[] | (() => AsyncGenerator<Buffer>),
): ExecTransport & { killed: number } {
  const t = {
    killed: 0,
    exec(): Promise<ExecProcess> {
      const stdout = new PassThrough();
      const src = typeof chunks === "function" ? Readable.from(chunks()) : Readable.from(chunks);
      src.pipe(stdout);
      const done = new Promise<number | null>((resolve) => stdout.on("end", () => resolve(0)));
      const stderr = Readable.from([]);
      return Promise.resolve({ stdout, stderr, done, destroy: () => src.destroy() });
    },
  };
  return t;
}

async function tarOf(
  entries: Array<{ name: string; data?: Buffer; type?: "file" | "symlink" }>,
): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === "symlink") pack.entry({ name: e.name, type: "symlink", linkname: "/etc/passwd" });
    else pack.entry({ name: e.name, size: (e.data ?? Buffer.from("x")).length }, e.data ?? Buffer.from("x"));
  }
  pack.finalize();
  return readAll(pack as unknown as Readable);
}

const req = (extra: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code: "pass",
  timeoutMs: 10_000,
  maxOutputBytes: 1_000_000,
  ...extra,
});

function sinkRecorder() {
  const paths: string[] = [];
  const sink = async (f: { path: string; content: Readable }) => {
    paths.push(f.path);
    await readAll(f.content);
    return `id-${paths.length}`;
  };
  return { paths, sink };
}

async function run(chunks: Buffer[] | (() => AsyncGenerator<Buffer>), extra: Partial<ExecRequest> = {}) {
  const t = fakeTransport(chunks);
  let kills = 0;
  const result = await runCode(t, req(extra), {
    cpuSeconds: 5,
    maxFileBytes: 1024 * 1024,
    kill: () => {
      kills++;
      return Promise.resolve();
    },
  });
  return { result, kills };
}

describe("runCode on a genuine stream", () => {
  it("returns output, files and the exit record", async () => {
    const rec = sinkRecorder();
    const tarBytes = await tarOf([{ name: "a.txt" }, { name: "d/b.bin", data: Buffer.from([0, 1]) }]);
    const { result } = await run(
      [frame("1", "hi\n"), frame("2", "e"), ...framed("F", tarBytes), exitFrame(3)],
      {
        collectFiles: rec.sink,
      },
    );
    expect(result).toMatchObject({ stdout: "hi\n", stderr: "e", exitCode: 3, timedOut: false });
    expect(result.files.map((f) => f.path)).toEqual(["a.txt", "d/b.bin"]);
  });

  it("reassembles frames split at any byte", async () => {
    const whole = Buffer.concat([
      frame("1", "x".repeat(100_000).slice(0, 65536)),
      frame("1", "yz"),
      exitFrame(),
    ]);
    const pieces: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 7) pieces.push(whole.subarray(i, i + 7));
    const { result } = await run(pieces);
    expect(result.stdout).toBe("x".repeat(65536) + "yz");
    expect(result.exitCode).toBe(0);
  });
});

describe("runCode on a forged stream", () => {
  const stopped = /its output stream broke the protocol/;

  it(`rejects more than ${MAX_COLLECTED_FILES} collected files (150 forged)`, async () => {
    const rec = sinkRecorder();
    const entries = Array.from({ length: 150 }, (_, i) => ({ name: `f${i}.txt` }));
    const { result, kills } = await run([...framed("F", await tarOf(entries)), exitFrame()], {
      collectFiles: rec.sink,
    });
    expect(rec.paths.length).toBeLessThanOrEqual(MAX_COLLECTED_FILES);
    expect(result.files).toEqual([]);
    expect(result.exitCode).toBeNull();
    expect(result.stderr).toMatch(stopped);
    expect(kills).toBe(1);
  });

  it.each(["../../x", "/etc/passwd", "a/../../b", "a//b", "a\u0001b"])(
    "rejects a collected file at %j",
    async (name) => {
      const rec = sinkRecorder();
      const { result } = await run([...framed("F", await tarOf([{ name }])), exitFrame()], {
        collectFiles: rec.sink,
      });
      expect(rec.paths).toEqual([]);
      expect(result.files).toEqual([]);
      expect(result.stderr).toMatch(/unsafe path/);
    },
  );

  it("rejects non-regular collected entries and files over the limit", async () => {
    for (const entries of [
      [{ name: "l", type: "symlink" as const }],
      [{ name: "big", data: Buffer.alloc(1024 * 1024 + 1) }],
    ]) {
      const rec = sinkRecorder();
      const { result } = await run([...framed("F", await tarOf(entries)), exitFrame()], {
        collectFiles: rec.sink,
      });
      expect(rec.paths).toEqual([]);
      expect(result.stderr).toMatch(stopped);
    }
  });

  it("rejects files nobody asked for", async () => {
    const { result } = await run([...framed("F", await tarOf([{ name: "a" }])), exitFrame()]);
    expect(result.stderr).toMatch(/none were asked for/);
    expect(result.files).toEqual([]);
  });

  it.each<[string, Buffer[]]>([
    ["a second exit record", [exitFrame(0), exitFrame(1)]],
    ["data after the exit record", [exitFrame(0), frame("1", "late")]],
    ["a malformed exit record", [frame("X", "{not json")]],
    ["an exit record of the wrong shape", [frame("X", JSON.stringify({ exit_code: "0" }))]],
    ["an unknown frame kind", [frame("Z", "x"), exitFrame()]],
    ["a frame longer than the maximum", [frame("1", Buffer.alloc(MAX_FRAME_BYTES + 1)), exitFrame()]],
  ])("stops at %s", async (_, chunks) => {
    const { result, kills } = await run(chunks);
    expect(result.exitCode).toBeNull();
    expect(result.stderr).toMatch(stopped);
    expect(kills).toBe(1);
  });

  it("keeps the output checked before the breach, never the forged exit code", async () => {
    const { result } = await run([frame("1", "real\n"), exitFrame(0), frame("X", "{}")]);
    expect(result.stdout).toBe("real\n");
    expect(result.exitCode).toBeNull();
  });

  it("caps the whole stream", async () => {
    // Output past the forwarding limit is not something the runner sends.
    const { result } = await run(
      async function* () {
        for (let i = 0; i < 10_000; i++) yield frame("1", Buffer.alloc(1000, 0x61));
        yield exitFrame();
      },
      { maxOutputBytes: 1000 },
    );
    expect(result.stderr).toMatch(/longer than/);
    expect(result.stdout.length).toBeLessThanOrEqual(1000 + 20);
  });
});

describe("parsing cost is linear", () => {
  const MB40 = 40 * 1024 * 1024;
  const cpuMs = async (fn: () => Promise<unknown>) => {
    const before = process.cpuUsage();
    await fn();
    const d = process.cpuUsage(before);
    return (d.user + d.system) / 1000;
  };
  const chunked = (total: number, size: number, first: Buffer | null, fill: Buffer) =>
    async function* () {
      if (first) yield first;
      for (let sent = 0; sent < total; sent += size) yield fill.subarray(0, Math.min(size, total - sent));
    };

  it("an unterminated 40 MB frame costs no more than a normal 40 MB output", async () => {
    const out = frame("1", Buffer.alloc(MAX_FRAME_BYTES, 0x61));
    const normal = await cpuMs(async () => {
      const { result } = await run(
        async function* () {
          for (let sent = 0; sent < MB40; sent += MAX_FRAME_BYTES) yield out;
          yield exitFrame();
        },
        { maxOutputBytes: 50 * 1024 * 1024 },
      );
      expect(result.stdout.length).toBe(MB40);
    });
    const head = Buffer.alloc(5);
    head.write("1", 0, "latin1");
    head.writeUInt32BE(0xfffffff0, 1);
    const hostile = await cpuMs(async () => {
      const { result } = await run(chunked(MB40, 65536, head, Buffer.alloc(65536, 0x61)), {
        maxOutputBytes: 50 * 1024 * 1024,
      });
      expect(result.stderr).toMatch(/a frame of/);
    });
    expect(hostile).toBeLessThan(normal * 3 + 200);
  });

  it("FrameParser copies each byte at most once, however the stream is cut", () => {
    const payloads: number[] = [];
    const p = new FrameParser((_, b) => payloads.push(b.length), {
      maxFrameBytes: 65536,
      maxTotalBytes: 1e9,
    });
    const one = frame("1", Buffer.alloc(65536, 1));
    const data = Buffer.concat(Array.from({ length: 160 }, () => one)); // 10 MiB
    const t0 = process.cpuUsage();
    for (let i = 0; i < data.length; i += 3) p.push(data.subarray(i, i + 3));
    const ms = (process.cpuUsage(t0).user + process.cpuUsage(t0).system) / 1000;
    expect(payloads).toEqual(Array.from({ length: 160 }, () => 65536));
    expect(p.violation).toBeNull();
    expect(ms).toBeLessThan(5000);
  });
});
