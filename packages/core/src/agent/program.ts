/**
 * The bytes and the command line of a session's relay: agent.py (with workspace.py's and
 * runner.py's sources as WORKSPACE_SRC and RUNNER_SRC: the agent reuses their file
 * operations, snapshot and collector) run through bootstrap.py, its
 * source first on the exec's stdin, then the frames.
 */
import { AGENT_PY_SOURCE, RUNNER_BOOTSTRAP_PY, RUNNER_PY, WORKSPACE_PY } from "../executor-scripts.js";

export interface AgentPaths {
  /** Stands in for /workspace (tests on the host only). */
  workspaceDir: string;
  /** Stands in for /tmp/.code-interpreter (tests on the host only). */
  controlDir: string;
}

function withConstant(src: string, name: string, value: string): string {
  const re = new RegExp(`^${name} = .*$`, "m");
  if (!re.test(src)) throw new Error(`agent.py has no ${name} constant`);
  return src.replace(re, () => `${name} = ${JSON.stringify(value)}`);
}

/** The relay's program. `paths` is for host tests only: executors always use the defaults. */
export function agentProgram(paths?: AgentPaths): Buffer {
  let src = AGENT_PY_SOURCE;
  if (paths) {
    src = withConstant(src, "WS", paths.workspaceDir);
    src = withConstant(src, "CTL", paths.controlDir);
  }
  const prefix = `WORKSPACE_SRC = ${JSON.stringify(WORKSPACE_PY)}\nRUNNER_SRC = ${JSON.stringify(RUNNER_PY)}\n`;
  return Buffer.from(prefix + src, "utf8");
}

/** `python3 -I -S -c <bootstrap> <programBytes> relay`, the one long-lived exec of a channel. */
export function agentRelayCommand(program: Buffer, python = "python3"): string[] {
  return [python, "-I", "-S", "-c", RUNNER_BOOTSTRAP_PY, String(program.length), "relay"];
}
