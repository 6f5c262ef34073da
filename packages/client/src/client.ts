/**
 * The client: `new CodeInterpreter({ baseUrl, apiKey })`, one-shot runs, the file store, and
 * sessions as handles (`Session`, in session.ts). Every call is an operation of the OpenAPI
 * document, typed from it (wire.ts).
 */
import { HttpClient, type ClientOptions } from "./http.js";
import { Pager, type Page, type PageOptions } from "./pager.js";
import { executeBody, runWith, type ExecuteOptions, type RequestOptions } from "./run.js";
import { Session, toBlob } from "./session.js";
import {
  toSessionInfo,
  toStoredFile,
  toWireFiles,
  type Body,
  type Execution,
  type StagedFile,
  type StoredFile,
} from "./types.js";
import { Api, type Schemas } from "./wire.js";

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

/** `GET /health`, as the document says (`detail` only when the backend is unavailable). */
export type Health = Schemas["Health"];

export class Sessions {
  constructor(private readonly api: Api) {}

  /** Starts a session (a locked-down container or pod), with `files` staged in it. */
  async create(opts: CreateSessionOptions = {}): Promise<Session> {
    const wire = await this.api.json("createSession", {
      json: {
        files: toWireFiles(opts.files),
        ttl_seconds: opts.ttlSeconds,
        idle_timeout_seconds: opts.idleTimeoutSeconds,
        metadata: opts.metadata,
      },
      signal: opts.signal,
    });
    return new Session(this.api, toSessionInfo(wire));
  }

  /** A handle on an existing session (checked: NotFoundError when it is unknown or ended). */
  async get(id: string, opts: RequestOptions = {}): Promise<Session> {
    const wire = await this.api.json("getSession", { params: { id }, signal: opts.signal });
    return new Session(this.api, toSessionInfo(wire));
  }

  /** The caller's sessions, oldest first, page by page as iterated. */
  list(opts: PageOptions = {}): Pager<Session> {
    return new Pager(async (cursor, limit): Promise<Page<Session>> => {
      const page = await this.api.json("listSessions", { query: { limit, cursor }, signal: opts.signal });
      return {
        items: page.sessions.map((s) => new Session(this.api, toSessionInfo(s))),
        nextCursor: page.next_cursor,
      };
    }, opts);
  }
}

export class Files {
  constructor(private readonly api: Api) {}

  /** Uploads bytes to the file store (multipart `POST /v1/files`). */
  async upload(content: Body, filename: string, opts: RequestOptions = {}): Promise<StoredFile> {
    const wire = await this.api.json("uploadFile", {
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
    const res = await this.api.request("downloadFile", { params: { file_id: fileId }, signal: opts.signal });
    return new Uint8Array(await res.arrayBuffer());
  }

  async delete(fileId: string, opts: RequestOptions = {}): Promise<void> {
    await this.api.request("deleteFile", { params: { file_id: fileId }, signal: opts.signal });
  }

  /** The caller's stored files, page by page as iterated. */
  list(opts: PageOptions = {}): Pager<StoredFile> {
    return new Pager(async (cursor, limit) => {
      const page = await this.api.json("listFiles", { query: { limit, cursor }, signal: opts.signal });
      return { items: page.files.map(toStoredFile), nextCursor: page.next_cursor };
    }, opts);
  }
}

export class CodeInterpreter {
  readonly sessions: Sessions;
  readonly files: Files;
  private readonly api: Api;

  constructor(opts: ClientOptions = {}) {
    this.api = new Api(new HttpClient(opts));
    this.sessions = new Sessions(this.api);
    this.files = new Files(this.api);
  }

  /** The server's base URL in use. */
  get baseUrl(): string {
    return this.api.http.options.baseUrl;
  }

  /** `GET /health`; a server whose backend is down answers `status: "unavailable"` (not thrown). */
  async health(opts: RequestOptions = {}): Promise<Health> {
    return this.api.json("health", { okStatuses: [503], signal: opts.signal });
  }

  /** Runs Python once in a fresh container (removed after); streamed with output callbacks. */
  async execute(code: string, opts: ExecuteOptions = {}): Promise<Execution> {
    const call = { json: executeBody(code, opts), signal: opts.signal };
    return runWith(
      opts,
      () => this.api.json("execute", call),
      () => this.api.request("executeStream", { ...call, accept: "text/event-stream" }),
    );
  }
}
