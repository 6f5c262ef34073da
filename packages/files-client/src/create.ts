import { HttpFilesClient } from "./http.js";
import { LocalFileStore } from "./local.js";
import type { FileStore } from "./types.js";

export interface FileStoreOptions {
  /** Remote `/v1/files` server (config FILE_SERVICE_URL); when set, `dir` and `ttlSeconds` are unused. */
  url?: string;
  /** Local storage directory (config FILE_STORAGE_DIR). */
  dir: string;
  maxFileBytes: number;
  ttlSeconds: number;
  /** API key for the remote server. */
  apiKey?: string;
}

/** HttpFilesClient when `url` is set, else LocalFileStore. */
export function createFileStore(opts: FileStoreOptions): FileStore {
  if (opts.url) {
    return new HttpFilesClient({ baseUrl: opts.url, apiKey: opts.apiKey, maxFileBytes: opts.maxFileBytes });
  }
  return new LocalFileStore({ dir: opts.dir, maxFileBytes: opts.maxFileBytes, ttlSeconds: opts.ttlSeconds });
}
