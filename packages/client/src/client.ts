/**
 * The client: `new CodeInterpreter({ baseUrl, apiKey })`, one-shot runs, the file store, and
 * sessions as handles (`Session`) with run/bash/files/keepalive/delete and `await using`.
 */
import { NotFoundError, ValidationError } from "./errors.js";
import { HttpClient, type ClientOptions } from "./http.js";
import { Pager, type Page, type PageOptions } from "./pager.js";
import { readExecutionStream, type OutputCallbacks } from "./sse.js";
import {
  toExecution,
  toSessionInfo,
  toStoredFile,
  toWireFiles,
  toWorkspaceEntry,
  type Body,
  type Execution,
  type SessionInfo,
  type StagedFile,
  type StoredFile,
  type WireExecResult,
  type WireSession,
  type WireStoredFile,
  type WireWorkspaceEntry,
  type WorkspaceEntry,
} from "./types.js";

export interface RequestOptions {
  /**
   * Cancels the request (and, server-side, the run: a disconnect kills it).
   * @default undefined
   */
  signal?: AbortSignal | undefined;
}

export interface BashOptions extends OutputCallbacks, RequestOptions {
  /**
   * Run time limit in milliseconds (at most the server's `MAX_EXEC_TIMEOUT_MS`).
   * @default undefined (the server's `DEFAULT_EXEC_TIMEOUT_MS`)
   */
  timeoutMs?: number | undefined;
  /**
   * Text given to the program's stdin.
   * @default undefined (empty stdin)
   */
  stdin?: string | undefined;
}

export interface RunOptions extends BashOptions {
  /**
   * A bare expression on the last line prints its value, as in a REPL.
   * @default true (the server's default)
   */
  lastLineInteractive?: boolean | undefined;
}

export interface ExecuteOptions extends RunOptions {
  /**
   * Files from the file store to place in the workspace first.
   * @default []
   */
  files?: StagedFile[] | undefined;
}

export interface CreateSessionOptions extends RequestOptions {
  /**
   * Files from the file store to place in the new session's workspace.
   * @default []
   */
  files?: StagedFile[] | undefined;
  /**
   * Lifetime in seconds (at most the server's `SESSION_MAX_LIFETIME_SECONDS`).
   * @default undefined (the server's `SESSION_MAX_LIFETIME_SECONDS`, 86400 unless configured)
   */
  ttlSeconds?: number | undefined;
  /**
   * Delete the session after this many seconds without a call.
   * @default undefined (no idle timeout)
   */
  idleTimeoutSeconds?: number | undefined;
  /**
   * String labels kept with the session (at most 32 keys).
   * @default {}
   */
  metadata?: Record<string, string> | undefined;
}

export interface Health {
  status: "ok" | "unavailable";
  backend: string;
  version: string;
  /** Why the backend is unavailable. */
  detail?: string;
}

/** An id of only dots would be resolved away by URL parsing (another route): never a session. */
function sessionPath(id: string): string {
  if (/^\.*$/.test(id))
    throw new NotFoundError({ status: 404, detail: `session ${JSON.stringify(id)} not found` });
  return `/v1/sessions/${encodeURIComponent(id)}`;
}
/**
 * A workspace path as URL segments. Paths the server would answer 422 for because of their
 * segments (absolute, empty, "." or "..") are refused here with the same ValidationError:
 * sent in a URL, a ".." segment would be resolved away by URL parsing and reach another route.
 */
function workspacePath(path: string): string {
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new ValidationError({
      status: 422,
      detail: `path: ${JSON.stringify(path)} must be relative to /workspace, without empty, "." or ".." segments`,
    });
  }
  return segments.map(encodeURIComponent).join("/");
}

/** A Blob of the body (copying a Uint8Array, which may be a view on a larger or shared buffer). */
function toBlob(body: Body): Blob {
  return new Blob([body instanceof Uint8Array ? new Uint8Array(body) : body]);
}

function execBody(code: { code: string } | { cmd: string }, opts: RunOptions) {
  return {
    ...code,
    timeout_ms: opts.timeoutMs,
    stdin: opts.stdin,
    ...("code" in code ? { last_line_interactive: opts.lastLineInteractive } : {}),
  };
}

