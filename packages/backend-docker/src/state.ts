/**
 * Session state on Docker: labels cannot change after creation, so the mutable part (last
 * activity, keepalive-extended expiry) is a small JSON file on a per-container anonymous
 * volume at STATE_DIR (root-owned 0755, a 1 MiB tmpfs: nothing reaches disk). The backend
 * reads and writes it with the Engine's archive API (`GET/PUT /containers/{id}/archive`):
 * no process runs inside the container for it, so nothing the code plants in its
 * workspace can run with our privileges, and an exhausted session (fork bomb) is still
 * readable. The code (uid 65532) can read the file — the keeper enforces the deadlines it
 * holds — but not write it.
 *
 * A claimed warm-pool member (issue 10) also keeps its claim record in the same file
 * (`claim`: what it became, its tags, the lifetime its keeper enforces from then on): written
 * once by the claim, kept by every later write, read back by lookups (see claims.ts).
 */
import { buffer } from "node:stream/consumers";
import type Dockerode from "dockerode";
import tar from "tar-stream";
import {
  STATE_DIR,
  STATE_FILE,
  mergeState,
  parseClaimRecord,
  parseSessionState,
} from "@code-interpreter/core/backend-kit";
import type { ClaimRecord, SessionState } from "@code-interpreter/core/backend-kit";
import { isMissingPath } from "./errors.js";

/** Largest state file read back (it is a few dozen bytes; anything bigger is not ours). */
const STATE_MAX_BYTES = 64 * 1024;
const STATE_NAME = STATE_FILE.slice(STATE_DIR.length + 1);

export interface StateRecord {
  state: SessionState;
  /** The claim record of a claimed warm-pool member, else null. */
  claim: ClaimRecord | null;
}

/** The stored state and claim; empty when none was written yet (or there is no state volume). */
export async function readStateRecord(c: Dockerode.Container, signal: AbortSignal): Promise<StateRecord> {
  let archive: NodeJS.ReadableStream;
  try {
    archive = await c.getArchive({ path: STATE_FILE, abortSignal: signal });
  } catch (err) {
    if (isMissingPath(err)) return { state: {}, claim: null };
    throw err;
  }
  const text = await firstFile(archive);
  let claim: ClaimRecord | null = null;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object") claim = parseClaimRecord((v as { claim?: unknown }).claim);
  } catch {
    claim = null;
  }
  return { state: parseSessionState(text), claim };
}

/** The stored state; `{}` when none was written yet (or the resource has no state volume). */
export async function readStateFile(c: Dockerode.Container, signal: AbortSignal): Promise<SessionState> {
  return (await readStateRecord(c, signal)).state;
}

/** Merges `patch` into the stored state by maximum and writes it back (the claim record kept). */
export async function writeStateFile(
  c: Dockerode.Container,
  patch: SessionState,
  signal: AbortSignal,
): Promise<SessionState> {
  const stored = await readStateRecord(c, signal);
  const next = mergeState(stored.state, patch);
  await putState(c, next, stored.claim, signal);
  return next;
}

/** Writes the claim record of a member just claimed, with the session's first state. */
export async function writeClaim(
  c: Dockerode.Container,
  claim: ClaimRecord,
  signal: AbortSignal,
): Promise<void> {
  const state: SessionState = { expiresAt: claim.keeper.expiresAt, lastActiveAt: claim.claimedAt };
  await putState(c, state, claim, signal);
}

async function putState(
  c: Dockerode.Container,
  state: SessionState,
  claim: ClaimRecord | null,
  signal: AbortSignal,
): Promise<void> {
  const body = await stateTar(JSON.stringify(claim ? { ...state, claim } : state));
  await c.putArchive(body, { path: STATE_DIR, abortSignal: signal });
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
