/** Removing what the local store no longer serves: expired files and the leftovers of crashes. */
import { stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import {
  DATA_FILE_RE,
  META_EXT,
  META_FILE_RE,
  TMP_PREFIX,
  dataPath,
  isEnoent,
  metaPath,
  readDirOrEmpty,
  unlinkQuiet,
} from "./layout.js";
import { isExpired, readMeta } from "./metadata.js";

/** Temp files untouched for this long belong to uploads that died (crash, killed process). */
const STALE_TMP_MS = 60 * 60 * 1000;
/** Data files without metadata older than this are leftovers of a crash between the two renames. */
const ORPHAN_DATA_MS = 5 * 60 * 1000;

/**
 * Removes expired files (and files whose metadata cannot be read), stale temporary files and
 * data files without metadata; returns how many files were removed (leftovers not counted).
 */
export async function sweepDir(dir: string, ttlSeconds: number, now: number): Promise<number> {
  const names = await readDirOrEmpty(dir);
  const present = new Set(names);
  let removed = 0;
  for (const name of names) {
    const m = META_FILE_RE.exec(name);
    if (!m) continue;
    const id = m[1]!;
    const meta = await readMeta(dir, id);
    // Unreadable metadata is treated as expired: nothing can ever serve that file.
    if (meta && !isExpired(meta, ttlSeconds, now)) continue;
    try {
      await unlink(metaPath(dir, id));
      removed++;
    } catch (err) {
      if (!isEnoent(err)) throw err;
    }
    await unlinkQuiet(dataPath(dir, id));
  }
  // Leftovers of crashed uploads. Their ages are measured on the real clock, like mtimes.
  const wall = Date.now();
  for (const name of names) {
    const orphan = DATA_FILE_RE.exec(name);
    const isTmp = name.startsWith(TMP_PREFIX);
    if (!isTmp && !(orphan && !present.has(`${orphan[1]}${META_EXT}`))) continue;
    try {
      const st = await stat(join(dir, name));
      if (wall - st.mtimeMs > (isTmp ? STALE_TMP_MS : ORPHAN_DATA_MS)) await unlinkQuiet(join(dir, name));
    } catch {
      // gone already
    }
  }
  return removed;
}
