/**
 * AgentChannel: the API's end of a session's resident agent. ONE long-lived exec (the relay)
 * per session per API process carries every request as frames, so a call costs no platform
 * request once the channel is open. Everything the agent says is hostile input: output is
 * capped, files checked (count, size, path), one final answer per request, a deadline on every
 * request; a channel that breaks a rule is closed and the next call opens a new one.
 *
 * The connection (connection.ts), the run request (run-request.ts) and the file requests
 * (file-requests.ts) live beside it; this file holds the channel: opening, the request
 * lifecycle (deadline, one transparent retry), and the operations.
 */
import type { Readable } from "node:stream";
import type { ExecRequest, SessionFile, StagedFile, WorkspaceEntry } from "../backend.js";
import { BackendError, ValidationError } from "../errors.js";
import type { ExecTransport } from "../exec-runner.js";
import { MAX_COLLECTED_FILES, MAX_LISTED_ENTRIES } from "../executor-scripts.js";
import { assertSafeWorkspacePath, assertUniqueSafePaths } from "../paths.js";
import {
  AgentChannelError,
  Connection,
  agentError,
  attempt as attemptOn,
  isCount,
  jsonFrame,
  parseJson,
  type AgentHello,
  type Call,
  type Started,
} from "./connection.js";
import { listRequest, parseListing, readRequest, uploadRequest } from "./file-requests.js";
import { AgentReplyKind, AgentRequestKind } from "./protocol.js";
import { agentProgram, agentRelayCommand } from "./program.js";
import { runRequest, type AgentExecResult, type StateReset } from "./run-request.js";

export { AgentChannelError, type AgentHello } from "./connection.js";
export type { AgentExecResult, StateReset } from "./run-request.js";

export interface AgentChannelOptions {
  /** Per-file cap for collected, read and written files (the file store's limit). */
  maxFileBytes: number;
  /** CPU seconds per run (RLIMIT_CPU: bash per process, Python per cell); 0 = none (default). */
  cpuSeconds?: number;
  /** Cap on files collected from one run (default MAX_COLLECTED_FILES). */
  maxFiles?: number;
  /** The relay's program (default agentProgram()); host tests point its paths elsewhere. */
  program?: Buffer;
  /** The relay's command line (default agentRelayCommand(program)). */
  command?: string[];
  /** How long opening a channel may take, the agent's start included (default 20 s). */
  openTimeoutMs?: number;
  /**
   * Added to a run's timeout for its answer: the agent's 2 s interrupt grace and the drain
   * (file collection extends it while it progresses). Past it the run ends as timed out
   * (default 6 s).
   */
  runMarginMs?: number;
  /** Deadline of list/ping/reset, and of a read/write/stage without progress (default 30 s). */
  opTimeoutMs?: number;
}

export class AgentChannel {
  private conn: Connection | null = null;
  private opening: Promise<Connection> | null = null;
  private nextId = 1;
  private knownBootId: string | null = null;
  /** Set when the agent we knew is gone: reported once, on the next run's result. */
  private lostState: string | null = null;
  private closedByUser = false;
  private inFlight = 0;
  private lastActivity = Date.now();
  private readonly program: Buffer;
  private readonly command: string[];
  private readonly maxFiles: number;
  private readonly openTimeoutMs: number;
  private readonly runMarginMs: number;
  private readonly opTimeoutMs: number;

  constructor(
    private readonly transport: ExecTransport,
    private readonly opts: AgentChannelOptions,
  ) {
    this.program = opts.program ?? agentProgram();
    this.command = opts.command ?? agentRelayCommand(this.program);
    this.maxFiles = opts.maxFiles ?? MAX_COLLECTED_FILES;
    this.openTimeoutMs = opts.openTimeoutMs ?? 20_000;
    this.runMarginMs = opts.runMarginMs ?? 6_000;
    this.opTimeoutMs = opts.opTimeoutMs ?? 30_000;
  }

