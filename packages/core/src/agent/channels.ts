/**
 * One AgentChannel per session in this API process, opened on first use, closed on delete,
 * on shutdown, or after `idleMs` without a call (the agent and its state stay in the
 * session; the next call opens a new channel to the same agent).
 */
import type { ExecTransport } from "../exec-runner.js";
import { AgentChannel, type AgentChannelOptions } from "./channel.js";

export interface AgentChannelsOptions extends AgentChannelOptions {
  /** Close a channel unused this long (default: never). */
  idleMs?: number;
}

interface Entry {
  channel: AgentChannel;
  lastUsed: number;
}

const idleSince = (e: Entry): number => Math.max(e.lastUsed, e.channel.lastUsedAt);

export class AgentChannels {
  private readonly entries = new Map<string, Entry>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly transportFor: (sessionId: string) => ExecTransport,
    private readonly opts: AgentChannelsOptions,
  ) {}

  /** The session's channel (created, not yet opened, when there is none). */
  get(sessionId: string): AgentChannel {
    let e = this.entries.get(sessionId);
    if (!e) {
      e = { channel: new AgentChannel(this.transportFor(sessionId), this.opts), lastUsed: Date.now() };
      this.entries.set(sessionId, e);
      this.startSweeper();
    }
    e.lastUsed = Date.now();
    return e.channel;
  }

  /** Closes the session's channel (its session was deleted, or it is idle). */
  close(sessionId: string): void {
    const e = this.entries.get(sessionId);
    if (!e) return;
    this.entries.delete(sessionId);
    e.channel.close();
    if (this.entries.size === 0) this.stopSweeper();
  }

  closeAll(): void {
    for (const id of [...this.entries.keys()]) this.close(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Closes the channels with nothing in flight for `idleMs` (on a timer; exposed for tests). */
  sweep(now = Date.now()): void {
    const idle = this.opts.idleMs;
    if (idle === undefined) return;
    for (const [id, e] of this.entries) if (!e.channel.busy && now - idleSince(e) >= idle) this.close(id);
  }

  private startSweeper(): void {
    const idle = this.opts.idleMs;
    if (idle === undefined || this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(idle, 60_000)));
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}
