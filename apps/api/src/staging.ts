/** Between the file store and the backend: staged input files and collected output files. */
import { posix } from "node:path";
import {
  NotFoundError,
  assertUniqueSafePaths,
  type FileCollector,
  type StagedFile,
} from "@code-interpreter/core";
import type { FileStore } from "@code-interpreter/files-client";

export interface StagedFileRef {
  path: string;
  file_id: string;
}

/**
 * Checks every path and resolves every file id *before* anything is sent to the backend, so
 * bad input (422 unsafe path, 404 unknown file) changes nothing.
 */
export async function resolveStagedFiles(
  files: FileStore,
  refs: readonly StagedFileRef[] | null | undefined,
  owner: string | null,
): Promise<StagedFile[]> {
  if (!refs || refs.length === 0) return [];
  assertUniqueSafePaths(refs.map((r) => r.path));
  return Promise.all(
    refs.map(async (ref, i): Promise<StagedFile> => {
      let size: number;
      try {
        size = (await files.stat(ref.file_id, owner)).sizeBytes;
      } catch (err) {
        if (err instanceof NotFoundError) {
          throw new NotFoundError(`files[${i}].file_id ${JSON.stringify(ref.file_id)} not found`, {
            cause: err,
          });
        }
        throw err;
      }
      return {
        path: ref.path,
        size,
        open: () => files.open(ref.file_id, owner).then((r) => r.content),
      };
    }),
  );
}

/** Saves each file the code produced into the store under its base name; returns the new id. */
export function storeCollector(files: FileStore, owner: string | null): FileCollector {
  return async ({ path, size, content }) => {
    const meta = await files.put(content, { filename: posix.basename(path), owner, sizeHint: size });
    return meta.fileId;
  };
}
