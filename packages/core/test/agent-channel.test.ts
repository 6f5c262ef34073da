/** AgentChannel against the real agent.py, run on the host as a subprocess (LocalTransport). */
import { readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import {
  AgentChannel,
  AgentChannelError,
  AgentChannels,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
  readAll,
  type ExecRequest,
} from "./core.js";
import { LocalTransport, makeBox, type Box } from "./agent-local.js";

const boxes: Box[] = [];
const channels: AgentChannel[] = [];
const agentPids = new Set<number>();

afterEach(() => {
  for (const c of channels.splice(0)) c.close();
  for (const pid of agentPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  agentPids.clear();
  for (const b of boxes.splice(0)) b.cleanup();
});

function open(box?: Box) {
  const b = box ?? makeBox();
  if (!box) boxes.push(b);
  const t = new LocalTransport();
  const ch = new AgentChannel(t, { maxFileBytes: 1 << 20, program: b.program });
  channels.push(ch);
  return { box: b, t, ch };
}

/** The agent's pid (for cleanup): the relay's hello does not carry it, the socket owner does. */
async function track(ch: AgentChannel): Promise<void> {
  const r = await ch.run(py("import os; print(os.getppid())"));
  agentPids.add(Number(r.stdout.trim()));
}

const py = (code: string, more: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code,
  timeoutMs: 10_000,
  maxOutputBytes: 1 << 20,
  ...more,
});

// Real processes on a small shared machine: CPU-time budgets and multi-MiB transfers take a while.
describe("AgentChannel (host agent)", { timeout: 30_000 }, () => {
  it("keeps Python state across calls and prints a bare last expression", async () => {
    const { ch } = open();
    await track(ch);
    const first = await ch.run(py("x = 5"));
    expect(first).toMatchObject({ stdout: "", exitCode: 0, timedOut: false, files: [] });
    expect(first.stateReset).toBeUndefined();
    expect((await ch.run(py("print(x)"))).stdout).toBe("5\n");
    expect((await ch.run(py("x * 2"))).stdout).toBe("10\n");
    expect((await ch.run(py("x * 2", { lastLineInteractive: false }))).stdout).toBe("");
  });

  it("uses one exec for many calls, and streams output as produced", async () => {
    const { ch, t } = open();
    await track(ch);
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) await ch.run(py(`print(${i})`, { onOutput: (e) => seen.push(e.data) }));
    expect(t.execs).toBe(1);
    expect(seen.join("")).toBe("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
  });

  it("a timeout interrupts the cell and the namespace survives", async () => {
    const { ch } = open();
    await track(ch);
    await ch.run(py("x = 1"));
    const r = await ch.run(py("while True:\n    pass", { timeoutMs: 500 }));
    expect(r).toMatchObject({ timedOut: true, exitCode: null });
    expect(r.stateReset).toBeUndefined();
    expect((await ch.run(py("print(x)"))).stdout).toBe("1\n");
  });

  it("a cell that ignores the interrupt is killed and the result says state_reset", async () => {
    const { ch } = open();
    await track(ch);
    const r = await ch.run(
      py("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", {
        timeoutMs: 300,
      }),
    );
    expect(r.timedOut).toBe(true);
    expect(r.stateReset?.reason).toMatch(/restarted/);
  });

  it("an abort cancels the running cell", async () => {
    const { ch } = open();
    await track(ch);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const r = await ch.run(
      py("import time\nwhile True: time.sleep(0.01)", { timeoutMs: 60_000, signal: ac.signal }),
    );
    expect(r.timedOut).toBe(true);
  });

  it("takes code and stdin larger than one frame", async () => {
    const { ch } = open();
    await track(ch);
    const code = `s = "${"a".repeat(200_000)}"\nimport sys\nprint(len(s), len(sys.stdin.read()))`;
    expect((await ch.run(py(code, { stdin: "b".repeat(300_000) }))).stdout).toBe("200000 300000\n");
  });

  it("caps output at maxOutputBytes with the marker", async () => {
    const { ch } = open();
    await track(ch);
    const r = await ch.run(py("print('x' * 100000)", { maxOutputBytes: 1000 }));
    expect(r.stdout).toBe("x".repeat(1000) + "\n...[truncated]");
  });

  it("runs bash in the workspace and collects the files it writes", async () => {
    const { ch, box } = open();
    await track(ch);
    const stored: Array<{ path: string; body: string }> = [];
    const r = await ch.bash({
      code: "pwd; printf hi > out.txt; cat",
      stdin: "in",
      timeoutMs: 5000,
      maxOutputBytes: 1000,
      collectFiles: async (f) => {
        stored.push({ path: f.path, body: (await readAll(f.content)).toString() });
        return `file-${stored.length}`;
      },
    });
    expect(r.stdout).toBe(`${box.ws}\nin`);
    expect(r.files).toEqual([{ path: "out.txt", kind: "file", fileId: "file-1", sizeBytes: 2 }]);
    expect(stored).toEqual([{ path: "out.txt", body: "hi" }]);
  });

  it("writes, reads, stages and lists files; refuses what it must", async () => {
    const { ch, box } = open();
    await track(ch);
    expect(
      await ch.write("d/a.txt", { size: 5, content: Readable.from([Buffer.from("hel"), Buffer.from("lo")]) }),
    ).toEqual({ path: "d/a.txt", kind: "file", sizeBytes: 5 });
    const f = await ch.read("d/a.txt");
    expect(f.sizeBytes).toBe(5);
    expect((await readAll(f.content)).toString()).toBe("hello");
    await ch.stage([
      { path: "s/1", size: 1, open: () => Promise.resolve(Readable.from([Buffer.from("1")])) },
      { path: "s/2", size: 70_000, open: () => Promise.resolve(Readable.from([Buffer.alloc(70_000, 50)])) },
    ]);
    expect(readFileSync(join(box.ws, "s/2")).length).toBe(70_000);
    expect(await ch.list()).toEqual([
      { path: "d", kind: "directory", sizeBytes: 0 },
      { path: "d/a.txt", kind: "file", sizeBytes: 5 },
      { path: "s", kind: "directory", sizeBytes: 0 },
      { path: "s/1", kind: "file", sizeBytes: 1 },
      { path: "s/2", kind: "file", sizeBytes: 70_000 },
    ]);
    symlinkSync("/etc/passwd", join(box.ws, "pw"));
    writeFileSync(join(box.ws, "big"), Buffer.alloc(100));
    await expect(ch.read("pw")).rejects.toBeInstanceOf(NotFoundError);
    await expect(ch.read("nope")).rejects.toBeInstanceOf(NotFoundError);
    await expect(ch.read("big", 10)).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expect(ch.read("../etc/passwd")).rejects.toBeInstanceOf(ValidationError);
    await expect(
      ch.write("short", { size: 10, content: Readable.from([Buffer.from("abc")]) }),
    ).rejects.toBeInstanceOf(ValidationError);
    await ch.ping();
    expect((await ch.list()).map((e) => e.path)).not.toContain("short");
  });

  it("a CPU-time budget ends a Python cell (state kept) and a bash call", async () => {
    const b = makeBox();
    boxes.push(b);
    const ch = new AgentChannel(new LocalTransport(), {
      maxFileBytes: 1000,
      program: b.program,
      cpuSeconds: 1,
    });
    channels.push(ch);
    await track(ch);
    const r = await ch.run(py("x = 1\nwhile True:\n    pass", { timeoutMs: 20_000 }));
    expect(r).toMatchObject({ exitCode: 1, timedOut: false });
    expect(r.stderr).toMatch(/CPUTimeLimitExceeded/);
    expect((await ch.run(py("x"))).stdout).toBe("1\n");
    const b2 = await ch.bash({ code: "while :; do :; done", timeoutMs: 20_000, maxOutputBytes: 100 });
    expect(b2).toMatchObject({ exitCode: 128 + 24, timedOut: false });
  });

  it("a large upload completes while a large read waits for its reader", async () => {
    const { ch, box } = open();
    await track(ch);
    writeFileSync(join(box.ws, "big.bin"), Buffer.alloc(6 << 20, 7));
    const reading = await ch.read("big.bin", 8 << 20);
    await ch.write("up.bin", { size: 6 << 20, content: Readable.from([Buffer.alloc(6 << 20, 9)]) }, 8 << 20);
    expect((await readAll(reading.content)).length).toBe(6 << 20);
    expect(readFileSync(join(box.ws, "up.bin")).length).toBe(6 << 20);
  });

  it("collects large files through a slow store; a failing store does not wedge the session", async () => {
    const b = makeBox();
    boxes.push(b);
    const ch = new AgentChannel(new LocalTransport(), { maxFileBytes: 4 << 20, program: b.program });
    channels.push(ch);
    await track(ch);
    const sizes: number[] = [];
    const r = await ch.run(
      py("for i in range(3):\n    open('f%d' % i, 'wb').write(b'z' * (3 << 20))", {
        collectFiles: async (f) => {
          await new Promise((res) => setTimeout(res, 200));
          sizes.push((await readAll(f.content)).length);
          return `id-${sizes.length}`;
        },
      }),
    );
    expect(r.files.map((f) => f.path)).toEqual(["f0", "f1", "f2"]);
    expect(sizes).toEqual([3 << 20, 3 << 20, 3 << 20]);
    await expect(
      ch.run(
        py("for i in range(3):\n    open('g%d' % i, 'wb').write(b'y' * (3 << 20))", {
          collectFiles: () => Promise.reject(new Error("store is down")),
        }),
      ),
    ).rejects.toThrow(/collecting output files failed: store is down/);
    expect((await ch.run(py("print('next')"))).stdout).toBe("next\n");
  });

  it("a stalled reader ends its own read at the deadline; the channel and other calls carry on", async () => {
    const b = makeBox();
    boxes.push(b);
    const t = new LocalTransport();
    const ch = new AgentChannel(t, { maxFileBytes: 8 << 20, program: b.program, opTimeoutMs: 1500 });
    channels.push(ch);
    await track(ch);
    writeFileSync(join(b.ws, "big.bin"), Buffer.alloc(4 << 20, 1));
    const f = await ch.read("big.bin");
    const failed = new Promise<Error>((resolve) => f.content.on("error", resolve));
    // a slow but moving call meanwhile, longer than the deadline
    await ch.run(py("import time\nfor i in range(3):\n    time.sleep(0.6)\nprint('done')"));
    expect((await failed).message).toMatch(/the reader took nothing/);
    expect((await ch.run(py("print(1)"))).stdout).toBe("1\n");
    expect(t.execs).toBe(1);
  });

  it("an upload whose source stalls ends itself; the channel carries on", async () => {
    const b = makeBox();
    boxes.push(b);
    const t = new LocalTransport();
    const ch = new AgentChannel(t, { maxFileBytes: 1000, program: b.program, opTimeoutMs: 800 });
    channels.push(ch);
    await track(ch);
    const stalled = new PassThrough();
    stalled.write("abc");
    await expect(ch.write("slow.txt", { size: 10, content: stalled })).rejects.toThrow(/sent nothing for/);
    expect((await ch.list()).map((e) => e.path)).toEqual([]);
    expect(t.execs).toBe(1);
  });

  it("reset empties the namespace", async () => {
    const { ch } = open();
    await track(ch);
    await ch.run(py("x = 1"));
    expect((await ch.reset()).reason).toMatch(/reset/);
    expect((await ch.run(py("print('x' in globals())"))).stdout).toBe("False\n");
  });

  it("a killed agent fails the call clearly; the next one reopens with state_reset", async () => {
    const { ch, t } = open();
    await track(ch);
    await ch.run(py("x = 1"));
    await expect(
      ch.run(py("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")),
    ).rejects.toBeInstanceOf(AgentChannelError);
    const r = await ch.run(py("print('x' in globals())"));
    await track(ch);
    expect(r.stdout).toBe("False\n");
    expect(r.stateReset?.reason).toMatch(/restarted/);
    expect(t.execs).toBe(2);
    expect((await ch.run(py("print(1)"))).stateReset).toBeUndefined();
  });

  it("a dead relay is reopened transparently; the agent and its state stay", async () => {
    const { ch, t } = open();
    await track(ch);
    await ch.run(py("x = 7"));
    process.kill(t.pids[0] as number, "SIGKILL");
    expect(await ch.list()).toEqual([]); // idempotent: retried on a new channel
    process.kill(t.pids[1] as number, "SIGKILL");
    await new Promise((r) => setTimeout(r, 300)); // the channel has noticed: nothing was sent
    const r = await ch.run(py("print(x)"));
    expect(r.stdout).toBe("7\n");
    expect(r.stateReset).toBeUndefined();
    expect(t.execs).toBe(3);
  });

  it("a second cell while one runs is a conflict, not a queue", async () => {
    const { ch, box } = open();
    await track(ch);
    const ac = new AbortController();
    const running = ch.run(py("import time\ntime.sleep(30)", { timeoutMs: 60_000, signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 300));
    await expect(open(box).ch.run(py("1"))).rejects.toBeInstanceOf(ConflictError);
    ac.abort();
    expect((await running).timedOut).toBe(true);
  });

  it("AgentChannels: one channel per session; an idle channel is closed and the state stays", async () => {
    const b = makeBox();
    boxes.push(b);
    const t = new LocalTransport();
    const pool = new AgentChannels(() => t, { maxFileBytes: 1000, program: b.program, idleMs: 60_000 });
    try {
      const ch = pool.get("s1");
      expect(pool.get("s1")).toBe(ch);
      await track(ch);
      await ch.run(py("kept = 3"));
      pool.sweep(Date.now() + 1000);
      expect(pool.size).toBe(1); // not idle long enough
      pool.sweep(Date.now() + 60_000);
      expect(pool.size).toBe(0);
      const again = pool.get("s1");
      expect(again).not.toBe(ch);
      const r = await again.run(py("kept"));
      expect(r.stdout).toBe("3\n");
      expect(r.stateReset).toBeUndefined();
      expect(t.execs).toBe(2);
      // a read whose content is still being taken keeps its channel
      writeFileSync(join(b.ws, "r.txt"), "data");
      const f = await again.read("r.txt");
      pool.sweep(Date.now() + 120_000);
      expect(pool.size).toBe(1);
      expect((await readAll(f.content)).toString()).toBe("data");
      await new Promise((r) => setImmediate(r)); // the stream's close event
      pool.sweep(Date.now() + 120_000);
      expect(pool.size).toBe(0);
    } finally {
      pool.closeAll();
    }
  });

  it("a second channel (another API process) shares the session's state", async () => {
    const { ch, box } = open();
    await track(ch);
    await ch.run(py("shared = 42"));
    const other = open(box).ch;
    expect((await other.hello()).fresh).toBe(false);
    expect((await other.run(py("shared"))).stdout).toBe("42\n");
  });
});
