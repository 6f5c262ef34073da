import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buffer as readAll } from "node:stream/consumers";
import { NotFoundError, TRUNCATION_MARKER, type ExecRequest } from "@code-interpreter/core";
import { cleanup, makeBackend, plainExec, sessionReq, staged, track } from "./helpers.js";

const backend = makeBackend();
const py = (code: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code,
  timeoutMs: 10_000,
  maxOutputBytes: 100_000,
  ...extra,
});
const sh = (code: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  ...py(code, extra),
  language: "bash",
});

let id: string;
const input = randomBytes(64 * 1024);

beforeAll(async () => {
  id = track((await backend.createSession(sessionReq({ files: [staged("in.bin", input)] }))).id);
});
afterAll(async () => {
  await backend.close();
  await cleanup();
});

describe("execInSession", () => {
  it("prints", async () => {
    const r = await backend.execInSession(id, py("print('hi')"));
    expect(r).toMatchObject({ stdout: "hi\n", stderr: "", exitCode: 0, timedOut: false });
  });

  it("shows the value of a last-line expression", async () => {
    const r = await backend.execInSession(id, py("x = 2\nx * 21"));
    expect(r.stdout).toBe("42\n");
  });

  it("reports a traceback on stderr and a non-zero exit", async () => {
    const r = await backend.execInSession(id, py("def f():\n    raise ValueError('boom')\nf()"));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("Traceback");
    expect(r.stderr).toContain("ValueError: boom");
  });

  it("passes stdin to input() and closes it (EOF)", async () => {
    const r = await backend.execInSession(
      id,
      py("import sys\na = input()\nrest = sys.stdin.read()\nprint(repr(a), repr(rest))", {
        stdin: "first\nsecond\nthird\n",
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("'first' 'second\\nthird\\n'\n");
  });

  it("sees EOF at once when there is no stdin", async () => {
    const r = await backend.execInSession(
      id,
      py("import sys\nprint(repr(sys.stdin.read()))", { timeoutMs: 5000 }),
    );
    expect(r).toMatchObject({ stdout: "''\n", timedOut: false, exitCode: 0 });
  });

  it("runs bash", async () => {
    const r = await backend.execInSession(id, sh("echo $((6*7))"));
    expect(r).toMatchObject({ stdout: "42\n", exitCode: 0 });
  });

  it("times out, kills the program and keeps the session", async () => {
    const t0 = Date.now();
    const r = await backend.execInSession(
      id,
      py("print('start', flush=True)\nwhile True: pass", { timeoutMs: 1000 }),
    );
    const took = Date.now() - t0;
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe("start\n");
    expect(took).toBeLessThan(2500);
    const next = await backend.execInSession(id, sh("ps -eo comm= | grep -c python3 || true"));
    expect(next.exitCode).toBe(0);
    // Only the keeper (and the runner of this very call) are left.
    expect(Number(next.stdout.trim())).toBeLessThanOrEqual(2);
  });

  it("cuts large output at maxOutputBytes", async () => {
    const max = 100_000;
    const r = await backend.execInSession(
      id,
      py("import sys\nsys.stdout.write('x' * (5 * 1024 * 1024))", { maxOutputBytes: max }),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout.endsWith(TRUNCATION_MARKER)).toBe(true);
    expect(TRUNCATION_MARKER).toBe("\n...[truncated]");
    expect(Math.abs(r.stdout.length - (max + TRUNCATION_MARKER.length))).toBeLessThanOrEqual(4);
  });

  it("round-trips binary files and collects only new or changed ones", async () => {
    const got: Array<{ path: string; size: number; bytes: Buffer }> = [];
    const r = await backend.execInSession(
      id,
      py("import os, shutil\nos.makedirs('sub', exist_ok=True)\nshutil.copy('in.bin', 'sub/out.bin')", {
        collectFiles: async (f) => {
          got.push({ path: f.path, size: f.size, bytes: await readAll(f.content) });
          return `file-${got.length}`;
        },
      }),
    );
    expect(r.exitCode).toBe(0);
    expect(got.map((g) => g.path)).toEqual(["sub/out.bin"]);
    expect(got[0]!.bytes.equals(input)).toBe(true);
    expect(got[0]!.size).toBe(input.length);
    expect(r.files).toEqual([
      { path: "sub/out.bin", kind: "file", fileId: "file-1", sizeBytes: input.length },
    ]);
  });

  it("keeps files between calls", async () => {
    const w = await backend.execInSession(
      id,
      py("import json\njson.dump({'n': 7}, open('state.json', 'w'))"),
    );
    expect(w.exitCode).toBe(0);
    const r = await backend.execInSession(id, sh("cat state.json"));
    expect(r.stdout).toBe('{"n": 7}');
  });

  it("serializes concurrent calls on one session", async () => {
    const seen: string[][] = [[], []];
    const [a, b] = await Promise.all(
      [0, 1].map((i) =>
        backend.execInSession(
          id,
          py(`import time\nopen('c${i}.txt', 'w').write('x')\ntime.sleep(0.3)`, {
            collectFiles: async (f) => {
              seen[i]!.push(f.path);
              await readAll(f.content);
              return "x";
            },
          }),
        ),
      ),
    );
    expect(a!.exitCode).toBe(0);
    expect(b!.exitCode).toBe(0);
    expect(seen).toEqual([["c0.txt"], ["c1.txt"]]);
  });
});

describe("session files", () => {
  it("writes, reads and lists a file; python sees it", async () => {
    const data = randomBytes(200_000);
    const entry = await backend.writeSessionFile(id, "up/load.bin", {
      size: data.length,
      content: Readable.from([data]),
    });
    expect(entry).toEqual({ path: "up/load.bin", kind: "file", sizeBytes: data.length });

    const r = await backend.execInSession(
      id,
      py("import hashlib\nprint(hashlib.sha256(open('up/load.bin','rb').read()).hexdigest())"),
    );
    const { createHash } = await import("node:crypto");
    expect(r.stdout.trim()).toBe(createHash("sha256").update(data).digest("hex"));

    const f = await backend.readSessionFile(id, "up/load.bin");
    expect(f.sizeBytes).toBe(data.length);
    expect((await readAll(f.content)).equals(data)).toBe(true);

    const list = await backend.listSessionFiles(id);
    expect(list).toContainEqual({ path: "up", kind: "directory", sizeBytes: 0 });
    expect(list).toContainEqual({ path: "up/load.bin", kind: "file", sizeBytes: data.length });
  });

  it("moves large files both ways intact, also to a slow reader", async () => {
    const data = randomBytes(8 * 1024 * 1024);
    await backend.writeSessionFile(id, "big.bin", { size: data.length, content: Readable.from([data]) });
    const f = await backend.readSessionFile(id, "big.bin");
    expect(f.sizeBytes).toBe(data.length);
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of f.content) {
      parts.push(chunk as Buffer);
      if (++n % 16 === 0) await new Promise((r) => setTimeout(r, 5)); // a slow consumer
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it("reports a missing path as NotFoundError", async () => {
    await expect(backend.readSessionFile(id, "nope/missing.txt")).rejects.toBeInstanceOf(NotFoundError);
    await expect(backend.readSessionFile(id, "up")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("rejects unsafe paths", async () => {
    await expect(backend.readSessionFile(id, "../etc/passwd")).rejects.toMatchObject({ status: 422 });
    await expect(
      backend.writeSessionFile(id, "/abs", { size: 1, content: Readable.from([Buffer.from("x")]) }),
    ).rejects.toMatchObject({ status: 422 });
  });

  it("records activity on file calls: at once in the session, soon after in its state file", async () => {
    // Idle timeout 4 s: activity reaches the state file at most every second, off the call's path.
    const s = track((await backend.createSession(sessionReq({ idleTimeoutSeconds: 4 }))).id);
    const readFile = async () =>
      (
        JSON.parse(
          (await plainExec(s, ["cat", "/run/code-interpreter/state.json"])).stdout.toString() || "{}",
        ) as {
          lastActiveAt?: number;
        }
      ).lastActiveAt ?? 0;
    await new Promise((r) => setTimeout(r, 1100));
    const before = (await backend.getSession(s)).lastActiveAt;
    await backend.listSessionFiles(s);
    const seen = (await backend.getSession(s)).lastActiveAt;
    expect(seen).toBeGreaterThan(before);
    const until = Date.now() + 5000;
    while ((await readFile()) < seen && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(await readFile()).toBeGreaterThanOrEqual(seen);
  });
});
