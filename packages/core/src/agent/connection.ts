/**
 * One open relay exec to a session's agent (a Connection) and the request plumbing shared by
 * AgentChannel's requests: the routing types, the agent's E answers as typed errors, framing
 * helpers. Everything the agent says is hostile input.
 */
import { PassThrough } from "node:stream";
import {
  BackendError,
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from "../errors.js";
import type { ExecProcess, ExecTransport } from "../exec-runner.js";
import { AGENT_MAX_PAYLOAD, AgentFrameParser, AgentReplyKind, encodeAgentFrame } from "./protocol.js";

/** What the first frames of a channel said. */
export interface AgentHello {
  /** Random per agent process: a different one means the session's state was lost. */
  bootId: string;
  /** The relay had to start the agent (none was answering). */
  fresh: boolean;
}

/** The channel to the agent broke (it was killed, the exec ended, it broke the protocol). */
export class AgentChannelError extends BackendError {}

export interface Call<T> {
  id: number;
  conn: Connection;
  /** Answers the caller; the request stays routed until done(). */
  resolve(value: T): void;
  done(): void;
  /** Moves the deadline to at least `ms` from now (a long transfer that keeps progressing). */
  extend(ms: number): void;
  settle(err: Error | null, value?: T): void;
}

export interface Pending {
  onFrame(kind: number, payload: Buffer): void;
  fail(err: Error): void;
  /** At the deadline: true when the request ended itself (our side was behind, not the agent). */
  onDeadline?(): boolean;
}

/** What a request's start returns: how its answers are handled, and how it is sent. */
export interface Started {
  pending: Pending;
  send: () => Promise<void>;
}

export const MAX_CONTROL_JSON = 4096;
const MAX_RELAY_STDERR = 8192;

export function parseJson(payload: Buffer, max = MAX_CONTROL_JSON): Record<string, unknown> | null {
  if (payload.length > max) return null;
  try {
    const v: unknown = JSON.parse(payload.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export const isCount = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** An "E" answer as a typed error (`what` says which operation, for the message). */
export function agentError(payload: Buffer, what: string): Error {
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
export class Connection {
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
export function chunkFrames(kind: number, id: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += AGENT_MAX_PAYLOAD)
    out.push(encodeAgentFrame(kind, id, data.subarray(i, i + AGENT_MAX_PAYLOAD)));
  return out;
}

export const jsonFrame = (kind: number, id: number, v: unknown): Buffer =>
  encodeAgentFrame(kind, id, Buffer.from(JSON.stringify(v), "utf8"));

/**
 * One try of a request on `conn` under request id `id`: routes its answers to what `start`
 * returns and fails it at the deadline (closing the connection: an agent that does not answer
 * is not trusted further) unless the request's onDeadline says it ended itself. `state` tells
 * the caller whether it went out and whether anything came back (for the one retry).
 */
export function attempt<T>(
  conn: Connection,
  id: number,
  what: string,
  deadlineMs: number,
  start: (call: Call<T>) => Started,
  state: { sent: boolean; heard: boolean; timedOut: boolean },
): Promise<T> {
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
