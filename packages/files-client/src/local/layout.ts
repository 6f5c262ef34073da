/**
 * The local store's directory layout, and the file-system steps every write relies on:
 *
 *   <dir>/<id>.bin    the bytes
 *   <dir>/<id>.json   the metadata (FileMeta plus a format version)
 *   <dir>/.tmp-*      uploads in progress (removed on failure; stale ones by sweep())
 */
import { constants as fsConstants } from "node:fs";
import { open, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { newFileId } from "../names.js";

export const DATA_EXT = ".bin";
export const META_EXT = ".json";
export const TMP_PREFIX = ".tmp-";
export const META_FILE_RE = /^([0-9a-f]{32})\.json$/;
export const DATA_FILE_RE = /^([0-9a-f]{32})\.bin$/;

export function dataPath(dir: string, id: string): string {
  return join(dir, `${id}${DATA_EXT}`);
}

export function metaPath(dir: string, id: string): string {
  return join(dir, `${id}${META_EXT}`);
}

/** A fresh temporary name in the store's directory (so that the final rename is atomic). */
export function tmpPath(dir: string, id: string, kind: string): string {
  return join(dir, `${TMP_PREFIX}${id}-${kind}-${newFileId().slice(0, 8)}`);
}

/** Writes `text` to a temporary file, fsyncs it and renames it to `path`. */
export async function writeAtomic(dir: string, path: string, text: string): Promise<void> {
  const tmp = tmpPath(dir, "meta", "json");
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlinkQuiet(tmp);
    throw err;
  }
}

/** Makes the renames durable; best effort (not every filesystem allows fsync on a directory). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, fsConstants.O_RDONLY);
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // ignore
  }
}

export async function readDirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isEnoent(err)) return [];
    throw err;
  }
}

export function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

export async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // already gone
  }
}
