/**
 * The exec and file calls of sessions, over each session's resident agent (one channel per
 * session per API process): the per-call checks (lookup, or the resource this process already
 * holds while its channel is open), activity recording, Python cells serialised per session,
 * failures reported as typed errors. Used by SessionBackend.
 */
import type { Readable } from "node:stream";
import type { ExecRequest, ExecResult, Scope, SessionFile, WorkspaceEntry } from "../backend.js";
import { SessionNotFoundError, type CodeInterpreterError, type SessionExhaustedError } from "../errors.js";
import type { AgentChannel } from "../agent/channel.js";
import { AgentChannels } from "../agent/channels.js";
import { isExpired } from "../lifetime.js";
import { isSessionId } from "../naming.js";
import { assertSafeWorkspacePath } from "../paths.js";
import { inScope, lifetimeOf } from "../session.js";
import { exhaustionError } from "./exhaustion.js";
import { callFailure, probeExhausted } from "./failures.js";
import { KeyedMutex } from "./keyed-mutex.js";
import type { PlatformResource, SessionPlatform } from "./platform.js";
import type { Loaded, SessionStore } from "./session-store.js";
import { validateFileWrite } from "./validation.js";

export interface SessionCallsOptions {
  maxFileBytes: number;
  cpuSeconds: number;
  agentChannelIdleMs: number;
  now: () => number;
}

export class SessionCalls {
  /**
   * Serialises the Python cells of one session in this API process: a second concurrent cell
   * waits for the first (the agent itself answers 409 to a second cell arriving from another
   * API process). Bash and file operations run concurrently: the agent handles them.
   */
  private readonly calls = new KeyedMutex();
  /** One channel per session to its resident agent (opened on first use). */
  private readonly channels: AgentChannels;
  /** The resource each channel was opened for (its transport). */
  private readonly resources = new Map<string, PlatformResource>();

  constructor(
    private readonly platform: SessionPlatform,
    private readonly store: SessionStore,
    private readonly o: SessionCallsOptions,
  ) {
    this.channels = new AgentChannels(
      (id) => {
        const r = this.resources.get(id);
        if (!r) throw new SessionNotFoundError(id);
        return this.platform.transport(r);
      },
      { maxFileBytes: o.maxFileBytes, cpuSeconds: o.cpuSeconds, idleMs: o.agentChannelIdleMs },
    );
  }

  /** The session's agent channel (a new one when the resource changed, e.g. recreated). */
  channel(r: PlatformResource): AgentChannel {
    const known = this.resources.get(r.name);
    if (known && known.handle !== r.handle) this.channels.close(r.name);
    this.resources.set(r.name, r);
    return this.channels.get(r.name);
  }

  /**
   * The checks of a session call. While this process's channel to the session's agent is
   * open, the resource this process found when it opened it is used (its tags cannot change;
   * a removed or stopped session breaks the channel, and the next call looks it up again):
   * the hot path makes no platform request. Otherwise, the store's lookup.
   */
  private async loadForCall(id: string, scope: Scope | undefined): Promise<Loaded> {
    const r = this.resources.get(id);
    if (r && this.channels.get(id).open) {
      const info = this.store.view(r);
      if (info && inScope(info, scope) && !isExpired(lifetimeOf(info), this.o.now())) return { r, info };
    }
    return this.store.load(id, scope, false);
  }

  forget(id: string): void {
    this.channels.close(id);
    this.resources.delete(id);
  }

  async exec(id: string, req: ExecRequest, scope?: Scope): Promise<ExecResult> {
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    const go = async (): Promise<ExecResult> => {
      const s = await this.loadForCall(id, scope);
      try {
        const ch = this.channel(s.r);
        this.store.touch(s);
        const { resetState, ...run } = req;
        const reset = resetState ? await ch.reset() : null;
        const result = await ch.run(run);
        // The program never ran (no exit status, no timeout): was there no process slot for it?
        const neverRan = result.exitCode === null && !result.timedOut && !result.stateReset;
        const exhausted = exhaustionError(id, result) ?? (neverRan ? await this.probe(s.r, id) : null);
        if (exhausted) throw exhausted;
        return { ...result, stateReset: result.stateReset ?? reset ?? null };
      } catch (err) {
        throw await this.fail(err, s.r, id, "running code in the session");
      }
    };
    // Python cells of one session run one after another; bash commands run side by side.
    return req.language === "python" || req.resetState ? this.calls.run(id, go) : go();
  }

  async write(
    id: string,
    path: string,
    file: { size: number; content: Readable },
    scope?: Scope,
  ): Promise<WorkspaceEntry> {
    validateFileWrite(path, file.size, this.o.maxFileBytes);
    if (!isSessionId(id)) throw new SessionNotFoundError(String(id));
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).write(path, file, this.o.maxFileBytes);
    } catch (err) {
      throw await this.fail(err, s.r, id, "writing the file");
    }
  }

  async read(id: string, path: string, scope?: Scope): Promise<SessionFile> {
    assertSafeWorkspacePath(path);
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).read(path, this.o.maxFileBytes);
    } catch (err) {
      throw await this.fail(err, s.r, id, "reading the file");
    }
  }

  async list(id: string, scope?: Scope): Promise<WorkspaceEntry[]> {
    const s = await this.loadForCall(id, scope);
    try {
      this.store.touch(s);
      return await this.channel(s.r).list();
    } catch (err) {
      throw await this.fail(err, s.r, id, "listing the workspace");
    }
  }

  closeAll(): void {
    this.channels.closeAll();
    this.resources.clear();
  }

  private fail(err: unknown, r: PlatformResource, id: string, what: string): Promise<CodeInterpreterError> {
    return callFailure(this.platform, err, r, id, what);
  }

  private probe(r: PlatformResource, id: string): Promise<SessionExhaustedError | null> {
    return probeExhausted(this.platform, r, id);
  }
}
