/**
 * LocalFileStore: the embedded default. One directory, two files per upload (the layout is in
 * `local/layout.ts`, the metadata format in `local/metadata.ts`, expiry and crash leftovers in
 * `local/sweep.ts`).
 *
 * A file exists once its metadata exists. Both files are written to a temp file in the same
 * directory, fsynced and renamed into place (data first, metadata last), so readers see a
 * complete file or none. Deleting removes the metadata first, so the file disappears at once.
 */
import { constants as fsConstants } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import {
  BackendUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "@code-interpreter/core";
import { isFileId, newFileId, sanitizeFilename } from "./names.js";
import type { FileMeta, FileStore, PutOptions } from "./types.js";
import {
  META_FILE_RE,
  dataPath,
  isEnoent,
  metaPath,
  readDirOrEmpty,
  syncDir,
  tmpPath,
  unlinkQuiet,
} from "./local/layout.js";
import { isExpired, ownerMatches, readMeta, writeMeta } from "./local/metadata.js";
import { sweepDir } from "./local/sweep.js";

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
    const tmpData = tmpPath(this.dir, fileId, "data");
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
      await rename(tmpData, dataPath(this.dir, fileId));
      renamed = true;
      await writeMeta(this.dir, meta);
      await syncDir(this.dir);
      return meta;
    } catch (err) {
      if (fh) await fh.close().catch(() => undefined);
      await unlinkQuiet(renamed ? dataPath(this.dir, fileId) : tmpData);
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
      fh = await open(dataPath(this.dir, fileId), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      if (isEnoent(err)) throw notFound(fileId);
      throw err;
    }
    return { meta, content: fh.createReadStream({ autoClose: true }) };
  }

  async list(owner?: string | null): Promise<FileMeta[]> {
    const names = await readDirOrEmpty(this.dir);
    const now = this.now();
    const out: FileMeta[] = [];
    await Promise.all(
      names.map(async (name) => {
        const m = META_FILE_RE.exec(name);
        if (!m) return;
        const meta = await readMeta(this.dir, m[1]!);
        if (meta && !isExpired(meta, this.ttlSeconds, now) && ownerMatches(meta, owner)) out.push(meta);
      }),
    );
    return out.sort((a, b) => a.uploadTime - b.uploadTime || a.fileId.localeCompare(b.fileId));
  }

  async delete(fileId: string, owner?: string | null): Promise<void> {
    await this.visibleMeta(fileId, owner);
    try {
      await unlink(metaPath(this.dir, fileId));
    } catch (err) {
      // A concurrent delete or sweep won the race.
      if (isEnoent(err)) throw notFound(fileId);
      throw err;
    }
    await unlinkQuiet(dataPath(this.dir, fileId));
  }

  async sweep(now: number = this.now()): Promise<number> {
    return sweepDir(this.dir, this.ttlSeconds, now);
  }

  async ping(): Promise<void> {
    try {
      await this.ensureDir();
      const probe = tmpPath(this.dir, newFileId(), "ping");
      const fh = await open(probe, "wx", 0o600);
      await fh.close();
      await unlink(probe);
    } catch (err) {
      throw new BackendUnavailableError(`file storage directory ${this.dir} is not writable`, { cause: err });
    }
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

  /** The metadata of a live file the owner may see; NotFoundError otherwise. */
  private async visibleMeta(fileId: string, owner: string | null | undefined): Promise<FileMeta> {
    // The id check comes first: nothing that fails it reaches the filesystem.
    if (!isFileId(fileId)) throw notFound(fileId);
    const meta = await readMeta(this.dir, fileId);
    if (!meta || isExpired(meta, this.ttlSeconds, this.now()) || !ownerMatches(meta, owner))
      throw notFound(fileId);
    return meta;
  }
}

function notFound(id: string): NotFoundError {
  const fileId = String(id);
  const shown = fileId.length > 64 ? `${fileId.slice(0, 64)}...` : fileId;
  return new NotFoundError(`file ${JSON.stringify(shown)} not found`);
}
