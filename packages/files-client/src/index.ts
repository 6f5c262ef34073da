export type { FileMeta, FileStore, PutOptions } from "./types.js";
export { LocalFileStore, type LocalFileStoreOptions } from "./local.js";
export { HttpFilesClient, type HttpFilesClientOptions } from "./http.js";
export { isFileId, newFileId, sanitizeFilename, MAX_FILENAME_LENGTH } from "./names.js";
export { createFileStore, type FileStoreOptions } from "./create.js";
