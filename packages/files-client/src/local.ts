/**
 * LocalFileStore: the embedded default. One directory, two files per upload:
 *
 *   <dir>/<id>.bin    the bytes
 *   <dir>/<id>.json   the metadata (FileMeta plus a format version)
 *   <dir>/.tmp-*      uploads in progress (removed on failure; stale ones by sweep())
 *
 * A file exists once its metadata exists. Both files are written to a temp file in the same
 * directory, fsynced and renamed into place (data first, metadata last), so readers see a
 * complete file or none. Deleting removes the metadata first, so the file disappears at once.
 */
import { constants as fsConstants } from "node:fs";
import { mkdir, open, readFile, readdir, rename, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  BackendUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "@code-interpreter/core";
import { isFileId, newFileId, sanitizeFilename } from "./names.js";
import type { FileMeta, FileStore, PutOptions } from "./types.js";

export interface LocalFileStoreOptions {
  /** Directory holding the files; created (mode 0700) on first use. */
  dir: string;
  /** Largest accepted file in bytes; a file of exactly this size is accepted. */
  maxFileBytes: number;
  /** Files expire this many seconds after upload. */
  ttlSeconds: number;
  /** Clock in unix milliseconds (default Date.now); injected by tests. */
  now?: () => number;
}

const META_VERSION = 1;
const DATA_EXT = ".bin";
const META_EXT = ".json";
const TMP_PREFIX = ".tmp-";
const META_FILE_RE = /^([0-9a-f]{32})\.json$/;
const DATA_FILE_RE = /^([0-9a-f]{32})\.bin$/;
/** Temp files untouched for this long belong to uploads that died (crash, killed process). */
const STALE_TMP_MS = 60 * 60 * 1000;
/** Data files without metadata older than this are leftovers of a crash between the two renames. */
const ORPHAN_DATA_MS = 5 * 60 * 1000;

interface StoredMeta extends FileMeta {
  version: number;
}

export class LocalFileStore implements FileStore {
  readonly dir: string;
  readonly maxFileBytes: number;
  readonly ttlSeconds: number;
  private readonly now: () => number;
  private ready: Promise<void> | null = null;

  constructor(opts: LocalFileStoreOptions) {
    if (!opts.dir) throw new ValidationError("LocalFileStore: dir is required");
    if (!(Number.isSafeInteger(opts.maxFileBytes) && opts.maxFileBytes >= 0)) {
      throw new ValidationError("LocalFileStore: maxFileBytes must be a non-negative integer");
    }
    if (!(Number.isFinite(opts.ttlSeconds) && opts.ttlSeconds > 0)) {
      throw new ValidationError("LocalFileStore: ttlSeconds must be a positive number");
    }
    this.dir = opts.dir;
    this.maxFileBytes = opts.maxFileBytes;
    this.ttlSeconds = opts.ttlSeconds;
    this.now = opts.now ?? Date.now;
  }

  async put(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta> {
    if (opts.sizeHint !== undefined && opts.sizeHint > this.maxFileBytes) throw this.tooLarge();
    if (Buffer.isBuffer(content) && content.length > this.maxFileBytes) throw this.tooLarge();
    // Until reading starts, an 'error' from the source (client gone during our awaits) must not be
    // an unhandled event; the iterator reports it (the stream stays errored) once reading starts.
    const ignoreEarlyError = (): void => undefined;
    if (!Buffer.isBuffer(content)) content.on("error", ignoreEarlyError);
    try {
      return await this.putInner(content, opts);
    } finally {
      if (!Buffer.isBuffer(content)) content.off("error", ignoreEarlyError);
    }
  }

  private async putInner(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta> {
    await this.ensureDir();

    const fileId = newFileId();
    const tmpData = this.tmpPath(fileId, "data");
    let fh: FileHandle | null = await open(tmpData, "wx", 0o600);
    let renamed = false;
    try {
      const sizeBytes = await this.writeLimited(fh, content);
      await fh.sync();
      await fh.close();
      fh = null;

      const meta: FileMeta = {
        fileId,
        filename: sanitizeFilename(opts.filename),
        sizeBytes,
        uploadTime: this.now() / 1000,
        owner: opts.owner ?? null,
      };
      await rename(tmpData, this.dataPath(fileId));
      renamed = true;
      await this.writeAtomic(this.metaPath(fileId), JSON.stringify({ version: META_VERSION, ...meta }));
      await this.syncDir();
      return meta;
    } catch (err) {
      if (fh) await fh.close().catch(() => undefined);
      await unlinkQuiet(renamed ? this.dataPath(fileId) : tmpData);
      throw err;
    }
  }

  async stat(fileId: string, owner?: string | null): Promise<FileMeta> {
    return this.visibleMeta(fileId, owner);
  }

  async open(fileId: string, owner?: string | null): Promise<{ meta: FileMeta; content: Readable }> {
    const meta = await this.visibleMeta(fileId, owner);
    let fh: FileHandle;
    try {
      // Holding the descriptor keeps the bytes readable even if the file is deleted or swept now.
      fh = await open(this.dataPath(fileId), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      if (isEnoent(err)) throw notFound(fileId);
      throw err;
    }
    return { meta, content: fh.createReadStream({ autoClose: true }) };
  }

  async list(owner?: string | null): Promise<FileMeta[]> {
    const names = await this.readDirOrEmpty();
    const now = this.now();
    const out: FileMeta[] = [];
    await Promise.all(
      names.map(async (name) => {
        const m = META_FILE_RE.exec(name);
        if (!m) return;
        const meta = await this.readMeta(m[1]!);
        if (meta && !this.isExpired(meta, now) && ownerMatches(meta, owner)) out.push(meta);
      }),
    );
    return out.sort((a, b) => a.uploadTime - b.uploadTime || a.fileId.localeCompare(b.fileId));
  }

  async delete(fileId: string, owner?: string | null): Promise<void> {
    await this.visibleMeta(fileId, owner);
    try {
      await unlink(this.metaPath(fileId));
    } catch (err) {
      // A concurrent delete or sweep won the race.
      if (isEnoent(err)) throw notFound(fileId);
      throw err;
    }
    await unlinkQuiet(this.dataPath(fileId));
  }

  async sweep(now: number = this.now()): Promise<number> {
    const names = await this.readDirOrEmpty();
    const present = new Set(names);
    let removed = 0;
    for (const name of names) {
      const m = META_FILE_RE.exec(name);
      if (!m) continue;
      const id = m[1]!;
      const meta = await this.readMeta(id);
      // Unreadable metadata is treated as expired: nothing can ever serve that file.
      if (meta && !this.isExpired(meta, now)) continue;
      try {
        await unlink(this.metaPath(id));
        removed++;
      } catch (err) {
        if (!isEnoent(err)) throw err;
      }
      await unlinkQuiet(this.dataPath(id));
    }
    // Leftovers of crashed uploads. Their ages are measured on the real clock, like mtimes.
    const wall = Date.now();
    for (const name of names) {
      const orphan = DATA_FILE_RE.exec(name);
      const isTmp = name.startsWith(TMP_PREFIX);
      if (!isTmp && !(orphan && !present.has(`${orphan[1]}${META_EXT}`))) continue;
      try {
        const st = await stat(join(this.dir, name));
        if (wall - st.mtimeMs > (isTmp ? STALE_TMP_MS : ORPHAN_DATA_MS))
          await unlinkQuiet(join(this.dir, name));
      } catch {
        // gone already
      }
    }
    return removed;
  }

  async ping(): Promise<void> {
    try {
      await this.ensureDir();
      const probe = this.tmpPath(newFileId(), "ping");
      const fh = await open(probe, "wx", 0o600);
      await fh.close();
      await unlink(probe);
    } catch (err) {
      throw new BackendUnavailableError(`file storage directory ${this.dir} is not writable`, { cause: err });
    }
  }

  // ---- internals ----

  private dataPath(id: string): string {
    return join(this.dir, `${id}${DATA_EXT}`);
  }

  private metaPath(id: string): string {
    return join(this.dir, `${id}${META_EXT}`);
  }

  private tmpPath(id: string, kind: string): string {
    return join(this.dir, `${TMP_PREFIX}${id}-${kind}-${newFileId().slice(0, 8)}`);
  }

  private tooLarge(): PayloadTooLargeError {
    return new PayloadTooLargeError(`file is larger than the limit of ${this.maxFileBytes} bytes`);
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (err: unknown) => {
        this.ready = null;
        throw err;
      },
    );
    return this.ready;
  }

  /**
   * Copies content into fh, stopping with PayloadTooLargeError as soon as more than
   * maxFileBytes arrive. Reads one chunk at a time (bounded memory). The caller keeps
   * ownership of the stream: on error it is left undestroyed, to drain or destroy.
   */
  private async writeLimited(fh: FileHandle, content: Readable | Buffer): Promise<number> {
    if (Buffer.isBuffer(content)) {
      if (content.length > 0) await fh.write(content);
      return content.length;
    }
    let size = 0;
    for await (const chunk of content.iterator({ destroyOnReturn: false })) {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
      size += buf.length;
      if (size > this.maxFileBytes) throw this.tooLarge();
      if (buf.length > 0) await fh.write(buf);
    }
    return size;
  }

  private async writeAtomic(path: string, text: string): Promise<void> {
    const tmp = this.tmpPath("meta", "json");
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
  private async syncDir(): Promise<void> {
    try {
      const d = await open(this.dir, fsConstants.O_RDONLY);
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      // ignore
    }
  }

  private async readDirOrEmpty(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (err) {
      if (isEnoent(err)) return [];
      throw err;
    }
  }

  /** The metadata, or null when missing or unreadable. Only ever called with a valid id. */
  private async readMeta(id: string): Promise<FileMeta | null> {
    let text: string;
    try {
      text = await readFile(this.metaPath(id), "utf8");
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

  private isExpired(meta: FileMeta, nowMs: number): boolean {
    return nowMs >= (meta.uploadTime + this.ttlSeconds) * 1000;
  }

  /** The metadata of a live file the owner may see; NotFoundError otherwise. */
  private async visibleMeta(fileId: string, owner: string | null | undefined): Promise<FileMeta> {
    // The id check comes first: nothing that fails it reaches the filesystem.
    if (!isFileId(fileId)) throw notFound(fileId);
    const meta = await this.readMeta(fileId);
    if (!meta || this.isExpired(meta, this.now()) || !ownerMatches(meta, owner)) throw notFound(fileId);
    return meta;
  }
}

function ownerMatches(meta: FileMeta, owner: string | null | undefined): boolean {
  return owner === undefined || (meta.owner ?? null) === owner;
}

function notFound(id: string): NotFoundError {
  const fileId = String(id);
  const shown = fileId.length > 64 ? `${fileId.slice(0, 64)}...` : fileId;
  return new NotFoundError(`file ${JSON.stringify(shown)} not found`);
}

function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // already gone
  }
}
