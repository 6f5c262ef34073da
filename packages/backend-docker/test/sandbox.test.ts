/**
 * Attacks from inside a session on what keeps it in bounds (issue 8, holes 2-5 and the file
 * holes), on the real engine: each test does what a hostile program would and checks it fails.
 * The whole suite runs twice: on a session created cold, and on one claimed from the warm pool
 * (issue 10: a claimed session is hardened exactly as a cold one).
 */
import { Readable } from "node:stream";
import { buffer as readAll } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConflictError, NotFoundError, PayloadTooLargeError, type ExecRequest } from "@code-interpreter/core";
import { stageFiles } from "@code-interpreter/core/backend-kit";
import { DockerExecTransport } from "../src/index.js";
import type { DockerBackend } from "../src/index.js";
import {
  cleanup,
  docker,
  gone,
  LIMITS,
  makeBackend,
  makePooledBackend,
  poolReady,
  sessionReq,
  staged,
  track,
} from "./helpers.js";

const py = (code: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  language: "python",
  code,
  timeoutMs: 20_000,
  maxOutputBytes: 100_000,
  ...extra,
});
const sh = (code: string, extra: Partial<ExecRequest> = {}): ExecRequest => ({
  ...py(code, extra),
  language: "bash",
});

const PTRACE = [
  "import ctypes, os",
  "libc = ctypes.CDLL(None, use_errno=True)",
  "def trace(req, pid):",
  "    r = libc.ptrace(req, pid, 0, 0)",
  "    return 'ok' if r == 0 else os.strerror(ctypes.get_errno())",
].join("\n");

interface Mode {
  name: string;
  /** A backend whose next session create takes this mode's path. */
  make(): Promise<DockerBackend>;
  /** Checks that the backend's last create took this mode's path. */
  claimed(b: DockerBackend): void;
}

const pooledProbes = new WeakMap<DockerBackend, ReturnType<typeof makePooledBackend>["probe"]>();
const MODES: Mode[] = [
  { name: "a cold session", make: async () => makeBackend(), claimed: () => undefined },
  {
    name: "a session claimed from the warm pool",
    make: async () => {
      const { backend, probe } = makePooledBackend(1);
      pooledProbes.set(backend, probe);
      await poolReady(backend, 1);
      return backend;
    },
    claimed: (b) => expect(pooledProbes.get(b)?.claims.at(-1)).toBe("hit:session"),
  },
];

