/**
 * The file requests on an agent channel - list, read (streamed, flow-controlled per read) and
 * upload (write one file / stage several) - and how their answers are checked: sizes as
 * announced, windows respected, listings of safe paths only.
 */
import { PassThrough } from "node:stream";
import type { SessionFile, StagedFile, WorkspaceEntry } from "../backend.js";
import { BackendError, CodeInterpreterError, ValidationError } from "../errors.js";
import { isSafeWorkspacePath } from "../paths.js";
import {
  AgentChannelError,
  agentError,
  chunkFrames,
  isCount,
  jsonFrame,
  parseJson,
  type Call,
  type Pending,
  type Started,
} from "./connection.js";
import { AGENT_MAX_PAYLOAD, AgentReplyKind, AgentRequestKind, encodeAgentFrame } from "./protocol.js";

/** A read runs at most this far ahead of its reader (the agent waits for acks). */
const READ_WINDOW_BYTES = 1 << 20;

/** A listing row as the agent sends it; anything else is dropped. */
function listingRow(v: unknown): WorkspaceEntry | null {
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [path, kind, size] = v as [unknown, unknown, unknown];
  if (!isSafeWorkspacePath(path) || (kind !== "file" && kind !== "directory") || !isCount(size)) return null;
  return { path, kind, sizeBytes: kind === "directory" ? 0 : size };
}

/** The listing request: its raw JSON, at most `maxBytes`. */
export function listRequest(what: string, limit: number, maxBytes: number): (call: Call<Buffer>) => Started {
  return ({ id, conn, settle }) => {
    const parts: Buffer[] = [];
    let size = 0;
    const bad = (why: string) => {
      settle(new AgentChannelError(`${what}: the session agent broke the protocol (${why})`));
      conn.close(new AgentChannelError("the session agent broke the protocol"));
    };
    return {
      pending: {
        onFrame: (k, payload) => {
          if (k === AgentReplyKind.data) {
            size += payload.length;
            if (size > maxBytes) return bad("the listing is too long");
            parts.push(payload);
          } else if (k === AgentReplyKind.result) settle(null, Buffer.concat(parts));
          else if (k === AgentReplyKind.error) settle(agentError(payload, what));
          else bad(`an unexpected frame kind 0x${k.toString(16)}`);
        },
        fail: (e) => settle(e),
      },
      send: () => conn.send([jsonFrame(AgentRequestKind.list, id, { limit })]),
    };
  };
}

