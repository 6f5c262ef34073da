/**
 * Session state on Docker: labels cannot change after creation, so the mutable part (last
 * activity, keepalive-extended expiry) is a small JSON file on a per-container anonymous
 * volume at STATE_DIR (root-owned 0755, a 1 MiB tmpfs: nothing reaches disk). The backend
 * reads and writes it with the Engine's archive API (`GET/PUT /containers/{id}/archive`):
 * no process runs inside the container for it, so nothing the code plants in its
 * workspace can run with our privileges, and an exhausted session (fork bomb) is still
 * readable. The code (uid 65532) can read the file — the keeper enforces the deadlines it
 * holds — but not write it.
 */
import { buffer } from "node:stream/consumers";
import type Dockerode from "dockerode";
import tar from "tar-stream";
import { STATE_DIR, STATE_FILE, mergeState, parseSessionState } from "@code-interpreter/core/backend-kit";
import type { SessionState } from "@code-interpreter/core/backend-kit";
import { isMissingPath } from "./errors.js";

/** Largest state file read back (it is a few dozen bytes; anything bigger is not ours). */
const STATE_MAX_BYTES = 64 * 1024;
const STATE_NAME = STATE_FILE.slice(STATE_DIR.length + 1);

/** The stored state; `{}` when none was written yet (or the resource has no state volume). */
export async function readStateFile(c: Dockerode.Container, signal: AbortSignal): Promise<SessionState> {
  let archive: NodeJS.ReadableStream;
  try {
    archive = await c.getArchive({ path: STATE_FILE, abortSignal: signal });
  } catch (err) {
    if (isMissingPath(err)) return {};
    throw err;
  }
  return parseSessionState(await firstFile(archive));
}

/** Merges `patch` into the stored state by maximum and writes it back. */
export async function writeStateFile(
  c: Dockerode.Container,
  patch: SessionState,
  signal: AbortSignal,
): Promise<SessionState> {
  const next = mergeState(await readStateFile(c, signal), patch);
  const body = await stateTar(JSON.stringify(next));
  await c.putArchive(body, { path: STATE_DIR, abortSignal: signal });
  return next;
}

async function stateTar(json: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: STATE_NAME, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }, json);
  pack.finalize();
  return buffer(pack);
}

/** The content of the first regular file in a tar stream, at most STATE_MAX_BYTES. */
function firstFile(archive: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let result: string | null = null;
    extract.on("entry", (header, stream, next) => {
      if (result !== null || header.type !== "file" || (header.size ?? 0) > STATE_MAX_BYTES) {
        stream.resume();
        stream.on("end", next);
        return;
      }
      buffer(stream).then((b) => {
        result = b.toString("utf8");
        next();
      }, reject);
    });
    extract.on("finish", () => resolve(result ?? ""));
    extract.on("error", reject);
    archive.on("error", reject);
    archive.pipe(extract);
  });
}
