/** A stored file's metadata: its JSON format on disk, expiry and owner visibility. */
import { readFile } from "node:fs/promises";
import type { FileMeta } from "../types.js";
import { isEnoent, metaPath, writeAtomic } from "./layout.js";

const META_VERSION = 1;

interface StoredMeta extends FileMeta {
  version: number;
}

/** Writes the metadata atomically: from then on the file exists. */
export function writeMeta(dir: string, meta: FileMeta): Promise<void> {
  return writeAtomic(dir, metaPath(dir, meta.fileId), JSON.stringify({ version: META_VERSION, ...meta }));
}

/** The metadata, or null when missing or unreadable. Only ever called with a valid id. */
export async function readMeta(dir: string, id: string): Promise<FileMeta | null> {
  let text: string;
  try {
    text = await readFile(metaPath(dir, id), "utf8");
  } catch (err) {
    if (isEnoent(err)) return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<StoredMeta>;
    if (
      v.fileId !== id ||
      typeof v.filename !== "string" ||
      typeof v.sizeBytes !== "number" ||
      typeof v.uploadTime !== "number" ||
      !(v.owner === null || typeof v.owner === "string")
    ) {
      return null;
    }
    return {
      fileId: id,
      filename: v.filename,
      sizeBytes: v.sizeBytes,
      uploadTime: v.uploadTime,
      owner: v.owner,
    };
  } catch {
    return null;
  }
}

export function isExpired(meta: FileMeta, ttlSeconds: number, nowMs: number): boolean {
  return nowMs >= (meta.uploadTime + ttlSeconds) * 1000;
}

/** `undefined` sees every file; `null` or a tag sees only files with exactly that owner. */
export function ownerMatches(meta: FileMeta, owner: string | null | undefined): boolean {
  return owner === undefined || (meta.owner ?? null) === owner;
}