/** The rows of a listing (malformed rows dropped), sorted by path, at most `limit`. */
export function parseListing(what: string, raw: Buffer, limit: number): WorkspaceEntry[] {
  let rows: unknown;
  try {
    rows = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new BackendError(`${what} failed: the listing is malformed`);
  }
  if (!Array.isArray(rows)) throw new BackendError(`${what} failed: the listing is malformed`);
  const out: WorkspaceEntry[] = [];
  for (const row of rows.slice(0, limit)) {
    const e = listingRow(row);
    if (e) out.push(e);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface ReadContext {
  /** Deadline of a read without progress. */
  opTimeoutMs: number;
  /** Counts the content stream as activity until the returned function is called. */
  hold(): () => void;
}

/** The read request: resolves with the size once known; the content streams after. */
export function readRequest(
  what: string,
  path: string,
  maxBytes: number,
  ctx: ReadContext,
): (call: Call<SessionFile>) => Started {
  return (call) => {
    const { id, conn } = call;
    let content: PassThrough | null = null;
    let size = 0;
    let got = 0;
    let ended = false;
    /** Bytes acknowledged to the agent, and bytes delivered but not yet acknowledged. */
    let taken = 0;
    let unacked = 0;
    const ack = () => {
      if (unacked === 0 || ended) return;
      const n = Buffer.alloc(4);
      n.writeUInt32BE(unacked);
      taken += unacked;
      unacked = 0;
      conn.sendQuiet(encodeAgentFrame(AgentRequestKind.ack, id, n));
      call.extend(ctx.opTimeoutMs);
    };
    const bad = (why: string) => {
      const e = new AgentChannelError(`${what}: the session agent broke the protocol (${why})`);
      content?.destroy(e);
      call.settle(e);
      conn.close(new AgentChannelError("the session agent broke the protocol"));
    };
    return {
      pending: {
        onFrame: (k, payload) => {
          if (content === null) {
            if (k === AgentReplyKind.error) return call.settle(agentError(payload, what));
            const m = k === AgentReplyKind.meta ? parseJson(payload) : null;
            if (!m || !isCount(m.size) || m.size > maxBytes) return bad("a bad file header");
            size = m.size;
            const stream = new PassThrough();
            content = stream;
            const release = ctx.hold();
            stream.on("drain", ack);
            stream.on("close", () => {
              release();
              if (!ended) {
                // The reader went away: stop the agent's side too.
                conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
                call.done();
              }
            });
            call.resolve({ sizeBytes: size, content: stream });
            return;
          }
          if (k === AgentReplyKind.data) {
            got += payload.length;
            if (got > size) return bad("more bytes than announced");
            if (got - taken > READ_WINDOW_BYTES + AGENT_MAX_PAYLOAD) return bad("more bytes than the window");
            unacked += payload.length;
            call.extend(ctx.opTimeoutMs);
            if (content.write(payload)) ack();
          } else if (k === AgentReplyKind.result) {
            if (got !== size) return bad("fewer bytes than announced");
            ended = true;
            content.end();
            call.done();
          } else if (k === AgentReplyKind.error) {
            ended = true;
            content.destroy(agentError(payload, what));
            call.done();
          } else bad(`an unexpected frame kind 0x${k.toString(16)}`);
        },
        fail: (e) => {
          ended = true;
          content?.destroy(e);
          call.settle(e);
        },
        onDeadline: () => {
          // The reader took nothing for that long: end this read only, the agent is fine.
          if (content === null || (unacked === 0 && content.readableLength === 0)) return false;
          ended = true;
          conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
          content.destroy(
            new BackendError(`${what}: the reader took nothing for ${Math.round(ctx.opTimeoutMs / 1000)} s`),
          );
          return true;
        },
      },
      send: () =>
        conn.send([
          jsonFrame(AgentRequestKind.read, id, { path, max_bytes: maxBytes, window: READ_WINDOW_BYTES }),
        ]),
    };
  };
}

/** The upload request (W: one file, S: several): the header, then each file's bytes in chunks. */
export function uploadRequest(
  what: string,
  kind: number,
  header: object,
  files: ReadonlyArray<Pick<StagedFile, "size" | "open">>,
  opTimeoutMs: number,
): (call: Call<void>) => Started {
  return (call) => {
    const { id, conn } = call;
    let over = false;
    /** Waiting for the caller's content (not for the agent): a stall there is the caller's. */
    let waitingOnSource = false;
    let sourceStalled: (() => void) | null = null;
    const pending: Pending = {
      onDeadline: () => {
        if (!waitingOnSource || over) return false;
        over = true;
        conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
        call.settle(
          new ValidationError(`${what}: the upload sent nothing for ${Math.round(opTimeoutMs / 1000)} s`),
        );
        sourceStalled?.();
        return true;
      },
      onFrame: (k, payload) => {
        over = true;
        if (k === AgentReplyKind.result) call.settle(null);
        else if (k === AgentReplyKind.error) call.settle(agentError(payload, what));
        else {
          call.settle(new AgentChannelError(`${what}: the session agent broke the protocol`));
          conn.close(new AgentChannelError("the session agent broke the protocol"));
        }
      },
      fail: (e) => {
        over = true;
        call.settle(e);
      },
    };
    const send = async () => {
      await conn.send([jsonFrame(kind, id, header)]);
      for (const f of files) {
        if (over) return;
        const src = await f.open();
        sourceStalled = () => src.destroy();
        let left = f.size;
        try {
          const it = (src as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
          for (;;) {
            waitingOnSource = true;
            const next = await it.next();
            waitingOnSource = false;
            if (next.done || over) break;
            const chunk = next.value;
            const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
            if (b.length > left) throw new ValidationError(`${what}: the content is longer than its size`);
            left -= b.length;
            await conn.send(chunkFrames(AgentRequestKind.chunk, id, b));
            call.extend(opTimeoutMs);
          }
        } catch (e) {
          if (over) return;
          conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
          throw e instanceof CodeInterpreterError
            ? e
            : new BackendError(`${what} failed: ${(e as Error).message}`);
        } finally {
          src.destroy();
        }
        if (left > 0 && !over) {
          conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
          throw new ValidationError(`${what}: the content is shorter than its size`);
        }
      }
    };
    return { pending, send };
  };
}
