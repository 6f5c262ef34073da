import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecRequest } from "@code-interpreter/core";
import { cleanup, docker, makeBackend, plainExec, sessionReq, staged, track } from "./helpers.js";

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

afterAll(async () => {
  await backend.close();
  await cleanup();
});

describe("a session container", () => {
  let id: string;
  const payload = Buffer.concat([Buffer.from("hello\n"), randomBytes(4096)]);

  beforeAll(async () => {
    const s = await backend.createSession(sessionReq({ files: [staged("data/in.bin", payload)] }));
    id = track(s.id);
    expect(s.status).toBe("running");
  });

  it("is running under its name with both identity labels", async () => {
    const info = await docker.getContainer(id).inspect();
    expect(info.Name).toBe(`/${id}`);
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels.app).toBe("code-interpreter");
    expect(info.Config.Labels.component).toBe("session");
  });

  it("has the staged file with exactly its bytes", async () => {
    const r = await plainExec(id, ["cat", "/workspace/data/in.bin"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.equals(payload)).toBe(true);
  });

  it("runs code as 65532 without network, privileges or a writable root", async () => {
    expect((await plainExec(id, ["id", "-u"])).stdout.toString().trim()).toBe("65532");
    const info = await docker.getContainer(id).inspect();
    const hc = info.HostConfig;
    expect(hc.NetworkMode).toBe("none");
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.CapDrop).toEqual(["ALL"]);
    expect(hc.SecurityOpt).toContain("no-new-privileges");
    expect(hc.PidsLimit).toBe(64);
    expect(hc.Memory).toBe(128 * 1024 * 1024);
    expect(hc.MemorySwap).toBe(128 * 1024 * 1024);
    expect(hc.IpcMode).toBe("private");

    const net = await backend.execInSession(
      id,
      py(
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('failed', e.errno)",
      ),
    );
    expect(net.stdout).toMatch(/^failed/);

    const etc = await backend.execInSession(id, sh("touch /etc/x"));
    expect(etc.exitCode).not.toBe(0);
    expect(etc.stderr).toMatch(/Read-only file system/);

    const status = await backend.execInSession(id, sh("grep -E '^(CapEff|NoNewPrivs):' /proc/self/status"));
    expect(status.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(status.stdout).toMatch(/NoNewPrivs:\s+1/);
  });

  it("cannot write its own state file (root-owned)", async () => {
    const r = await backend.execInSession(id, sh("echo '{}' > /run/code-interpreter/state.json"));
    expect(r.exitCode).not.toBe(0);
  });

  it("stops a fork bomb at the pids limit", async () => {
    const r = await backend.execInSession(
      id,
      py(
        [
          "import os, signal, time",
          "pids = []",
          "try:",
          "    for i in range(500):",
          "        pid = os.fork()",
          "        if pid == 0:",
          "            time.sleep(30)",
          "            os._exit(0)",
          "        pids.append(pid)",
          "    print('unlimited', len(pids))",
          "except OSError as e:",
          "    print('blocked', len(pids))",
          "for p in pids:",
          "    os.kill(p, signal.SIGKILL)",
          "for p in pids:",
          "    os.waitpid(p, 0)",
        ].join("\n"),
      ),
    );
    expect(r.stdout).toMatch(/^blocked \d+/);
    expect(Number(r.stdout.split(" ")[1])).toBeLessThan(64);
  });

  it("kills a program that allocates past the memory limit; the session survives", async () => {
    const r = await backend.execInSession(id, py("x = bytearray(512 * 1024 * 1024)\nprint('allocated')"));
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain("allocated");
    const next = await backend.execInSession(id, py("print('alive')"));
    expect(next.stdout).toBe("alive\n");
  });
});
