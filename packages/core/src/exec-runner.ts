/**
 * Execution semantics shared by every backend, on top of one primitive: "run this argv in
 * the container/pod with this stdin" (ExecTransport). Timeouts, kills, output limits,
 * staging tars and file collection behave the same on Docker and Kubernetes because they
 * are implemented once, in `exec/`, one job a file. No platform I/O happens there.
 *
 * | file                          | job                                                              |
 * | ----------------------------- | ---------------------------------------------------------------- |
 * | `exec/transport.ts`           | `ExecTransport`, `execCapture` (bounded capture of a command)    |
 * | `exec/run-code.ts`            | `runCode`: one run through the runner, with every contract rule  |
 * | `exec/runner-stream.ts`       | the runner's framed stream: `FrameParser`, the exit record       |
 * | `exec/extract-files.ts`       | `extractFiles`: collected files checked and handed to the sink   |
 * | `exec/stage-files.ts`         | `stageFiles` (and `exec/pack-files.ts`: the tar it sends)        |
 * | `exec/list-workspace.ts`      | `listWorkspace`                                                  |
 * | `exec/read-workspace-file.ts` | `readWorkspaceFile`                                              |
 * | `exec/workspace-helper.ts`    | deadlines, cancellation and error mapping of workspace.py calls  |
 */
export {
  execCapture,
  type CapturedExec,
  type ExecOptions,
  type ExecProcess,
  type ExecTransport,
} from "./exec/transport.js";
export { runCode, type RunOptions } from "./exec/run-code.js";
export {
  FrameParser,
  ProtocolViolation,
  maxRunnerStreamBytes,
  type FrameLimits,
} from "./exec/runner-stream.js";
export { extractFiles } from "./exec/extract-files.js";
export { TAR_RECORD_BYTES, packFiles } from "./exec/pack-files.js";
export { stageFiles } from "./exec/stage-files.js";
export { listWorkspace } from "./exec/list-workspace.js";
export { readWorkspaceFile } from "./exec/read-workspace-file.js";
export {
  DEFAULT_MAX_FILE_BYTES,
  STAGE_MIN_BYTES_PER_SECOND,
  WORKSPACE_LIST_TIMEOUT_MS,
  WORKSPACE_READ_TIMEOUT_MS,
  WORKSPACE_STAGE_TIMEOUT_MS,
  type WorkspaceOpOptions,
} from "./exec/workspace-helper.js";
