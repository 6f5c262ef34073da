/** A session handle (`Session`) and the files of its `/workspace` (`SessionFiles`). */
import { NotFoundError } from "./errors.js";
import { Pager, type PageOptions } from "./pager.js";
import {
  bashBody,
  runWith,
  sessionExecuteBody,
  type BashOptions,
  type RequestOptions,
  type SessionRunOptions,
} from "./run.js";
import {
  toSessionInfo,
  toWorkspaceEntry,
  type Body,
  type Execution,
  type SessionInfo,
  type WorkspaceEntry,
} from "./types.js";
import type { Api } from "./wire.js";

const EVENT_STREAM = "text/event-stream";

/** A Blob of the body (copying a Uint8Array, which may be a view on a larger or shared buffer). */
export function toBlob(body: Body): Blob {
  return new Blob([body instanceof Uint8Array ? new Uint8Array(body) : body]);
}

/** The files of one session's `/workspace`. */
export class SessionFiles {
  constructor(
    private readonly api: Api,
    private readonly sessionId: string,
  ) {}

  /** Writes (creates or replaces) `path`, relative to `/workspace`; parent directories are made. */
  async write(path: string, content: Body, opts: RequestOptions = {}): Promise<WorkspaceEntry> {
    const res = await this.api.json("writeSessionFile", {
      params: { id: this.sessionId, path },
      body: () => toBlob(content),
      contentType: "application/octet-stream",
      signal: opts.signal,
    });
    return { path: res.path, kind: "file", sizeBytes: res.size_bytes };
  }

  /** The bytes of `path`; NotFoundError for a missing path or a directory. */
  async read(path: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    const res = await this.api.request("readSessionFile", {
      params: { id: this.sessionId, path },
      signal: opts.signal,
    });
    return new Uint8Array(await res.arrayBuffer());
  }

  /** `read()` decoded as UTF-8. */
  async readText(path: string, opts: RequestOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.read(path, opts));
  }

  /** Files and directories under `/workspace`, page by page as iterated. */
  list(opts: PageOptions = {}): Pager<WorkspaceEntry> {
    return new Pager(async (cursor, limit) => {
      const page = await this.api.json("listSessionFiles", {
        params: { id: this.sessionId },
        query: { limit, cursor },
        signal: opts.signal,
      });
      return { items: page.files.map(toWorkspaceEntry), nextCursor: page.next_cursor };
    }, opts);
  }

  /** Copies a file of the file store (`client.files.upload()`) to `path` in the workspace. */
  async copy(fileId: string, path: string, opts: RequestOptions = {}): Promise<WorkspaceEntry> {
    const res = await this.api.json("copyFileToSession", {
      params: { id: this.sessionId },
      json: { path, file_id: fileId },
      signal: opts.signal,
    });
    return { path: res.path, kind: "file", sizeBytes: res.size_bytes };
  }
}

/**
 * A running session. `await using session = await client.sessions.create()` deletes it when
 * the scope ends; otherwise call `delete()` (or let its TTL end it).
 */
export class Session implements AsyncDisposable {
  readonly id: string;
  /** The session's state as of the last call that returned it. */
  info: SessionInfo;
  readonly files: SessionFiles;

  constructor(
    private readonly api: Api,
    info: SessionInfo,
  ) {
    this.id = info.id;
    this.info = info;
    this.files = new SessionFiles(api, info.id);
  }

  /**
   * Runs Python in the session's `/workspace`; variables, imports and functions persist
   * between calls (`reset: true` starts afresh). With `onStdout`/`onStderr` the output is
   * streamed (SSE) to them as it is printed; the result has all of it either way.
   */
  async run(code: string, opts: SessionRunOptions = {}): Promise<Execution> {
    const call = { params: { id: this.id }, json: sessionExecuteBody(code, opts), signal: opts.signal };
    return runWith(
      opts,
      () => this.api.json("sessionExecute", call),
      () => this.api.request("sessionExecuteStream", { ...call, accept: EVENT_STREAM }),
    );
  }

  /** Runs a bash command (a fresh process in `/workspace`), streamed like `run()`. */
  async bash(cmd: string, opts: BashOptions = {}): Promise<Execution> {
    const call = { params: { id: this.id }, json: bashBody(cmd, opts), signal: opts.signal };
    return runWith(
      opts,
      () => this.api.json("sessionBash", call),
      () => this.api.request("sessionBashStream", { ...call, accept: EVENT_STREAM }),
    );
  }

  /**
   * Moves `expiresAt` to now + `ttlSeconds` (never earlier, never past `maxExpiresAt`).
   * @param ttlSeconds default: as far as the server allows
   */
  async keepalive(ttlSeconds?: number, opts: RequestOptions = {}): Promise<SessionInfo> {
    const wire = await this.api.json("keepalive", {
      params: { id: this.id },
      json: { ttl_seconds: ttlSeconds },
      signal: opts.signal,
    });
    this.info = toSessionInfo(wire);
    return this.info;
  }

  /** Reads the session's current state; NotFoundError once it has ended. */
  async refresh(opts: RequestOptions = {}): Promise<SessionInfo> {
    this.info = toSessionInfo(
      await this.api.json("getSession", { params: { id: this.id }, signal: opts.signal }),
    );
    return this.info;
  }

  /** Deletes the session (its container/pod); NotFoundError if it is already gone. */
  async delete(opts: RequestOptions = {}): Promise<void> {
    await this.api.request("deleteSession", { params: { id: this.id }, signal: opts.signal });
  }

  /** For `await using`: deletes the session; one that is already gone is not an error. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete();
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
}
