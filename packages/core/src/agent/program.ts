/**
 * The bytes and the command line of a session's relay: the agent's bundle (with workspace.py's
 * and runner.py's sources as WORKSPACE_SRC and RUNNER_SRC: the agent reuses their file
 * operations, snapshot and collector) run through bootstrap.py, its source first on the exec's
 * stdin, then the frames.
 */
import { RUNNER_BOOTSTRAP_PY, RUNNER_PY, WORKSPACE_PY, readPythonSource } from "../executor-scripts.js";

const AGENT_IMPORT = /^from agent_\w+ import (?:\([^)]*\)|.*)$/gm;

/**
 * The agent is several files (python/agent*.py) sent as one program: the parts agent.py's
 * `BUNDLE = (...)` names, in that order, then agent.py, each without its `from agent_* import`
 * lines (the parts import each other's names only for pyflakes and pytest). The tests'
 * conftest.py builds the same bundle.
 */
export function agentBundle(read: (name: string) => string = readPythonSource): string {
  const main = read("agent.py");
  const list = /^BUNDLE = \(([^)]*)\)/m.exec(main);
  if (!list?.[1]) throw new Error("agent.py has no BUNDLE");
  const names = [...list[1].matchAll(/"([\w.]+)"/g)].map((m) => m[1] as string);
  return [...names.map(read), main].map((src) => src.replace(AGENT_IMPORT, "")).join("\n");
}

const AGENT_PY_SOURCE = agentBundle();

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