/** POST to `path` (or `path + "/stream"` when an output callback is given). */
async function runOn(
  http: HttpClient,
  path: string,
  json: Record<string, unknown>,
  opts: BashOptions,
): Promise<Execution> {
  if (opts.onStdout || opts.onStderr) {
    const res = await http.request({
      method: "POST",
      path: `${path}/stream`,
      json,
      accept: "text/event-stream",
      signal: opts.signal,
    });
    return readExecutionStream(res, opts);
  }
  return toExecution(await http.json<WireExecResult>({ method: "POST", path, json, signal: opts.signal }));
}

/** The files of one session's `/workspace`. */
export class SessionFiles {
  constructor(
    private readonly http: HttpClient,
    private readonly sessionId: string,
  ) {}

  /** Writes (creates or replaces) `path`, relative to `/workspace`; parent directories are made. */
  async write(path: string, content: Body, opts: RequestOptions = {}): Promise<WorkspaceEntry> {
    const res = await this.http.json<WireWorkspaceEntry & { kind?: string }>({
      method: "PUT",
      path: `${sessionPath(this.sessionId)}/files/${workspacePath(path)}`,
      body: () => toBlob(content),
      contentType: "application/octet-stream",
      signal: opts.signal,
    });
    return { path: res.path, kind: res.kind ?? "file", sizeBytes: res.size_bytes };
  }

  /** The bytes of `path`; NotFoundError for a missing path or a directory. */
  async read(path: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    const res = await this.http.request({
      method: "GET",
      path: `${sessionPath(this.sessionId)}/files/${workspacePath(path)}`,
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
      const page = await this.http.json<{ files: WireWorkspaceEntry[]; next_cursor?: string }>({
        method: "GET",
        path: `${sessionPath(this.sessionId)}/files`,
        query: { limit, cursor },
        signal: opts.signal,
      });
      return { items: page.files.map(toWorkspaceEntry), nextCursor: page.next_cursor };
    }, opts);
  }

  /** Copies a file of the file store (`client.files.upload()`) to `path` in the workspace. */
  async copy(fileId: string, path: string, opts: RequestOptions = {}): Promise<WorkspaceEntry> {
    const res = await this.http.json<WireWorkspaceEntry & { kind?: string }>({
      method: "POST",
      path: `${sessionPath(this.sessionId)}/files`,
      json: { path, file_id: fileId },
      signal: opts.signal,
    });
    return { path: res.path, kind: res.kind ?? "file", sizeBytes: res.size_bytes };
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
    private readonly http: HttpClient,
    info: SessionInfo,
  ) {
    this.id = info.id;
    this.info = info;
    this.files = new SessionFiles(http, info.id);
  }

  /**
   * Runs Python in the session's `/workspace`. With `onStdout`/`onStderr` the output is
   * streamed (SSE) to them as it is printed; the result has all of it either way.
   */
  async run(code: string, opts: RunOptions = {}): Promise<Execution> {
    return runOn(this.http, `${sessionPath(this.id)}/execute`, execBody({ code }, opts), opts);
  }

  /** Runs a bash command (a fresh process in `/workspace`), streamed like `run()`. */
  async bash(cmd: string, opts: BashOptions = {}): Promise<Execution> {
    return runOn(this.http, `${sessionPath(this.id)}/bash`, execBody({ cmd }, opts), opts);
  }

  /**
   * Moves `expiresAt` to now + `ttlSeconds` (never earlier, never past `maxExpiresAt`).
   * @param ttlSeconds default: as far as the server allows
   */
  async keepalive(ttlSeconds?: number, opts: RequestOptions = {}): Promise<SessionInfo> {
    const wire = await this.http.json<WireSession>({
      method: "POST",
      path: `${sessionPath(this.id)}/keepalive`,
      json: { ttl_seconds: ttlSeconds },
      signal: opts.signal,
    });
    this.info = toSessionInfo(wire);
    return this.info;
  }

  /** Reads the session's current state; NotFoundError once it has ended. */
  async refresh(opts: RequestOptions = {}): Promise<SessionInfo> {
    const wire = await this.http.json<WireSession>({
      method: "GET",
      path: sessionPath(this.id),
      signal: opts.signal,
    });
    this.info = toSessionInfo(wire);
    return this.info;
  }

