export type { FileMeta, FileStore, PutOptions } from "./types.js";
export { LocalFileStore, type LocalFileStoreOptions } from "./local.js";
export { isFileId, newFileId, sanitizeFilename, MAX_FILENAME_LENGTH } from "./names.js";