describe.each(MODES)("on $name", (mode) => {
  let backend: DockerBackend;
  let id: string;
  beforeAll(async () => {
    backend = await mode.make();
    id = track((await backend.createSession(sessionReq())).id);
    mode.claimed(backend);
  });
  afterAll(async () => {
    await backend.drainWarmPool();
    await backend.close();
    await cleanup();
  });

  describe("hole 2: the keeper (PID 1) cannot be traced or frozen", () => {
    it("PTRACE_SEIZE/ATTACH of pid 1 fail, its fds are unreadable, SIGSTOP is ignored", async () => {
      const r = await backend.execInSession(
        id,
        py(
          PTRACE +
            "\nprint(trace(0x4206, 1), trace(16, 1))" +
            "\ntry:\n    os.listdir('/proc/1/fd'); print('fds readable')\nexcept PermissionError:\n    print('fds denied')" +
            "\nimport signal, time\nos.kill(1, signal.SIGSTOP); time.sleep(0.3)" +
            "\nprint([l.split()[1] for l in open('/proc/1/status') if l.startswith('State:')][0])",
        ),
      );
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("Operation not permitted Operation not permitted\nfds denied\nS\n");
    });

    it("a session whose code keeps attacking its keeper still ends at its deadline, with no API running", async () => {
      const b = await mode.make();
      const s = await b.createSession(sessionReq({ ttlSeconds: 8 }));
      mode.claimed(b);
      track(s.id);
      // A background attacker: tries to seize and stop PID 1 over and over, past the deadline.
      const attacker =
        PTRACE +
        "\nimport signal, time\nwhile True:\n    trace(0x4206, 1); trace(16, 1)\n" +
        "    try:\n        os.kill(1, signal.SIGSTOP)\n    except OSError:\n        pass\n" +
        "    open('/tmp/attacking', 'a').write('.')\n    time.sleep(0.05)\n";
      await b.execInSession(s.id, py(`open('/tmp/attacker.py', 'w').write(${JSON.stringify(attacker)})`));
      const r = await b.execInSession(
        s.id,
        sh(
          "nohup python3 /tmp/attacker.py >/dev/null 2>&1 &\n" +
            "for i in $(seq 100); do test -s /tmp/attacking && break; sleep 0.1; done; test -s /tmp/attacking && echo attacking",
        ),
      );
      expect(r.stdout).toBe("attacking\n");
      await b.close(); // no API process from here on
      expect(await gone(s.id, 25_000)).toBe(true);
      // The keeper checks at least every 2 s; AutoRemove then takes a moment.
      expect(Date.now()).toBeLessThan(s.expiresAt + 8_000);
    }, 60_000);
  });

  describe("hole 3: the program cannot reach the runner's output channel", () => {
    it("opening /proc/<ppid>/fd/1 or tracing the runner fails; a forged frame has no effect", async () => {
      const code =
        PTRACE +
        "\nimport struct, json\nppid = os.getppid()" +
        "\nforged = b'1' + struct.pack('>I', 7) + b'FORGED\\n'" +
        "\nrec = json.dumps({'exit_code': 0, 'timed_out': False, 'duration_ms': 1}).encode()" +
        "\nforged += b'X' + struct.pack('>I', len(rec)) + rec" +
        "\nfor fd in (1, 0, 2):" +
        "\n    try:\n        f = open('/proc/%d/fd/%d' % (ppid, fd), 'wb', buffering=0); f.write(forged); print('wrote', fd)" +
        "\n    except OSError as e:\n        print('denied', fd, e.errno)" +
        "\nprint(trace(0x4206, ppid))\nraise SystemExit(5)";
      const r = await backend.execInSession(id, py(code, { collectFiles: () => Promise.resolve("x") }));
      expect(r.stdout).toBe("denied 1 13\ndenied 0 13\ndenied 2 13\nOperation not permitted\n");
      expect(r.stdout).not.toContain("FORGED");
      expect(r.exitCode).toBe(5);
    });

    it("a file named with a newline is simply not collected; the run's other files are", async () => {
      const collected: string[] = [];
      const r = await backend.execInSession(
        id,
        py("open('ok.txt', 'w').write('1')\nopen('bad\\nname', 'w').write('2')", {
          collectFiles: (f) => {
            collected.push(f.path);
            return readAll(f.content).then(() => "id");
          },
        }),
      );
      expect(r.stderr).toBe("");
      expect(r.exitCode).toBe(0);
      expect(collected).toEqual(["ok.txt"]);
      await backend.execInSession(id, sh("rm -f /workspace/ok.txt /workspace/bad*"));
    });

    it("the program itself still reads its own /proc/self as usual", async () => {
      const r = await backend.execInSession(
        id,
        py(
          "import os\nprint(b'PATH=' in open('/proc/self/environ','rb').read(), len(os.listdir('/proc/self/fd')) > 2)",
        ),
      );
      expect(r.stdout).toBe("True True\n");
    });

    it("no file the code plants in /workspace is imported by our helpers (-I -S)", async () => {
      const plant =
        "import os\nfor m in ('json', 'struct', 'select', 'signal', 'stat', 'tarfile', 'ctypes', 'errno', 'site'):\n" +
        "    open(m + '.py', 'w').write('open(\"/workspace/pwned-' + m + '\", \"w\").close()\\n')\n" +
        "os.makedirs('.local/lib/python3.11/site-packages', exist_ok=True)\n" +
        "open('.local/lib/python3.11/site-packages/evil.pth', 'w').write('import os; open(\"/workspace/pwned-pth\", \"w\").close()\\n')";
      expect((await backend.execInSession(id, py(plant))).exitCode).toBe(0);
      await backend.execInSession(id, sh("true"));
      await backend.listSessionFiles(id);
      await backend.writeSessionFile(id, "x.txt", { size: 1, content: Readable.from([Buffer.from("x")]) });
      await readAll((await backend.readSessionFile(id, "x.txt")).content);
      const ls = await backend.execInSession(
        id,
        sh("ls /workspace | grep -c pwned- || true; rm -f *.py x.txt; rm -rf .local"),
      );
      // Only the program's own python (site processing, as `python3 -c` does) may run the .pth.
      expect(ls.stdout.trim()).toMatch(/^[01]$/);
      const files = (await backend.listSessionFiles(id)).map((e) => e.path);
      expect(files.filter((p) => p.startsWith("pwned-") && p !== "pwned-pth")).toEqual([]);
    });
  });

  describe("the program's own Python is what `python3 -c` gives it", () => {
    it("imports its modules from the working directory and writes no bytecode there", async () => {
      await backend.writeSessionFile(id, "mymod.py", {
        size: 6,
        content: Readable.from([Buffer.from("V = 7\n")]),
      });
      const collected: string[] = [];
      const r = await backend.execInSession(
        id,
        py("import mymod, sys\nprint(mymod.V, sys.path[0] == '')", {
          collectFiles: (f) => {
            collected.push(f.path);
            return readAll(f.content).then(() => "id");
          },
        }),
      );
      expect(r.stdout).toBe("7 True\n");
      expect(collected).toEqual([]);
      await backend.execInSession(id, sh("rm -f /workspace/mymod.py"));
    });
  });

  describe("hole 4: special files and huge files in the workspace", () => {
    it("a FIFO read answers 404 within a second, and leaves no helper behind", async () => {
      await backend.execInSession(id, sh("mkfifo /workspace/fifo"));
      const t = Date.now();
      await expect(backend.readSessionFile(id, "fifo")).rejects.toBeInstanceOf(NotFoundError);
      expect(Date.now() - t).toBeLessThan(1000 + 500);
      // Every process's command line: no helper is still reading the FIFO.
      const ps = await backend.execInSession(
        id,
        py(
          "import os\nn = 0\nfor p in os.listdir('/proc'):\n    if p.isdigit():\n        try:\n" +
            "            n += b'\\0read\\0fifo\\0' in open('/proc/%s/cmdline' % p, 'rb').read()\n" +
            "        except OSError:\n            pass\nprint(n)",
        ),
      );
      expect(ps.stdout).toBe("0\n");
      await backend.execInSession(id, sh("rm -f /workspace/fifo"));
    });

    it("a 50 GB sparse file is refused as too large (413), not streamed", async () => {
      await backend.execInSession(id, py("open('/workspace/sparse', 'wb').truncate(50 * 1024 ** 3)"));
      await expect(backend.readSessionFile(id, "sparse")).rejects.toBeInstanceOf(PayloadTooLargeError);
      await backend.execInSession(id, sh("rm -f /workspace/sparse"));
    });
  });

  /** How many processes in the session have `arg` as a command-line argument. */
  async function withArg(arg: string): Promise<number> {
    const r = await backend.execInSession(
      id,
      py(
        "import os\nn = 0\nfor p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n        try:\n" +
          `            n += ${JSON.stringify(arg)}.encode() in open('/proc/%s/cmdline' % p, 'rb').read().split(b'\\0')\n` +
          "        except OSError:\n            pass\nprint(n)",
      ),
    );
    return Number(r.stdout.trim());
  }

  describe("hole 4: every workspace operation has a deadline that kills its helper", () => {
    it("a stalled upload ends at its deadline and leaves neither a helper nor a file", async () => {
      const t = new DockerExecTransport(docker.getContainer(id));
      const stalled = new Readable({ read() {} }); // sends nothing, never ends
      stalled.push(Buffer.alloc(1000, 1));
      const started = Date.now();
      await expect(
        stageFiles(t, [{ path: "stalled.bin", size: 1 << 20, open: () => Promise.resolve(stalled) }], {
          timeoutMs: 1000,
        }),
      ).rejects.toThrow(/did not finish within/);
      expect(Date.now() - started).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await withArg("write")).toBe(0);
      const ls = await backend.execInSession(id, sh("ls -a /workspace"));
      expect(ls.stdout).not.toMatch(/stalled|ci-upload/);
    });
  });

  describe("hole 5: filling /workspace", () => {
    it("gives the writer ENOSPC and the session answers the next call", async () => {
      const mb = LIMITS.workspaceSizeMb + 16;
      const r = await backend.execInSession(
        id,
        py(
          `import errno\nf = open('/workspace/fill', 'wb')\ntry:\n    for _ in range(${mb}):\n        f.write(b'x' * 1048576); f.flush()\n` +
            "    print('no error')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])",
        ),
      );
      expect(r.stdout).toBe("ENOSPC\n");
      const next = await backend.execInSession(id, py("print('alive')"));
      expect(next.stdout).toBe("alive\n");
      await expect(
        backend.writeSessionFile(id, "more.bin", {
          size: 1 << 20,
          content: Readable.from([Buffer.alloc(1 << 20)]),
        }),
      ).rejects.toBeInstanceOf(PayloadTooLargeError);
      // Workspace full, and now a program that allocates past the memory limit: the memory
      // killer takes the program (oom_score_adj 1000), not the keeper.
      const hog = await backend.execInSession(
        id,
        py(`b = []\nwhile True:\n    b.append(bytearray(8 << 20))`, { timeoutMs: 30_000 }),
      );
      expect(hog.exitCode).toBe(137);
      await backend.execInSession(id, sh("rm -f /workspace/fill"));
      expect((await backend.execInSession(id, py("print('still alive')"))).stdout).toBe("still alive\n");
    }, 60_000);
  });

  describe("file holes: writes never leave /workspace and are atomic", () => {
    const put = (path: string, data: string) =>
      backend.writeSessionFile(id, path, {
        size: Buffer.byteLength(data),
        content: Readable.from([Buffer.from(data)]),
      });

    it("a PUT through a directory symlink to /tmp or to the state dir is refused (409), nothing written", async () => {
      await backend.execInSession(
        id,
        sh("ln -sfn /tmp /workspace/tmplink; ln -sfn /run/code-interpreter /workspace/statelink"),
      );
      await expect(put("tmplink/escaped.txt", "x")).rejects.toBeInstanceOf(ConflictError);
      await expect(put("statelink/state.json", "{}")).rejects.toBeInstanceOf(ConflictError);
      const r = await backend.execInSession(id, sh("ls /tmp; ls /run/code-interpreter"));
      expect(r.stdout).not.toContain("escaped.txt");
      await backend.execInSession(id, sh("rm -f /workspace/tmplink /workspace/statelink"));
    });

    it("staging at session creation refuses nothing legitimate and a symlinked last component is replaced", async () => {
      await backend.execInSession(id, sh("echo keep > /tmp/target; ln -sfn /tmp/target /workspace/link"));
      await put("link", "new");
      const r = await backend.execInSession(
        id,
        sh("cat /tmp/target; test -L /workspace/link || cat /workspace/link"),
      );
      expect(r.stdout).toBe("keep\nnew");
    });

    it("an aborted upload leaves no file behind (not even a partial one)", async () => {
      await put("upload.bin", "old");
      // The client goes away after 192 KiB of 4 MiB (whatever the speed of the write path).
      let sent = 0;
      const content = new Readable({
        read() {
          if (sent === 3) {
            setTimeout(() => this.destroy(new Error("client went away")), 50);
            return;
          }
          sent++;
          this.push(Buffer.alloc(64 * 1024, 1));
        },
      });
      await expect(backend.writeSessionFile(id, "upload.bin", { size: 4 << 20, content })).rejects.toThrow();
      const r = await backend.execInSession(id, sh("ls -a /workspace; cat /workspace/upload.bin"));
      expect(r.stdout).not.toMatch(/ci-upload/);
      expect(r.stdout.endsWith("old")).toBe(true);
    });

    it("an empty file round-trips", async () => {
      await put("empty.txt", "");
      const f = await backend.readSessionFile(id, "empty.txt");
      expect(f.sizeBytes).toBe(0);
      expect((await readAll(f.content)).length).toBe(0);
    });

    it("writing over a directory is refused (409)", async () => {
      await backend.execInSession(id, sh("mkdir -p /workspace/adir"));
      await expect(put("adir", "x")).rejects.toBeInstanceOf(ConflictError);
    });

    it("a session created with files gets them all, intact", async () => {
      const b = await backend.createSession(
        sessionReq({ files: [staged("a/b/c.txt", "abc"), staged("d.txt", "d")] }),
      );
      track(b.id);
      const r = await backend.execInSession(b.id, sh("cat /workspace/a/b/c.txt /workspace/d.txt"));
      expect(r.stdout).toBe("abcd");
    });
  });
});
