/**
 * Small Python programs the backends run *inside* executor containers/pods through exec. They
 * live as real files in this package's `python/` folder (tested there with pytest, linted with
 * pyflakes) and are read from it once, when this module loads; each is passed whole with
 * `python3 -I -S -c`, so the executor image needs nothing of ours (any image with python3 and
 * bash works) and Docker and Kubernetes get exactly the same bytes. `-I -S`: no working
 * directory or user site on sys.path and no PYTHON* variable honoured, so nothing the code
 * writes (`/workspace/json.py`, a `.pth` file) is ever imported by our helpers.
 *
 * - runner.py (started by bootstrap.py, its source sent on stdin ahead of the request): runs
 *   one program; see the file for its framing. One exec per run, whatever the platform. Its
 *   jobs are split over runner_*.py, shipped with it as one program (RUNNER_PY).
 * - killer.py: argv execId; SIGKILLs the run's process group and every process tagged
 *   CODE_INTERPRETER_EXEC_ID=<execId>.
 * - workspace.py: `list N`, `read PATH MAX`, `write MAX` (a tar on stdin) on /workspace,
 *   never following a symlink, never blocking on a special file, writes atomic.
 * - keeper.py: argv statePath|- maxExpiresAtMs expiresAtMs idleSeconds createdAtMs; PID 1 of
 *   a session: non-dumpable, reaps zombies and exits (ending the container/pod) at the end.
 * - STATE (still inline here): argv statePath read|touch|extend [ms].
 */
import { readFileSync, readdirSync } from "node:fs";
import { Readable } from "node:stream";

export const EXEC_ID_ENV = "CODE_INTERPRETER_EXEC_ID";
export const CONTROL_DIR = "/tmp/.code-interpreter";
/** Root-owned tmpfs (Docker) holding the session's mutable state; read-only for the code. */
export const STATE_DIR = "/run/code-interpreter";
export const STATE_FILE = `${STATE_DIR}/state.json`;

/** The folder of the in-executor programs, shipped with this package (`files` in package.json). */
export const PYTHON_DIR = new URL("../python/", import.meta.url);
const source = (name: string): string => readFileSync(new URL(name, PYTHON_DIR), "utf8");

/**
 * The runner, as ONE program: the runner_*.py files in name order, then runner.py, joined so
 * they share one namespace (each file does one job; see runner.py's docstring).
 */
export const RUNNER_PY = [
  ...readdirSync(PYTHON_DIR)
    .filter((name) => /^runner_\w+\.py$/.test(name))
    .sort(),
  "runner.py",
]
  .map(source)
  .join("\n");
export const RUNNER_BOOTSTRAP_PY = source("bootstrap.py");
export const KILL_PY = source("killer.py");
export const WORKSPACE_PY = source("workspace.py");
export const KEEPER_PY = source("keeper.py");
/** The session's resident agent (its relay, kernel and zygote too): agent.py and the parts its
 * BUNDLE names, bundled by src/agent/program.ts. */
export const readPythonSource = source;
/** The runner's largest frame payload (runner.py MAX_FRAME); anything longer is forged. */
export const MAX_FRAME_BYTES = 1 << 16;
/** Exit codes of workspace.py. */
export const WORKSPACE_EXIT = { missing: 2, refused: 3, tooLarge: 4, noSpace: 5 } as const;

/** Interpreter flags of every helper: isolated from the environment, cwd and site dirs. */
const PY = ["python3", "-I", "-S", "-c"];

const RUNNER_BYTES = Buffer.from(RUNNER_PY, "utf8");
const WORKSPACE_BYTES = Buffer.from(WORKSPACE_PY, "utf8");
const tagged = (id: string): string[] => ["env", `${EXEC_ID_ENV}=${id}`];

/** Command lines for the scripts, identical on every backend. */
export const executorCommands = {
  keeper(args: {
    statePath: string | null;
    maxExpiresAt: number;
    expiresAt: number;
    idleTimeoutSeconds: number | null;
    createdAt: number;
  }): string[] {
    return [
      ...PY,
      KEEPER_PY,
      args.statePath ?? "-",
      String(Math.floor(args.maxExpiresAt)),
      String(Math.floor(args.expiresAt)),
      String(args.idleTimeoutSeconds ?? 0),
      String(Math.floor(args.createdAt)),
    ];
  },
  run(args: {
    execId: string;
    language: "python" | "bash";
    cpuSeconds: number;
    lastLineInteractive: boolean;
    collect: boolean;
    timeoutMs: number;
    forwardLimitBytes: number;
    maxFiles: number;
    maxFileBytes: number;
  }): string[] {
    return [
      ...tagged(args.execId),
      ...PY,
      RUNNER_BOOTSTRAP_PY,
      String(RUNNER_BYTES.length),
      args.language,
      args.execId,
      String(args.cpuSeconds),
      args.lastLineInteractive ? "1" : "0",
      args.collect ? "1" : "0",
      String(Math.max(1, Math.floor(args.timeoutMs))),
      String(args.forwardLimitBytes),
      String(args.maxFiles),
      String(args.maxFileBytes),
    ];
  },
  kill(execId: string): string[] {
    return [...PY, KILL_PY, execId];
  },
  /**
   * workspace.py, tagged with `id` so that kill(id) ends it (deadline, client gone). Its source
   * goes first on stdin (`workspaceInput`), like the runner's.
   */
  workspace(id: string, args: ["list", number] | ["read", string, number] | ["write", number]): string[] {
    const rest = args.map((a) => (typeof a === "number" ? String(Math.floor(a)) : a));
    // The id is an argument too: the helper is non-dumpable, so the killer finds it by it.
    return [...tagged(id), ...PY, RUNNER_BOOTSTRAP_PY, String(WORKSPACE_BYTES.length), id, ...rest];
  },
};

/** The whole stdin of a run: the runner's source (for the bootstrap), then the framed request. */
export function runnerInput(code: string, stdin: string | null | undefined): Buffer {
  return Buffer.concat([RUNNER_BYTES, runnerStdin(code, stdin)]);
}

/** The stdin of a workspace.py exec: its source, then (for `write`) the tar. */
export function workspaceInput(then?: Readable): Readable | Buffer {
  if (!then) return WORKSPACE_BYTES;
  const out = Readable.from(
    (async function* () {
      yield WORKSPACE_BYTES;
      for await (const chunk of then) yield chunk as Buffer;
    })(),
  );
  return out;
}

/** Frames the runner's request: "<codeBytes> <stdinBytes>\n", the code, then the program's stdin. */
export function runnerStdin(code: string, stdin: string | null | undefined): Buffer {
  const body = Buffer.from(code, "utf8");
  const input = Buffer.from(stdin ?? "", "utf8");
  return Buffer.concat([Buffer.from(`${body.length} ${input.length}\n`), body, input]);
}

/** Grace after a timeout for the killed program's output to drain before the stream is cut. */
export const KILL_DRAIN_MS = 1000;
/**
 * The runner enforces the timeout itself; the backend steps in (kill from outside) only if
 * the runner has not reported this long after the deadline (e.g. the code killed it).
 */
export const RUNNER_BACKSTOP_MS = 3000;
/** One-shot executors older than their timeout plus this margin are orphans (API crashed). */
export const EXECUTOR_REAP_MARGIN_MS = 60_000;
/** Cap on files collected from one execution. */
export const MAX_COLLECTED_FILES = 100;
/** Cap on entries in a session file listing. */
export const MAX_LISTED_ENTRIES = 10_000;
