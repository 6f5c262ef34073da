/**
 * Test-only: an ExecTransport that runs the command as a local process (the relay on the
 * host), and a temp dir standing in for the executor's /workspace and control dir.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { ExecProcess, ExecTransport } from "./core.js";
import { agentProgram } from "../src/agent/program.js";

export class LocalTransport implements ExecTransport {
  execs = 0;
  readonly pids: number[] = [];

  exec(cmd: string[], opts: { stdin?: Buffer | Readable | null } = {}): Promise<ExecProcess> {
    this.execs++;
    const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    if (child.pid) this.pids.push(child.pid);
    child.stdin.on("error", () => undefined);
    const stdin = opts.stdin ?? null;
    if (stdin === null) child.stdin.end();
    else if (Buffer.isBuffer(stdin)) child.stdin.end(stdin);
    else stdin.pipe(child.stdin);
    const done = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    return Promise.resolve({
      stdout: child.stdout,
      stderr: child.stderr,
      done,
      destroy: () => {
        child.stdout.destroy();
        child.stderr.destroy();
        child.stdin.destroy();
      },
    });
  }
}

export interface Box {
  root: string;
  ws: string;
  ctl: string;
  program: Buffer;
  cleanup(): void;
}

export function makeBox(): Box {
  const root = mkdtempSync(join(tmpdir(), "ci-agent-"));
  const ws = join(root, "workspace");
  const ctl = join(root, "ctl");
  mkdirSync(ws);
  return {
    root,
    ws,
    ctl,
    program: agentProgram({ workspaceDir: ws, controlDir: ctl }),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
