/**
 * The file store: uploads that callers stage into executions and sessions, and files the
 * code produced. Implemented by LocalFileStore (on disk, the embedded default) and
 * HttpFilesClient (any server speaking the `/v1/files` REST contract).
 */
import type { Readable } from "node:stream";

export interface FileMeta {
  fileId: string;
  filename: string;
  sizeBytes: number;
  /** Unix seconds (float), as the REST contract reports it. */
  uploadTime: number;
  /** Owner tag (hash of the API key) or null. */
  owner: string | null;
}

export interface PutOptions {
  filename: string;
  owner?: string | null;
  /** Size when known up front; lets the store reject oversize input before reading it. */
  sizeHint?: number;
}

export interface FileStore {
  /** Stores the stream; throws PayloadTooLargeError (413) past the size limit, leaving nothing behind. */
  put(content: Readable | Buffer, opts: PutOptions): Promise<FileMeta>;
  /** Throws NotFoundError for unknown, expired or foreign (owner mismatch) ids. */
  stat(fileId: string, owner?: string | null): Promise<FileMeta>;
  /** Opens the bytes; throws NotFoundError like stat. */
  open(fileId: string, owner?: string | null): Promise<{ meta: FileMeta; content: Readable }>;
  /** Lists the owner's files (all files when owner is undefined). */
  list(owner?: string | null): Promise<FileMeta[]>;
  /** Throws NotFoundError when there is nothing to delete. */
  delete(fileId: string, owner?: string | null): Promise<void>;
  /** Removes expired files; returns how many. */
  sweep(now?: number): Promise<number>;
  /** Resolves when the store is usable (the remote answers, the directory is writable). */
  ping(): Promise<void>;
  readonly maxFileBytes: number;
}
