/** The tar stream that carries staged files into an executor (read by workspace.py's `write`). */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { StagedFile } from "../backend.js";

/** A tar stream of the staged files (regular files, mode 0644; parent dirs are implied). */
export function packFiles(files: readonly StagedFile[]): Readable {
  const pack = tar.pack();
  // tar-stream speaks streamx; hand callers a plain Node stream. The archive is padded to a
  // whole tar record (as GNU tar writes it): GNU tar only stops reading at a record boundary,
  // so an unpadded archive would hang on transports that cannot half-close stdin (k8s exec v4).
  const out = Readable.from(padToTarRecord(pack as AsyncIterable<Buffer>));
  // A file can fail (open rejects, its stream errors) before anyone reads `out`: report the
  // error on `out` itself, never as an unhandled 'error' on the pack, and never leave `out` open.
  pack.on("error", () => undefined);
  void (async () => {
    try {
      for (const f of files) {
        const src = await f.open();
        const entry = pack.entry({
          name: f.path,
          size: f.size,
          mode: 0o644,
          type: "file",
          mtime: new Date(),
        });
        await pipeline(src, entry);
      }
      pack.finalize();
    } catch (err) {
      out.destroy(err as Error);
      pack.destroy(err as Error);
    }
  })();
  return out;
}

/** GNU tar's default record size (blocking factor 20 × 512). */
export const TAR_RECORD_BYTES = 10240;

async function* padToTarRecord(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    yield chunk;
  }
  const pad = (TAR_RECORD_BYTES - (n % TAR_RECORD_BYTES)) % TAR_RECORD_BYTES;
  if (pad > 0) yield Buffer.alloc(pad);
}
