/**
 * Issue 8, holes 2-5 and the file holes, performed through the public HTTP API on the real
 * Docker engine (the backend-level versions are in backend-docker/test/sandbox.test.ts):
 *
 * - hole 2: code traces / stops PID 1 (the keeper); a session whose code keeps attacking it in
 *   the background still ends at its deadline once no API runs.
 * - hole 3: code writes forged runner frames (150 files, `../../x`, a fake exit record) to every
 *   descriptor it can reach; a hostile 40 MB stream costs the API no more than a normal one and
 *   `/health` keeps answering.
 * - hole 4: a FIFO read answers 4xx at once and leaves no helper; a 50 GB sparse file is 413.
 * - hole 5: filling /workspace gives the writer ENOSPC, and the session lives on.
 * - file holes: PUT through directory symlinks (to /tmp, to the state dir) is refused and
 *   writes nothing; an aborted PUT leaves no partial file.
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { executorLimits, loadConfig, type Config } from "../../src/config.js";
import { createDockerBackend } from "@code-interpreter/backend-docker";
import { LocalFileStore } from "@code-interpreter/files-client";
import {
  apiClient,
  E2E_ENV,
  listenApp,
  requireDockerEngine,
  type ApiClient,
  type RunningHttp,
} from "./support.js";

// Output large enough for the 40 MB runs of hole 3 to reach the API whole.
const config = loadConfig({ ...E2E_ENV, MAX_OUTPUT_BYTES: String(48 << 20) });
const docker = new Dockerode();
let server: RunningHttp;
let api: ApiClient;
let dir: string;
const sessions: string[] = [];

function startServer(c: Config): Promise<RunningHttp> {
  const backend = createDockerBackend({
    docker: new Dockerode(),
    image: c.executorImage,
    limits: executorLimits(c),
    sessionMaxLifetimeSeconds: c.sessionMaxLifetimeSeconds,
    maxFileBytes: c.maxFileSizeBytes,
  });
  const files = new LocalFileStore({ dir, maxFileBytes: c.maxFileSizeBytes, ttlSeconds: 600 });
  return listenApp({ backend, files, config: c });
}

beforeAll(async () => {
  await requireDockerEngine();
  dir = await mkdtemp(join(tmpdir(), "ci-api-e2e-attacks-"));
  server = await startServer(config);
  api = apiClient(server.baseUrl);
});

afterAll(async () => {
  for (const id of sessions)
    await docker
      .getContainer(id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function createSession(
  client: ApiClient,
  ttl: number,
): Promise<{ session_id: string; expires_at: number }> {
  const res = await client("/v1/sessions", { json: { ttl_seconds: ttl } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const s = res.body as { session_id: string; expires_at: number };
  sessions.push(s.session_id);
  return s;
}

async function deleteSession(id: string): Promise<void> {
  const del = await api(`/v1/sessions/${id}`, { method: "DELETE" });
  expect(del.status).toBe(204);
}

interface ExecBody {
  stdout: string;
  stderr: string;
  exit_code: number | null;
  files: { filename?: string; path?: string; file_id?: string }[];
}

async function run(id: string, kind: "execute" | "bash", code: string): Promise<ExecBody> {
  const res = await api(`/v1/sessions/${id}/${kind}`, {
    json: kind === "execute" ? { code, timeout_ms: 30_000 } : { cmd: code, timeout_ms: 30_000 },
  });
  expect(res.status, JSON.stringify(res.body).slice(0, 2000)).toBe(200);
  return res.body as unknown as ExecBody;
}

const expectJson4xx = (res: { status: number; body: { detail?: string } }) => {
  expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(typeof res.body.detail).toBe("string");
};

/** Whether the container is gone or stopped, waiting at most `ms`. */
async function containerEnds(id: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    const running = await docker
      .getContainer(id)
      .inspect()
      .then(
        (info) => info.State?.Running === true,
        () => false,
      );
    if (!running) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Bash that prints "alive" when the file grows within half a second (a background process at work). */
const GROWING = (file: string) =>
  `a=$(stat -c %s ${file}); sleep 0.5; b=$(stat -c %s ${file}); test "$b" -gt "$a" && echo alive`;

const PTRACE = [
  "import ctypes, os",
  "libc = ctypes.CDLL(None, use_errno=True)",
  "def trace(req, pid):",
  "    r = libc.ptrace(req, pid, 0, 0)",
  "    return 'ok' if r == 0 else os.strerror(ctypes.get_errno())",
].join("\n");

describe("hole 2: the keeper cannot be traced or frozen (through HTTP)", { timeout: 120_000 }, () => {
  it("PTRACE_SEIZE / PTRACE_ATTACH of pid 1 fail and SIGSTOP does not stop it", async () => {
    const { session_id: id } = await createSession(api, 120);
    const r = await run(
      id,
      "execute",
      PTRACE +
        "\nprint(trace(0x4206, 1), trace(16, 1))" +
        "\nimport signal, time\ntry:\n    os.kill(1, signal.SIGSTOP)\nexcept OSError as e:\n    print('kill', e.errno)" +
        "\ntime.sleep(0.3)" +
        "\nprint([l.split()[1] for l in open('/proc/1/status') if l.startswith('State:')][0])",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Operation not permitted Operation not permitted\nS\n");
    // The keeper still keeps the session: it answers.
    expect((await run(id, "bash", "echo alive")).stdout).toBe("alive\n");
    await deleteSession(id);
  });

  it("a background attacker on the keeper does not keep the container past its TTL with no API running", async () => {
    const own = await startServer(config);
    const client = apiClient(own.baseUrl);
    let closed = false;
    try {
      const s = await createSession(client, 10);
      const attacker =
        PTRACE +
        "\nimport signal, time\nwhile True:\n    trace(0x4206, 1); trace(16, 1)\n" +
        "    try:\n        os.kill(1, signal.SIGSTOP)\n    except OSError:\n        pass\n" +
        "    open('/tmp/attacking', 'a').write('.')\n    time.sleep(0.05)\n";
      const plant = await client(`/v1/sessions/${s.session_id}/execute`, {
        json: { code: `open('/tmp/attacker.py', 'w').write(${JSON.stringify(attacker)})` },
      });
      expect(plant.status, JSON.stringify(plant.body)).toBe(200);
      const start = await client(`/v1/sessions/${s.session_id}/bash`, {
        json: {
          cmd:
            "setsid nohup python3 /tmp/attacker.py >/dev/null 2>&1 < /dev/null &\n" +
            "for i in $(seq 100); do test -s /tmp/attacking && break; sleep 0.1; done; test -s /tmp/attacking && echo attacking",
        },
      });
      expect(start.status, JSON.stringify(start.body)).toBe(200);
      expect(start.body.stdout).toBe("attacking\n");
      // Still attacking after its call has ended.
      const alive = await client(`/v1/sessions/${s.session_id}/bash`, {
        json: { cmd: GROWING("/tmp/attacking") },
      });
      expect(alive.body.stdout).toBe("alive\n");
      await own.close(); // no API process from here on
      closed = true;
      // The keeper checks at least every 2 s; AutoRemove then takes a moment.
      const deadlineMs = s.expires_at * 1000;
      expect(await containerEnds(s.session_id, Math.max(0, deadlineMs - Date.now()) + 10_000)).toBe(true);
      expect(Date.now()).toBeLessThan(deadlineMs + 10_000);
    } finally {
      if (!closed) await own.close();
    }
  });
});

/** Python that builds a forged runner stream: 150 files (one of them `../../x`), output, exit 0. */
const FORGED_STREAM = [
  "import io, json, struct, tarfile",
  "def frame(kind, payload):",
  "    return kind + struct.pack('>I', len(payload)) + payload",
  "buf = io.BytesIO()",
  "with tarfile.open(fileobj=buf, mode='w') as tf:",
  "    for i in range(150):",
  "        ti = tarfile.TarInfo('../../x' if i == 0 else 'forged-%03d.txt' % i)",
  "        ti.size = 6",
  "        tf.addfile(ti, io.BytesIO(b'forged'))",
  "tar = buf.getvalue()",
  "forged = b''.join(frame(b'F', tar[i:i + 60000]) for i in range(0, len(tar), 60000))",
  "forged += frame(b'1', b'FORGED\\n')",
  "forged += frame(b'X', json.dumps({'exit_code': 0, 'timed_out': False, 'duration_ms': 1}).encode())",
].join("\n");

function expectNoForgedFile(r: ExecBody): void {
  expect(r.files.length).toBeLessThanOrEqual(100);
  for (const f of r.files) {
    const name = f.filename ?? f.path ?? "";
    expect(name).not.toMatch(/forged|\.\.|^\/|^x$/);
  }
}

describe("hole 3: the code cannot forge the runner's output (through HTTP)", { timeout: 180_000 }, () => {
  it("forged frames written to every reachable descriptor are not accepted; the session answers its real output", async () => {
    const { session_id: id } = await createSession(api, 120);
    const r = await run(
      id,
      "execute",
      FORGED_STREAM +
        "\nimport os\nme = os.getpid()\nreached = []\ndenied = 0" +
        "\ntargets = ['/proc/%d/fd/1' % os.getppid()]" +
        "\ntargets += ['/proc/%s/fd/%d' % (p, fd) for p in os.listdir('/proc') if p.isdigit() and int(p) != me for fd in (0, 1, 2)]" +
        "\nfor t in targets:" +
        "\n    try:\n        f = open(t, 'wb', buffering=0); f.write(forged); f.close(); reached.append(t)" +
        "\n    except OSError:\n        denied += 1" +
        // Descriptors this process holds beyond stdio: in a session the code runs inside the
        // resident agent's Python kernel (an in-process interpreter, like a notebook kernel),
        // which holds this cell's report pipe - a pipe made for this cell alone, closed when
        // the cell is answered; only a well-formed report line counts there, garbage is
        // dropped. Writing it can only change what this cell reports about itself. What must hold: no other process's channel is
        // reachable, nothing forged is accepted as output or files, and the next cell's
        // report is its own.
        "\nfor fd in os.listdir('/proc/self/fd'):" +
        "\n    if int(fd) > 2:" +
        "\n        try:\n            os.write(int(fd), forged)" +
        "\n        except OSError:\n            pass" +
        "\nprint('reached', reached, 'denied', denied > 0)" +
        "\nraise SystemExit(5)",
    );
    expect(r.stdout).toBe("reached [] denied True\n");
    expect(r.stdout).not.toContain("FORGED");
    // The real exit code: forged bytes on the cell's own report pipe are not a report.
    expect(r.exit_code).toBe(5);
    expect(r.files).toEqual([]);
    // The session goes on answering with the code's real output.
    const next = await run(id, "execute", "print(2 + 2)");
    expect(next.stdout).toBe("4\n");
    expect(next.exit_code).toBe(0);
    expect(next.files).toEqual([]);
    // Nothing forged reached the file store either.
    const stored = await api("/v1/files");
    expect(stored.status).toBe(200);
    expect(JSON.stringify(stored.body)).not.toMatch(/forged|"x"/);
    await deleteSession(id);
  });

  it("a background process racing each new runner for its output descriptor gets nothing accepted", async () => {
    const { session_id: id } = await createSession(api, 120);
    // Polls /proc for new processes and writes the forged stream into the stdout of any it
    // can open (the runner is non-dumpable from its first statement on; this tries the gap).
    const racer =
      FORGED_STREAM +
      "\nimport os, time\nme = os.getpid()\nwins = 0\ndone = set()\nend = time.time() + 60" +
      "\nwhile time.time() < end:" +
      "\n    for p in os.listdir('/proc'):" +
      "\n        if not p.isdigit() or int(p) == me or p in done:\n            continue" +
      "\n        try:\n            fd = os.open('/proc/%s/fd/1' % p, os.O_WRONLY | os.O_NONBLOCK)" +
      "\n        except OSError:\n            continue" +
      "\n        done.add(p)" +
      "\n        try:\n            os.write(fd, forged); wins += 1; open('/tmp/wins', 'w').write(str(wins))" +
      "\n        except OSError:\n            pass" +
      "\n        os.close(fd)" +
      "\n    open('/tmp/racing', 'a').write('.')" +
      "\n    time.sleep(0.002)\n";
    await run(id, "execute", `open('/tmp/racer.py', 'w').write(${JSON.stringify(racer)})`);
    const racing = await run(
      id,
      "bash",
      "setsid nohup python3 /tmp/racer.py >/dev/null 2>&1 < /dev/null &\n" +
        "for i in $(seq 100); do test -s /tmp/racing && break; sleep 0.1; done; test -s /tmp/racing && echo racing",
    );
    // (The racer writes into this call's own stdout too: the program's output, nothing more.)
    expect(racing.stdout).toContain("racing\n");
    for (let i = 0; i < 6; i++) {
      const r = await run(
        id,
        "execute",
        "open('made.txt', 'w').write('1')\nprint('real')\nraise SystemExit(3)",
      );
      expectNoForgedFile(r);
      if (r.exit_code === null) {
        // The forgery reached the API, which rejected the whole stream.
        expect(r.stderr).toMatch(/broke the protocol/);
        expect(r.files).toEqual([]);
      } else {
        expect(r.exit_code).toBe(3);
        expect(r.stdout).toContain("real\n");
      }
    }
    // Whether the racer won the start-up gap of a runner (it did in every call on the
    // development machine) or not, nothing forged got into the file store.
    expect(JSON.stringify((await api("/v1/files")).body)).not.toMatch(/forged|"x"/);
    await deleteSession(id);
  });

  it("a hostile 40 MB stream costs the API about what a normal 40 MB output does; /health keeps answering", async () => {
    const { session_id: id } = await createSession(api, 300);
    const normal = "import sys\nfor _ in range(40):\n    sys.stdout.write('A' * (1 << 20))";
    // An unterminated frame header claiming 2 GiB, a fake exit record, then 40 MB.
    const hostile =
      "import sys, struct\nw = sys.stdout.buffer.write\n" +
      "w(b'1' + struct.pack('>I', 0x7f7f7f7f))\n" +
      "w(b'X' + struct.pack('>I', 16) + b'{\"exit_code\": 0}')\n" +
      "for _ in range(40):\n    w(b'1\\x7f\\x7f\\x7f\\x7f' + b'A' * ((1 << 20) - 5))";

    async function measure(
      code: string,
    ): Promise<{ cpuMs: number; healthMs: number[]; stdoutBytes: number }> {
      const healthMs: number[] = [];
      let done = false;
      const poll = (async () => {
        while (!done) {
          const t = Date.now();
          const h = await fetch(`${server.baseUrl}/health`);
          await h.arrayBuffer();
          expect(h.status).toBe(200);
          healthMs.push(Date.now() - t);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const before = process.cpuUsage();
      try {
        const r = await run(id, "execute", code);
        expect(r.exit_code).toBe(0);
        const cpu = process.cpuUsage(before);
        return { cpuMs: (cpu.user + cpu.system) / 1000, healthMs, stdoutBytes: r.stdout.length };
      } finally {
        done = true;
        await poll;
      }
    }

    await measure(normal); // warm-up
    const n = await measure(normal);
    const h = await measure(hostile);
    expect(n.stdoutBytes).toBe(40 << 20);
    expect(h.stdoutBytes).toBeGreaterThanOrEqual(40 << 20);
    expect(h.cpuMs, `hostile ${h.cpuMs} ms vs normal ${n.cpuMs} ms of API CPU`).toBeLessThan(
      3 * n.cpuMs + 500,
    );
    for (const m of [n, h]) {
      expect(m.healthMs.length).toBeGreaterThan(0);
      expect(Math.max(...m.healthMs)).toBeLessThan(1000);
    }
    await deleteSession(id);
  });
});

/** Processes in the session (other than the asking one) with `arg` among their arguments. */
async function processesWithArg(id: string, arg: string): Promise<number> {
  const r = await run(
    id,
    "execute",
    "import os\nn = 0\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n        try:\n" +
      `            n += any(a == ${JSON.stringify(arg)}.encode() or a.endswith(b'/' + ${JSON.stringify(arg)}.encode())` +
      " for a in open('/proc/%s/cmdline' % p, 'rb').read().split(b'\\0'))\n" +
      "        except OSError:\n            pass\nprint(n)",
  );
  return Number(r.stdout.trim());
}

describe("hole 4: special and huge files in the workspace (through HTTP)", { timeout: 120_000 }, () => {
  it("GET of a FIFO answers 4xx JSON within a second and leaves no helper behind", async () => {
    const { session_id: id } = await createSession(api, 120);
    await run(id, "bash", "mkfifo /workspace/fifo");
    const t = Date.now();
    const res = await api(`/v1/sessions/${id}/files/fifo`);
    expect(Date.now() - t).toBeLessThan(1000);
    expectJson4xx(res);
    expect(await processesWithArg(id, "fifo")).toBe(0);
    // The session is unharmed.
    const list = await api(`/v1/sessions/${id}/files`);
    expect(list.status).toBe(200);
    await deleteSession(id);
  });

  it("GET of a 50 GB sparse file answers 413 at once", async () => {
    const { session_id: id } = await createSession(api, 120);
    await run(id, "execute", "open('/workspace/sparse', 'wb').truncate(50 * 1024 ** 3)");
    const t = Date.now();
    const res = await api(`/v1/sessions/${id}/files/sparse`);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(res.status, JSON.stringify(res.body)).toBe(413);
    expect(typeof res.body.detail).toBe("string");
    await deleteSession(id);
  });
});

describe("hole 5: filling /workspace (through HTTP)", { timeout: 120_000 }, () => {
  it("gives the writer ENOSPC; the next execute answers and the session is still there", async () => {
    const { session_id: id } = await createSession(api, 120);
    const mb = config.workspaceSizeMb + 16;
    const dd = await run(
      id,
      "bash",
      `dd if=/dev/zero of=/workspace/fill bs=1M count=${mb} 2>&1; echo "exit $?"`,
    );
    expect(dd.stdout).toMatch(/No space left on device/);
    expect(dd.stdout).toMatch(/exit 1\n$/);
    const py = await run(
      id,
      "execute",
      "import errno\ntry:\n    with open('/workspace/more', 'wb') as f:\n        for _ in range(64):\n" +
        "            f.write(b'x' * 1048576); f.flush()\n    print('no error')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])",
    );
    expect(py.stdout).toBe("ENOSPC\n");
    expect((await run(id, "execute", "print('alive')")).stdout).toBe("alive\n");
    expect((await api(`/v1/sessions/${id}`)).status).toBe(200);
    // An upload into the full workspace is refused as too large (413 JSON): never a reset
    // connection, although the API answers before it has read the whole body.
    const put = await api(`/v1/sessions/${id}/files/upload.bin`, {
      method: "PUT",
      body: Buffer.alloc(4 << 20, 7),
    });
    expect(put.status, JSON.stringify(put.body)).toBe(413);
    expect(typeof put.body.detail).toBe("string");
    expect((await run(id, "bash", "ls -a /workspace")).stdout).not.toMatch(/upload/);
    await run(id, "bash", "rm -f /workspace/fill /workspace/more");
    expect((await run(id, "execute", "print('still alive')")).stdout).toBe("still alive\n");
    await deleteSession(id);
  });
});

describe("file holes: writes stay in /workspace and are atomic (through HTTP)", { timeout: 120_000 }, () => {
  it("PUT through a directory symlink to /tmp or to the state dir is 4xx JSON and writes nothing", async () => {
    const { session_id: id } = await createSession(api, 120);
    await run(
      id,
      "bash",
      "ln -sfn /tmp /workspace/tmplink; ln -sfn /run/code-interpreter /workspace/statelink",
    );
    // The listing, and the state file without its activity time: the API's own debounced
    // activity write may land between the two snapshots (it only ever moves lastActiveAt).
    const snapshot = async () => {
      const ls = (await run(id, "bash", "ls -a /tmp /run/code-interpreter")).stdout;
      const raw = (await run(id, "bash", "cat /run/code-interpreter/state.json")).stdout;
      const state = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
      delete state.lastActiveAt;
      return { ls, raw, state };
    };
    // A keepalive writes the state file first, so the snapshots compare like with like.
    expect((await api(`/v1/sessions/${id}/keepalive`, { json: {} })).status).toBe(200);
    const before = await snapshot();
    const forged = Buffer.from('{"expiresAt": 99999999999999}');
    // Small bodies, and bodies larger than what the API has read when it refuses the write.
    for (const body of [forged, Buffer.concat([forged, Buffer.alloc(4 << 20, 0x20)])])
      for (const path of ["tmplink/escaped.txt", "statelink/state.json", "statelink/escaped.txt"]) {
        const res = await api(`/v1/sessions/${id}/files/${path}`, { method: "PUT", body });
        expectJson4xx(res);
      }
    const after = await snapshot();
    expect(after.ls).not.toContain("escaped.txt");
    expect(after.raw).not.toContain("99999999999999");
    expect(after.ls).toBe(before.ls);
    expect(after.state).toEqual(before.state);
    await deleteSession(id);
  });

  it("an aborted PUT leaves no file behind, and an existing file keeps its old content", async () => {
    const { session_id: id } = await createSession(api, 120);
    expect(
      (await api(`/v1/sessions/${id}/files/kept.bin`, { method: "PUT", body: Buffer.from("old") })).status,
    ).toBe(201);
    const listBefore = await api(`/v1/sessions/${id}/files`);
    const lsBefore = await run(id, "bash", "ls -a /workspace");

    const abortPut = (path: string) =>
      new Promise<void>((resolve) => {
        const req = request(`${server.baseUrl}/v1/sessions/${id}/files/${path}`, {
          method: "PUT",
          headers: { "content-type": "application/octet-stream", "content-length": String(4 << 20) },
        });
        req.on("error", () => resolve());
        req.on("response", (res) => {
          res.resume();
          resolve();
        });
        req.write(Buffer.alloc(256 * 1024, 1));
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 500);
      });
    await abortPut("partial.bin");
    await abortPut("kept.bin");

    // Calls on a session are serialised: these run after the aborted writes have ended.
    const lsAfter = await run(id, "bash", "ls -a /workspace");
    expect(lsAfter.stdout).toBe(lsBefore.stdout);
    const listAfter = await api(`/v1/sessions/${id}/files`);
    expect(listAfter.body).toEqual(listBefore.body);
    const kept = await fetch(`${server.baseUrl}/v1/sessions/${id}/files/kept.bin`);
    expect(kept.status).toBe(200);
    expect(await kept.text()).toBe("old");
    await deleteSession(id);
  });
});