  /** Deletes the session (its container/pod); NotFoundError if it is already gone. */
  async delete(opts: RequestOptions = {}): Promise<void> {
    await this.http.request({ method: "DELETE", path: sessionPath(this.id), signal: opts.signal });
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

export class Sessions {
  constructor(private readonly http: HttpClient) {}

  /** Starts a session (a locked-down container or pod), with `files` staged in it. */
  async create(opts: CreateSessionOptions = {}): Promise<Session> {
    const wire = await this.http.json<WireSession>({
      method: "POST",
      path: "/v1/sessions",
      json: {
        files: toWireFiles(opts.files),
        ttl_seconds: opts.ttlSeconds,
        idle_timeout_seconds: opts.idleTimeoutSeconds,
        metadata: opts.metadata,
      },
      signal: opts.signal,
    });
    return new Session(this.http, toSessionInfo(wire));
  }

  /** A handle on an existing session (checked: NotFoundError when it is unknown or ended). */
  async get(id: string, opts: RequestOptions = {}): Promise<Session> {
    const wire = await this.http.json<WireSession>({
      method: "GET",
      path: sessionPath(id),
      signal: opts.signal,
    });
    return new Session(this.http, toSessionInfo(wire));
  }

  /** The caller's sessions, oldest first, page by page as iterated. */
  list(opts: PageOptions = {}): Pager<Session> {
    return new Pager(async (cursor, limit): Promise<Page<Session>> => {
      const page = await this.http.json<{ sessions: WireSession[]; next_cursor?: string }>({
        method: "GET",
        path: "/v1/sessions",
        query: { limit, cursor },
        signal: opts.signal,
      });
      return {
        items: page.sessions.map((s) => new Session(this.http, toSessionInfo(s))),
        nextCursor: page.next_cursor,
      };
    }, opts);
  }
}

export class Files {
  constructor(private readonly http: HttpClient) {}

  /** Uploads bytes to the file store (multipart `POST /v1/files`). */
  async upload(content: Body, filename: string, opts: RequestOptions = {}): Promise<StoredFile> {
    const wire = await this.http.json<WireStoredFile>({
      method: "POST",
      path: "/v1/files",
      body: () => {
        const form = new FormData();
        form.append("file", toBlob(content), filename);
        return form;
      },
      signal: opts.signal,
    });
    return toStoredFile(wire);
  }

  /** The bytes of a stored file; NotFoundError when unknown or expired. */
  async download(fileId: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    const res = await this.http.request({
      method: "GET",
      path: `/v1/files/${encodeURIComponent(fileId)}`,
      signal: opts.signal,
    });
    return new Uint8Array(await res.arrayBuffer());
  }

  async delete(fileId: string, opts: RequestOptions = {}): Promise<void> {
    await this.http.request({
      method: "DELETE",
      path: `/v1/files/${encodeURIComponent(fileId)}`,
      signal: opts.signal,
    });
  }

  /** The caller's stored files, page by page as iterated. */
  list(opts: PageOptions = {}): Pager<StoredFile> {
    return new Pager(async (cursor, limit) => {
      const page = await this.http.json<{ files: WireStoredFile[]; next_cursor?: string }>({
        method: "GET",
        path: "/v1/files",
        query: { limit, cursor },
        signal: opts.signal,
      });
      return { items: page.files.map(toStoredFile), nextCursor: page.next_cursor };
    }, opts);
  }
}

export class CodeInterpreter {
  readonly sessions: Sessions;
  readonly files: Files;
  private readonly http: HttpClient;

  constructor(opts: ClientOptions = {}) {
    this.http = new HttpClient(opts);
    this.sessions = new Sessions(this.http);
    this.files = new Files(this.http);
  }

  /** The server's base URL in use. */
  get baseUrl(): string {
    return this.http.options.baseUrl;
  }

  /** `GET /health`; a server whose backend is down answers `status: "unavailable"` (not thrown). */
  async health(opts: RequestOptions = {}): Promise<Health> {
    const res = await this.http.request({
      method: "GET",
      path: "/health",
      okStatuses: [503],
      signal: opts.signal,
    });
    return (await res.json()) as Health;
  }

  /** Runs Python once in a fresh container (removed after); streamed with output callbacks. */
  async execute(code: string, opts: ExecuteOptions = {}): Promise<Execution> {
    const json = { ...execBody({ code }, opts), files: toWireFiles(opts.files) };
    return runOn(this.http, "/v1/execute", json, opts);
  }
}
