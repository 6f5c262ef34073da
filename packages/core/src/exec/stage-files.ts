/** Staging files into /workspace through workspace.py `write`. */
import { randomUUID } from "node:crypto";
import type { StagedFile } from "../backend.js";
import { BackendError } from "../errors.js";
import { executorCommands, workspaceInput } from "../executor-scripts.js";
import { assertSafeWorkspacePath } from "../paths.js";
import { packFiles } from "./pack-files.js";
import { capture, type ExecTransport } from "./transport.js";
import {
  DEFAULT_MAX_FILE_BYTES,
  STAGE_MIN_BYTES_PER_SECOND,
  WORKSPACE_STAGE_TIMEOUT_MS,
  watchHelper,
  workspaceError,
  type WorkspaceOpOptions,
} from "./workspace-helper.js";

/**
 * Writes the files into /workspace through workspace.py: each path walked without following
 * symlinks, each file written to a temporary name and renamed once complete. Throws
 * ConflictError (a symlink or non-directory on the path), PayloadTooLargeError (the file's
 * limit, or the workspace is full) or BackendError; cleanup is the caller's.
 */
export async function stageFiles(
  t: ExecTransport,
  files: readonly StagedFile[],
  opts: WorkspaceOpOptions & { maxFileBytes?: number } = {},
): Promise<void> {
  if (files.length === 0) return;
  for (const f of files) assertSafeWorkspacePath(f.path);
  const pack = packFiles(files);
  let packError: Error | null = null;
  pack.on("error", (e) => (packError = e));
  const id = randomUUID();
  const maxFileBytes = opts.maxFileBytes ?? Math.max(DEFAULT_MAX_FILE_BYTES, ...files.map((f) => f.size));
  const proc = await t.exec(executorCommands.workspace(id, ["write", maxFileBytes]), {
    stdin: workspaceInput(pack),
  });
  let stopError: Error | null = null;
  let onStop: (e: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => {
    onStop = (e) => {
      stopError = e;
      reject(e);
    };
  });
  stopped.catch(() => undefined);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const defaultMs = WORKSPACE_STAGE_TIMEOUT_MS + Math.ceil((bytes / STAGE_MIN_BYTES_PER_SECOND) * 1000);
  const release = watchHelper(t, id, proc, "staging files", opts, defaultMs, onStop);
  try {
    const r = await Promise.race([capture(proc, 64 * 1024), stopped]);
    if (stopError) throw stopError;
    if (packError) throw new BackendError(`staging files failed: ${(packError as Error).message}`);
    if (r.exitCode !== 0) throw workspaceError(r.exitCode, r.stderr, "writing into /workspace");
  } finally {
    release();
  }
}
