/** Listing /workspace through workspace.py `list`; every row checked. */
import { randomUUID } from "node:crypto";
import type { WorkspaceEntry } from "../backend.js";
import { BackendError } from "../errors.js";
import { MAX_LISTED_ENTRIES, executorCommands, workspaceInput } from "../executor-scripts.js";
import { isSafeWorkspacePath } from "../paths.js";
import { capture, type CapturedExec, type ExecTransport } from "./transport.js";
import {
  WORKSPACE_LIST_TIMEOUT_MS,
  watchHelper,
  workspaceError,
  type WorkspaceOpOptions,
} from "./workspace-helper.js";

/** A listing row as workspace.py prints it; anything else is dropped. */
function listingRow(v: unknown): WorkspaceEntry | null {
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [path, kind, size] = v as [unknown, unknown, unknown];
  if (!isSafeWorkspacePath(path)) return null;
  if (kind !== "file" && kind !== "directory") return null;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return null;
  return { path, kind, sizeBytes: kind === "directory" ? 0 : size };
}

/** Lists /workspace (files and directories, sorted by path), within a deadline. */
export async function listWorkspace(
  t: ExecTransport,
  opts: WorkspaceOpOptions = {},
): Promise<WorkspaceEntry[]> {
  const id = randomUUID();
  const proc = await t.exec(executorCommands.workspace(id, ["list", MAX_LISTED_ENTRIES]), {
    stdin: workspaceInput(),
  });
  let onStop: (e: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (onStop = reject));
  stopped.catch(() => undefined);
  const release = watchHelper(t, id, proc, "listing /workspace", opts, WORKSPACE_LIST_TIMEOUT_MS, onStop);
  let r: CapturedExec;
  try {
    // Paths are at most 1 KiB, rows a few bytes more: 10 000 rows fit in 12 MiB.
    r = await Promise.race([capture(proc, 12 * 1024 * 1024), stopped]);
  } finally {
    release();
  }
  if (r.exitCode !== 0) throw workspaceError(r.exitCode, r.stderr, "listing /workspace");
  let rows: unknown;
  try {
    rows = JSON.parse(r.stdout.toString("utf8") || "[]");
  } catch {
    throw new BackendError("listing /workspace failed: the listing is malformed");
  }
  if (!Array.isArray(rows)) throw new BackendError("listing /workspace failed: the listing is malformed");
  const entries: WorkspaceEntry[] = [];
  const seen = new Set<string>();
  for (const row of rows.slice(0, MAX_LISTED_ENTRIES)) {
    const e = listingRow(row);
    if (e && !seen.has(e.path)) {
      seen.add(e.path);
      entries.push(e);
    }
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
