/**
 * AgentChannel: the API's end of a session's resident agent. ONE long-lived exec (the relay)
 * per session per API process carries every request as frames, so a call costs no platform
 * request once the channel is open. Everything the agent says is hostile input: output is
 * capped, files checked (count, size, path), one final answer per request, a deadline on every
 * request; a channel that breaks a rule is closed and the next call opens a new one.
 */
import { PassThrough, type Readable } from "node:stream";
import type {
  ExecRequest,
  ExecResult,
  ProducedFile,
  SessionFile,
  StagedFile,
  StateReset,
  WorkspaceEntry,
} from "../backend.js";
import {
  BackendError,
  CodeInterpreterError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "../errors.js";
import { extractFiles, ProtocolViolation, type ExecProcess, type ExecTransport } from "../exec-runner.js";
import { MAX_COLLECTED_FILES, MAX_LISTED_ENTRIES } from "../executor-scripts.js";
import { OutputLimiter } from "../output.js";
import { assertSafeWorkspacePath, assertUniqueSafePaths, isSafeWorkspacePath } from "../paths.js";
import {
  AGENT_MAX_PAYLOAD,
  AgentFrameParser,
  AgentReplyKind,
  AgentRequestKind,
  encodeAgentFrame,
} from "./protocol.js";
import { agentProgram, agentRelayCommand } from "./program.js";

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

/** What the first frames of a channel said. */
export interface AgentHello {
  /** Random per agent process: a different one means the session's state was lost. */
  bootId: string;
  /** The relay had to start the agent (none was answering). */
  fresh: boolean;
}

export type { StateReset };

export type AgentExecResult = ExecResult & { stateReset?: StateReset };

/** The channel to the agent broke (it was killed, the exec ended, it broke the protocol). */
export class AgentChannelError extends BackendError {}

interface Call<T> {
  id: number;
  conn: Connection;
  /** Answers the caller; the request stays routed until done(). */
  resolve(value: T): void;
  done(): void;
  /** Moves the deadline to at least `ms` from now (a long transfer that keeps progressing). */
  extend(ms: number): void;
  settle(err: Error | null, value?: T): void;
}

interface Pending {
  onFrame(kind: number, payload: Buffer): void;
  fail(err: Error): void;
  /** At the deadline: true when the request ended itself (our side was behind, not the agent). */
  onDeadline?(): boolean;
}

const MAX_CONTROL_JSON = 4096;
/** A read runs at most this far ahead of its reader (the agent waits for acks). */
const READ_WINDOW_BYTES = 1 << 20;
/** Collected files run at most this far ahead of the file store. */
const FILES_WINDOW_BYTES = 1 << 20;
const MAX_RELAY_STDERR = 8192;

function parseJson(payload: Buffer, max = MAX_CONTROL_JSON): Record<string, unknown> | null {
  if (payload.length > max) return null;
  try {
    const v: unknown = JSON.parse(payload.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** An "E" answer as a typed error (`what` says which operation, for the message). */
function agentError(payload: Buffer, what: string): Error {
  const e = parseJson(payload);
  const code = typeof e?.error === "string" ? e.error : "failed";
  const detail = typeof e?.detail === "string" ? e.detail.slice(0, 1000) : "";
  const why = detail ? `: ${detail}` : "";
  switch (code) {
    case "missing":
      return new NotFoundError(`${what}: no such file`);
    case "refused":
      return what.startsWith("reading")
        ? new NotFoundError(`${what}${why}`)
        : new ConflictError(`${what}: refused${why}`);
    case "too_large":
      return new PayloadTooLargeError(`${what}${why}`);
    case "no_space":
      return new PayloadTooLargeError(`${what}: no space left in /workspace`);
    case "busy":
      return new ConflictError(`${what}: ${detail || "busy"}`);
    case "bad_request":
      return new ValidationError(`${what}: the agent refused the request${why}`);
    case "cancelled":
      return new BackendError(`${what} was cancelled`);
    default:
      return new BackendError(`${what} failed${why}`);
  }
}

/** One open relay exec and the requests in flight on it. */
class Connection {
  readonly pending = new Map<number, Pending>();
  readonly stdin = new PassThrough();
  closed = false;
  hello: AgentHello | null = null;
  private stderr: Buffer[] = [];
  private stderrBytes = 0;
  private readonly parser: AgentFrameParser;
  private helloWaiter: { resolve: (h: AgentHello) => void; reject: (e: Error) => void } | null = null;
  private proc: ExecProcess | null = null;

  constructor(private readonly onClose: (c: Connection) => void) {
    this.parser = new AgentFrameParser(
      (kind, id, payload) => this.onFrame(kind, id, payload),
      (reason) => this.close(new AgentChannelError(`the session agent broke the protocol (${reason})`)),
    );
  }

  async open(t: ExecTransport, command: string[], program: Buffer, timeoutMs: number): Promise<AgentHello> {
    const hello = new Promise<AgentHello>((resolve, reject) => {
      this.helloWaiter = { resolve, reject };
    });
    // Awaited below, unless the exec itself fails first: then close() rejects it unawaited.
    hello.catch(() => undefined);
    const timer = setTimeout(
      () =>
        this.close(
          new AgentChannelError(`the session agent did not answer within ${Math.round(timeoutMs / 1000)} s`),
        ),
      timeoutMs,
    );
    try {
      this.stdin.write(program);
      const proc = await t.exec(command, { stdin: this.stdin });
      this.proc = proc;
      if (this.closed) proc.destroy();
      proc.stdout.on("data", (b: Buffer) => this.parser.push(b));
      proc.stderr.on("data", (b: Buffer) => {
        if (this.stderrBytes < MAX_RELAY_STDERR) this.stderr.push(b);
        this.stderrBytes += b.length;
      });
      proc.stdout.on("error", () => undefined);
      proc.stderr.on("error", () => undefined);
      proc.stdout.on("end", () => this.close(this.gone()));
      proc.done.then(
        () => this.close(this.gone()),
        () => this.close(this.gone()),
      );
      return await hello;
    } catch (e) {
      this.close(e instanceof Error ? e : new AgentChannelError(String(e)));
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private gone(): AgentChannelError {
    const why = Buffer.concat(this.stderr).toString("utf8").trim().slice(0, 2000);
    return new AgentChannelError(
      `the channel to the session agent closed (the agent or its relay was killed, or the session ended)${why ? `: ${why}` : ""}`,
    );
  }

  private onFrame(kind: number, id: number, payload: Buffer): void {
    if (this.hello === null) {
      const h = kind === AgentReplyKind.hello && id === 0 ? parseJson(payload) : null;
      const bootId = h?.boot_id;
      if (typeof bootId !== "string" || !/^[0-9a-f]{1,64}$/.test(bootId) || typeof h?.fresh !== "boolean")
        return this.parser.fail("no well-formed hello first");
      this.hello = { bootId, fresh: h.fresh };
      this.helloWaiter?.resolve(this.hello);
      this.helloWaiter = null;
      return;
    }
    // Late frames of a request that is over (cancelled, timed out) are dropped.
    this.pending.get(id)?.onFrame(kind, payload);
  }

  /** Sends frames, waiting while the transport is behind. */
  async send(frames: Buffer[]): Promise<void> {
    for (const f of frames) {
      if (this.closed) throw this.gone();
      if (!this.stdin.write(f)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.stdin.off("drain", done);
            this.stdin.off("close", done);
            resolve();
          };
          this.stdin.on("drain", done);
          this.stdin.on("close", done);
        });
      }
    }
  }

  /** Best effort, never throws (cancel frames). */
  sendQuiet(frame: Buffer): void {
    if (!this.closed) this.stdin.write(frame);
  }

  close(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.helloWaiter?.reject(err);
    this.helloWaiter = null;
    for (const p of [...this.pending.values()]) p.fail(err);
    this.pending.clear();
    this.stdin.end();
    this.stdin.destroy();
    this.proc?.destroy();
    this.onClose(this);
  }
}

/** Splits data into frames of at most AGENT_MAX_PAYLOAD bytes. */
function chunkFrames(kind: number, id: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += AGENT_MAX_PAYLOAD)
    out.push(encodeAgentFrame(kind, id, data.subarray(i, i + AGENT_MAX_PAYLOAD)));
  return out;
}

const jsonFrame = (kind: number, id: number, v: unknown): Buffer =>
  encodeAgentFrame(kind, id, Buffer.from(JSON.stringify(v), "utf8"));

/** A listing row as the agent sends it; anything else is dropped. */
function listingRow(v: unknown): WorkspaceEntry | null {
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [path, kind, size] = v as [unknown, unknown, unknown];
  if (!isSafeWorkspacePath(path) || (kind !== "file" && kind !== "directory") || !isCount(size)) return null;
  return { path, kind, sizeBytes: kind === "directory" ? 0 : size };
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
    start: (call: Call<T>) => { pending: Pending; send: () => Promise<void> },
    idempotent = false,
  ): Promise<T> {
    this.inFlight++;
    this.lastActivity = Date.now();
    try {
      for (let attempt = 0; ; attempt++) {
        const conn = await this.connection();
        const state = { sent: false, heard: false, timedOut: false };
        try {
          return await this.attempt(conn, what, deadlineMs, start, state);
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

  private attempt<T>(
    conn: Connection,
    what: string,
    deadlineMs: number,
    start: (call: Call<T>) => { pending: Pending; send: () => Promise<void> },
    state: { sent: boolean; heard: boolean; timedOut: boolean },
  ): Promise<T> {
    const id = this.id();
    return new Promise<T>((resolve, reject) => {
      const timer: { handle?: NodeJS.Timeout } = {};
      const done = () => {
        clearTimeout(timer.handle);
        timer.handle = undefined;
        conn.pending.delete(id);
      };
      let deadlineAt = Date.now() + deadlineMs;
      const onDeadline = () => {
        if (pending.onDeadline?.()) return done();
        state.timedOut = true;
        pending.fail(
          new AgentChannelError(
            `${what}: the session agent did not answer within ${Math.round((deadlineAt - started) / 1000)} s`,
          ),
        );
        conn.close(new AgentChannelError("the session agent stopped answering"));
      };
      const started = Date.now();
      const call: Call<T> = {
        id,
        conn,
        resolve,
        done,
        extend: (ms) => {
          const at = Date.now() + ms;
          if (at <= deadlineAt || !timer.handle) return;
          deadlineAt = at;
          clearTimeout(timer.handle);
          timer.handle = setTimeout(onDeadline, at - Date.now());
        },
        settle: (err, value) => {
          done();
          if (err) reject(err);
          else resolve(value as T);
        },
      };
      const { pending, send } = start(call);
      conn.pending.set(id, {
        onFrame: (kind, payload) => {
          state.heard = true;
          pending.onFrame(kind, payload);
        },
        fail: (e) => pending.fail(e),
      });
      timer.handle = setTimeout(onDeadline, deadlineMs);
      if (conn.closed) {
        pending.fail(new AgentChannelError(`${what}: the channel to the session agent is closed`));
        return;
      }
      state.sent = true;
      send().catch((e: unknown) => pending.fail(e instanceof Error ? e : new AgentChannelError(String(e))));
    });
  }

  /** Runs Python (in the session's persistent kernel) or bash (a fresh process) in /workspace. */
  async run(req: ExecRequest): Promise<AgentExecResult> {
    if (req.signal?.aborted) throw new BackendError("the request was cancelled");
    const sink = req.collectFiles;
    const forwardLimit = req.maxOutputBytes + 1;
    const maxFileBytes = this.opts.maxFileBytes;
    const maxTar = this.maxFiles * (maxFileBytes + 512 + 4096) + 2 * 10240;
    const kind = req.language === "bash" ? AgentRequestKind.bash : AgentRequestKind.python;
    const args = {
      code: req.code,
      stdin: req.stdin ?? "",
      timeout_ms: Math.max(1, Math.floor(req.timeoutMs)),
      interactive: req.language === "python" && req.lastLineInteractive !== false,
      collect: !!sink,
      forward_limit: forwardLimit,
      max_files: this.maxFiles,
      max_bytes: maxFileBytes,
      files_window: FILES_WINDOW_BYTES,
      cpu_seconds: Math.max(0, Math.floor(this.opts.cpuSeconds ?? 0)),
    };
    const started = Date.now();
    const result = await this.request<AgentExecResult>(
      req.language === "bash" ? "running bash" : "running python",
      req.timeoutMs + this.runMarginMs,
      ({ id, conn, settle, extend }) => {
        const out = new OutputLimiter(req.maxOutputBytes);
        const err = new OutputLimiter(req.maxOutputBytes);
        const got = { out: 0, err: 0, tar: 0 };
        /** Collected bytes acknowledged to the agent, and delivered but not acknowledged. */
        let tarTaken = 0;
        let tarUnacked = 0;
        const tarAck = () => {
          if (tarUnacked === 0) return;
          const n = Buffer.alloc(4);
          n.writeUInt32BE(tarUnacked);
          tarTaken += tarUnacked;
          tarUnacked = 0;
          conn.sendQuiet(encodeAgentFrame(AgentRequestKind.ack, id, n));
        };
        let tar: PassThrough | null = null;
        let collecting: Promise<ProducedFile[]> | null = null;
        let onAbort: (() => void) | undefined;
        const cleanup = () => {
          if (onAbort) req.signal?.removeEventListener("abort", onAbort);
        };
        const violation = (why: string) => {
          cleanup();
          tar?.destroy();
          const note = `[code-interpreter] the run was stopped: the session agent broke the protocol (${why})`;
          settle(null, {
            stdout: out.text(),
            stderr: err.text() + (err.text() ? "\n" : "") + note,
            exitCode: null,
            timedOut: false,
            durationMs: Date.now() - started,
            files: [],
          });
          conn.close(new AgentChannelError(`the session agent broke the protocol (${why})`));
        };
        const emit = (limiter: OutputLimiter, stream: "stdout" | "stderr", b: Buffer) => {
          const text = limiter.push(b);
          if (text && req.onOutput) req.onOutput({ stream, data: text });
        };
        if (req.signal) {
          onAbort = () => conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
          req.signal.addEventListener("abort", onAbort, { once: true });
        }
        let answered = false;
        const pending: Pending = {
          onFrame: (k, payload) => {
            if (answered) return violation("frames after the result");
            if (k === AgentReplyKind.stdout || k === AgentReplyKind.stderr) {
              const key = k === AgentReplyKind.stdout ? "out" : "err";
              got[key] += payload.length;
              if (got[key] > forwardLimit)
                return violation(`more ${key === "out" ? "stdout" : "stderr"} than asked for`);
              emit(key === "out" ? out : err, key === "out" ? "stdout" : "stderr", payload);
            } else if (k === AgentReplyKind.files) {
              if (!sink) return violation("files were sent but none were asked for");
              got.tar += payload.length;
              if (got.tar > maxTar) return violation("too many collected bytes");
              if (!tar) {
                tar = new PassThrough();
                tar.on("error", () => undefined);
                tar.on("drain", tarAck);
                collecting = extractFiles(tar, sink, { maxFiles: this.maxFiles, maxFileBytes });
                collecting.catch((e: unknown) => {
                  if (e instanceof ProtocolViolation) violation(e.message);
                  // The file store failed: the agent stops collecting (it waits for acks).
                  else conn.sendQuiet(encodeAgentFrame(AgentRequestKind.cancel, id));
                });
              }
              if (got.tar - tarTaken > FILES_WINDOW_BYTES + AGENT_MAX_PAYLOAD)
                return violation("collected files beyond the window");
              tarUnacked += payload.length;
              extend(this.opTimeoutMs); // collection may outlast the run's deadline while it progresses
              if (!tar.destroyed && tar.write(payload)) tarAck();
            } else if (k === AgentReplyKind.result) {
              const r = parseJson(payload);
              const code = r?.exit_code;
              if (
                r === null ||
                !(
                  code === null ||
                  (Number.isInteger(code) && (code as number) >= 0 && (code as number) <= 512)
                ) ||
                typeof r.timed_out !== "boolean" ||
                !isCount(r.duration_ms)
              )
                return violation("a malformed result");
              const reset =
                r.state_reset === true
                  ? {
                      reason:
                        typeof r.reason === "string" ? r.reason.slice(0, 500) : "the Python state was lost",
                    }
                  : undefined;
              answered = true;
              cleanup();
              (tar as PassThrough | null)?.end();
              const done = (files: ProducedFile[]) =>
                settle(null, {
                  stdout: out.text(),
                  stderr: err.text(),
                  exitCode: code as number | null,
                  timedOut: r.timed_out as boolean,
                  durationMs: r.duration_ms as number,
                  files,
                  ...(reset ? { stateReset: reset } : {}),
                });
              if (!collecting) return done([]);
              // Files stay in the pending map until extracted: late violations still count.
              (collecting as Promise<ProducedFile[]>).then(done, (e: unknown) => {
                if (!(e instanceof ProtocolViolation))
                  settle(new BackendError(`collecting output files failed: ${(e as Error).message}`));
              });
            } else if (k === AgentReplyKind.error) {
              cleanup();
              tar?.destroy();
              settle(agentError(payload, req.language === "bash" ? "running bash" : "running python"));
            } else violation(`an unexpected frame kind 0x${k.toString(16)}`);
          },
          fail: (e) => {
            cleanup();
            tar?.destroy();
            settle(e);
          },
          onDeadline: () => {
            // The agent (or the platform stream under it) stopped answering: the call ends as
            // a timeout with what arrived, and the channel is closed (the next call reopens it;
            // the agent, which ends the cell at its own deadline, keeps the state).
            if (answered) return false;
            answered = true;
            cleanup();
            tar?.destroy();
            const note = `[code-interpreter] the session agent did not answer in time; the run was abandoned`;
            settle(null, {
              stdout: out.text(),
              stderr: err.text() + (err.text() ? "\n" : "") + note,
              exitCode: null,
              timedOut: true,
              durationMs: Date.now() - started,
              files: [],
            });
            conn.close(new AgentChannelError("the session agent stopped answering"));
            return true;
          },
        };
        const body = Buffer.from(JSON.stringify(args), "utf8");
        // Too large for one frame (long code or stdin): a header, then the JSON in chunks.
        const frames =
          body.length <= AGENT_MAX_PAYLOAD
            ? [encodeAgentFrame(kind, id, body)]
            : [
                jsonFrame(kind, id, { body_bytes: body.length }),
                ...chunkFrames(AgentRequestKind.chunk, id, body),
              ];
        return { pending, send: () => conn.send(frames) };
      },
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
    const maxBytes = limit * 1100 + 1024;
    const raw = await this.request<Buffer>(
      what,
      this.opTimeoutMs,
      ({ id, conn, settle }) => {
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
      },
      true,
    );
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
      (call) => {
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
          call.extend(this.opTimeoutMs);
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
                const release = this.hold();
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
                if (got - taken > READ_WINDOW_BYTES + AGENT_MAX_PAYLOAD)
                  return bad("more bytes than the window");
                unacked += payload.length;
                call.extend(this.opTimeoutMs);
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
                new BackendError(
                  `${what}: the reader took nothing for ${Math.round(this.opTimeoutMs / 1000)} s`,
                ),
              );
              return true;
            },
          },
          send: () =>
            conn.send([
              jsonFrame(AgentRequestKind.read, id, { path, max_bytes: maxBytes, window: READ_WINDOW_BYTES }),
            ]),
        };
      },
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
    await this.request<void>(what, this.opTimeoutMs, (call) => {
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
            new ValidationError(
              `${what}: the upload sent nothing for ${Math.round(this.opTimeoutMs / 1000)} s`,
            ),
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
              call.extend(this.opTimeoutMs);
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
    });
  }

  /** Ends the channel (the agent and the session's state stay). */
  close(): void {
    this.closedByUser = true;
    this.conn?.close(new AgentChannelError("the channel is closed"));
    this.conn = null;
  }
}
