/** Deadlines, cancellation and hostile answers of the workspace operations (fake transport). */
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  BackendError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  listWorkspace,
  readAll,
  readWorkspaceFile,
  stageFiles,
  type ExecProcess,
  type ExecTransport,
} from "./core.js";

interface Script {
  stdout?: Buffer[];
  stderr?: string;
  /** Exit code; undefined = never exits (a helper stuck on a FIFO). */
  exit?: number;
}

/** A transport whose workspace helper answers `script`; records every command it ran. */
function fake(script: Script) {
  const cmds: string[][] = [];
  const t: ExecTransport = {
    exec(cmd, opts): Promise<ExecProcess> {
      cmds.push(cmd);
      const isKill = cmd.some((a) => a.includes("SIGKILLs the process group"));
      if (opts?.stdin && !Buffer.isBuffer(opts.stdin)) opts.stdin.resume();
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let exit: (c: number | null) => void = () => undefined;
      const done = new Promise<number | null>((r) => (exit = r));
      if (isKill) {
        stdout.end();
        stderr.end();
        exit(0);
      } else {
        for (const b of script.stdout ?? []) stdout.write(b);
        if (script.stderr) stderr.write(script.stderr);
        if (script.exit !== undefined) {
          stdout.end();
          stderr.end();
          setTimeout(() => exit(script.exit as number), 5);
        }
      }
      return Promise.resolve({
        stdout,
        stderr,
        done,
        destroy: () => {
          stdout.destroy();
          stderr.destroy();
          exit(null);
        },
      });
    },
  };
  const kills = () => cmds.filter((c) => c.some((a) => a.includes("SIGKILLs the process group"))).length;
  return { t, cmds, kills };
}

const file = (data: string) => ({
  path: "a.txt",
  size: Buffer.byteLength(data),
  open: () => Promise.resolve(Readable.from([Buffer.from(data)])),
});

describe("workspace operations have deadlines and can be cancelled", () => {
  it("a read that never answers fails at its deadline and kills its helper", async () => {
    const f = fake({});
    const t0 = Date.now();
    await expect(readWorkspaceFile(f.t, "fifo", { timeoutMs: 200 })).rejects.toThrow(/did not finish within/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(f.kills()).toBe(1);
  });

  it("an aborted read ends at once and kills its helper", async () => {
    const f = fake({});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(readWorkspaceFile(f.t, "x", { signal: ac.signal, timeoutMs: 60_000 })).rejects.toThrow(
      /cancelled/,
    );
    expect(f.kills()).toBe(1);
  });

  it("aborting mid-transfer fails the body and kills the helper", async () => {
    const f = fake({ stdout: [Buffer.from("1000\nabc")] });
    const ac = new AbortController();
    const r = await readWorkspaceFile(f.t, "x", { signal: ac.signal });
    ac.abort();
    await expect(readAll(r.content)).rejects.toThrow(/cancelled/);
    await new Promise((r) => setTimeout(r, 20));
    expect(f.kills()).toBe(1);
  });

  it("listing and staging stop at their deadlines too", async () => {
    const f = fake({});
    await expect(listWorkspace(f.t, { timeoutMs: 100 })).rejects.toBeInstanceOf(BackendError);
    await expect(stageFiles(f.t, [file("x")], { timeoutMs: 100 })).rejects.toThrow(/did not finish within/);
    expect(f.kills()).toBe(2);
  });
});

describe("answers of the workspace helper are checked", () => {
  it("maps its exit codes to typed errors", async () => {
    await expect(readWorkspaceFile(fake({ exit: 2 }).t, "x")).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      readWorkspaceFile(fake({ exit: 3, stderr: "not a regular file" }).t, "x"),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(readWorkspaceFile(fake({ exit: 4 }).t, "x")).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(
      stageFiles(fake({ exit: 3, stderr: "d is a symlink" }).t, [file("x")]),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(stageFiles(fake({ exit: 5 }).t, [file("x")])).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(stageFiles(fake({ exit: 1, stderr: "boom" }).t, [file("x")])).rejects.toBeInstanceOf(
      BackendError,
    );
  });

  it("a size header over the limit or malformed is refused", async () => {
    await expect(
      readWorkspaceFile(fake({ stdout: [Buffer.from("999999\n")] }).t, "x", { maxBytes: 10 }),
    ).rejects.toThrow(/bad header/);
    await expect(readWorkspaceFile(fake({ stdout: [Buffer.from("-1\n")] }).t, "x")).rejects.toThrow(
      /bad header/,
    );
    await expect(readWorkspaceFile(fake({ stdout: [Buffer.from("x".repeat(100))] }).t, "x")).rejects.toThrow(
      /bad header/,
    );
  });

  it("an empty file is an empty body", async () => {
    const r = await readWorkspaceFile(fake({ stdout: [Buffer.from("0\n")], exit: 0 }).t, "x");
    expect(r.sizeBytes).toBe(0);
    expect((await readAll(r.content)).length).toBe(0);
  });

  it("the body is exactly the announced size: extra bytes are dropped, a short file fails", async () => {
    const long = await readWorkspaceFile(fake({ stdout: [Buffer.from("3\nabcdef")], exit: 0 }).t, "x");
    expect((await readAll(long.content)).toString()).toBe("abc");
    const short = await readWorkspaceFile(fake({ stdout: [Buffer.from("5\nab")], exit: 0 }).t, "x");
    await expect(readAll(short.content)).rejects.toThrow(/ended early/);
  });

  it("drops listing rows that are malformed or at unsafe paths", async () => {
    const rows = [
      ["a.txt", "file", 3],
      ["../x", "file", 1],
      ["d", "directory", 0],
      ["bad\nname", "file", 1],
      ["e", "socket", 0],
      ["f", "file", -1],
      "junk",
      ["a.txt", "file", 3],
    ];
    const f = fake({ stdout: [Buffer.from(JSON.stringify(rows))], exit: 0 });
    expect(await listWorkspace(f.t)).toEqual([
      { path: "a.txt", kind: "file", sizeBytes: 3 },
      { path: "d", kind: "directory", sizeBytes: 0 },
    ]);
    await expect(listWorkspace(fake({ stdout: [Buffer.from("[[")], exit: 0 }).t)).rejects.toThrow(
      /malformed/,
    );
  });

  it("unsafe paths never reach the executor", async () => {
    const f = fake({ exit: 0 });
    await expect(readWorkspaceFile(f.t, "../etc/passwd")).rejects.toThrow(/unsafe/);
    await expect(stageFiles(f.t, [{ ...file("x"), path: "/abs" }])).rejects.toThrow(/unsafe/);
    expect(f.cmds).toEqual([]);
  });
});