  /** The agent this channel talks to (opening the channel when needed). */
  async hello(): Promise<AgentHello> {
    return (await this.connection()).hello as AgentHello;
  }

  private async connection(): Promise<Connection> {
    if (this.closedByUser) throw new AgentChannelError("the channel is closed");
    if (this.conn && !this.conn.closed) return this.conn;
    this.opening ??= (async () => {
      const c = new Connection((gone) => {
        if (this.conn === gone) this.conn = null;
      });
      try {
        const hello = await c.open(this.transport, this.command, this.program, this.openTimeoutMs);
        if (this.knownBootId !== null && (hello.bootId !== this.knownBootId || hello.fresh)) {
          this.lostState ??=
            "the session's agent was restarted (it was killed or crashed): Python state was lost";
        }
        this.knownBootId = hello.bootId;
        this.conn = c;
        return c;
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  private id(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return id;
  }

  /**
   * One request: sends what `start` returns, routes the answers to its `pending`, and fails
   * it at `deadlineMs` (closing the channel: an agent that does not answer is not trusted
   * further). `call.resolve` answers the caller and keeps the request routed until
   * `call.done()` (streamed reads); `settle` does both.
   *
   * A dead channel is reopened transparently, once: when it was found closed before the
   * request went out, or - for `idempotent` requests - when it closed before any answer.
   */
  private async request<T>(
    what: string,
    deadlineMs: number,
    start: (call: Call<T>) => Started,
    idempotent = false,
  ): Promise<T> {
    this.inFlight++;
    this.lastActivity = Date.now();
    try {
      for (let attempt = 0; ; attempt++) {
        const conn = await this.connection();
        const state = { sent: false, heard: false, timedOut: false };
        try {
          return await attemptOn(conn, this.id(), what, deadlineMs, start, state);
        } catch (e) {
          const retry =
            attempt === 0 &&
            e instanceof AgentChannelError &&
            !state.timedOut &&
            (!state.sent || (idempotent && !state.heard));
          if (!retry) throw e;
        }
      }
    } finally {
      this.inFlight--;
      this.lastActivity = Date.now();
    }
  }

  /** Counts an activity that outlives its request (a read's content stream) until released. */
  private hold(): () => void {
    this.inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.inFlight--;
      this.lastActivity = Date.now();
    };
  }

  /** An exec to the agent is open now (a call would make no platform request). */
  get open(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  /** Requests in flight, streamed read contents included. */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** When a request last started or ended (Date.now() milliseconds). */
  get lastUsedAt(): number {
    return this.lastActivity;
  }

  /** Runs Python (in the session's persistent kernel) or bash (a fresh process) in /workspace. */
  async run(req: ExecRequest): Promise<AgentExecResult> {
    if (req.signal?.aborted) throw new BackendError("the request was cancelled");
    const result = await this.request<AgentExecResult>(
      req.language === "bash" ? "running bash" : "running python",
      req.timeoutMs + this.runMarginMs,
      runRequest(req, {
        maxFiles: this.maxFiles,
        maxFileBytes: this.opts.maxFileBytes,
        opTimeoutMs: this.opTimeoutMs,
        cpuSeconds: this.opts.cpuSeconds ?? 0,
      }),
    );
    if (this.lostState !== null && req.language === "python") {
      result.stateReset ??= { reason: this.lostState };
      this.lostState = null;
    }
    return result;
  }

  /** bash, whatever `req.language` says. */
  bash(req: Omit<ExecRequest, "language">): Promise<AgentExecResult> {
    return this.run({ ...req, language: "bash" });
  }

  /** Kills the Python kernel; the next cell starts with an empty namespace. */
  async reset(): Promise<StateReset> {
    const r = await this.simple(AgentRequestKind.reset, {}, "resetting the session", this.opTimeoutMs);
    this.lostState = null;
    return { reason: typeof r.reason === "string" ? r.reason.slice(0, 500) : "reset requested" };
  }

  async ping(): Promise<void> {
    await this.simple(AgentRequestKind.ping, {}, "pinging the session agent", this.opTimeoutMs);
  }

  /** A request answered by one small X (or E). */
  private simple(
    kind: number,
    args: object,
    what: string,
    deadlineMs: number,
  ): Promise<Record<string, unknown>> {
    return this.request<Record<string, unknown>>(
      what,
      deadlineMs,
      ({ id, conn, settle }) => ({
        pending: {
          onFrame: (k, payload) => {
            if (k === AgentReplyKind.result) {
              const r = parseJson(payload);
              if (r) return settle(null, r);
            } else if (k === AgentReplyKind.error) return settle(agentError(payload, what));
            settle(new AgentChannelError(`${what}: the session agent broke the protocol`));
            conn.close(new AgentChannelError("the session agent broke the protocol"));
          },
          fail: (e) => settle(e),
        },
        send: () => conn.send([jsonFrame(kind, id, args)]),
      }),
      kind === AgentRequestKind.ping,
    );
  }

  /** Lists /workspace (files and directories, sorted by path), at most `limit` entries. */
  async list(limit = MAX_LISTED_ENTRIES): Promise<WorkspaceEntry[]> {
    const what = "listing /workspace";
    const raw = await this.request<Buffer>(
      what,
      this.opTimeoutMs,
      listRequest(what, limit, limit * 1100 + 1024),
      true,
    );
    return parseListing(what, raw, limit);
  }

  /**
   * Reads a regular file of at most `maxBytes` (default maxFileBytes). Resolves once its size is
   * known; the content streams after and fails if the agent sends more or less than it said.
   * Flow-controlled per read (a window of READ_WINDOW_BYTES, acknowledged as the reader takes
   * them): a slow reader holds up only its own read.
   */
  async read(path: string, maxBytes = this.opts.maxFileBytes): Promise<SessionFile> {
    assertSafeWorkspacePath(path);
    const what = `reading ${path}`;
    return this.request<SessionFile>(
      what,
      this.opTimeoutMs,
      readRequest(what, path, maxBytes, { opTimeoutMs: this.opTimeoutMs, hold: () => this.hold() }),
      true,
    );
  }

  /** Writes one file atomically (never through a symlink); `content` must hold exactly `size` bytes. */
  async write(
    path: string,
    file: { size: number; content: Readable },
    maxBytes = this.opts.maxFileBytes,
  ): Promise<WorkspaceEntry> {
    assertSafeWorkspacePath(path);
    await this.upload(
      `writing ${path}`,
      AgentRequestKind.write,
      { path, size: file.size, max_bytes: maxBytes },
      [{ size: file.size, open: () => Promise.resolve(file.content) }],
    );
    return { path, kind: "file", sizeBytes: file.size };
  }

  /** Puts several files into /workspace (each written atomically), in one request. */
  async stage(files: readonly StagedFile[], maxBytes = this.opts.maxFileBytes): Promise<void> {
    assertUniqueSafePaths(files.map((f) => f.path));
    await this.upload(
      "staging files",
      AgentRequestKind.stage,
      { files: files.map((f) => ({ path: f.path, size: f.size })), max_bytes: maxBytes },
      files,
    );
  }

  private async upload(
    what: string,
    kind: number,
    header: object,
    files: ReadonlyArray<Pick<StagedFile, "size" | "open">>,
  ): Promise<void> {
    for (const f of files)
      if (!isCount(f.size)) throw new ValidationError(`${what}: a file size must be a non-negative integer`);
    await this.request<void>(
      what,
      this.opTimeoutMs,
      uploadRequest(what, kind, header, files, this.opTimeoutMs),
    );
  }

  /** Ends the channel (the agent and the session's state stay). */
  close(): void {
    this.closedByUser = true;
    this.conn?.close(new AgentChannelError("the channel is closed"));
    this.conn = null;
  }
}
