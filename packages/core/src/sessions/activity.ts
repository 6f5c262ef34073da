/**
 * What the layer knows about each session's mutable state without asking the platform: the
 * state it wrote or read last (a cache), and activity recorded in memory. Activity reaches
 * the platform debounced — at most once per write interval per session, and never on the
 * latency path of the call that was active (fire-and-forget, failures logged); a trailing
 * write makes sure the last activity of a burst is stored too.
 */
import type { Logger } from "../backend.js";
import type { SessionState } from "../session.js";

/** Longest wait between activity writes of a busy session. */
export const ACTIVITY_WRITE_MAX_INTERVAL_MS = 30_000;
/** Write interval of sessions without an idle timeout (last activity is informative only). */
export const ACTIVITY_WRITE_NO_IDLE_INTERVAL_MS = 5 * 60_000;

/** How often activity of a session with this idle timeout is written: min(idle / 4, 30 s). */
export function activityWriteIntervalMs(idleTimeoutSeconds: number | null): number {
  if (!idleTimeoutSeconds) return ACTIVITY_WRITE_NO_IDLE_INTERVAL_MS;
  return Math.min(ACTIVITY_WRITE_MAX_INTERVAL_MS, Math.floor((idleTimeoutSeconds * 1000) / 4));
}

interface Entry {
  /** Best known state: max of what was read, written and recorded. */
  state: SessionState;
  /** lastActiveAt last handed to the platform (or read from it). */
  storedActiveAt: number;
  timer: NodeJS.Timeout | null;
  writing: Promise<void> | null;
  /** The last writer given to touch(), for the trailing and closing writes. */
  write: ((lastActiveAt: number) => Promise<void>) | null;
}

const maxOf = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b);

export function mergeState(a: SessionState | undefined, b: SessionState | undefined): SessionState {
  const out: SessionState = {};
  const e = maxOf(a?.expiresAt, b?.expiresAt);
  const l = maxOf(a?.lastActiveAt, b?.lastActiveAt);
  if (e !== undefined) out.expiresAt = e;
  if (l !== undefined) out.lastActiveAt = l;
  return out;
}

export class StateCache {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  get(id: string): SessionState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Remembers state read from (or written to) the platform. */
  stored(id: string, state: SessionState): SessionState {
    const e = this.entry(id);
    e.state = mergeState(e.state, state);
    e.storedActiveAt = Math.max(e.storedActiveAt, state.lastActiveAt ?? 0);
    return e.state;
  }

  /**
   * Records activity now. `write` stores it on the platform; it is called right away when the
   * stored value is older than `intervalMs`, otherwise once that interval has passed.
   */
  touch(id: string, intervalMs: number, write: (lastActiveAt: number) => Promise<void>): void {
    if (this.closed) return;
    const e = this.entry(id);
    const now = this.now();
    e.state = mergeState(e.state, { lastActiveAt: now });
    e.write = write;
    if (e.writing || e.timer) return; // the running or scheduled write picks this up
    const due = e.storedActiveAt + intervalMs - now;
    if (due <= 0) this.flush(id, e, write, intervalMs);
    else {
      e.timer = setTimeout(() => {
        e.timer = null;
        this.flush(id, e, write, intervalMs);
      }, due);
      e.timer.unref();
    }
  }

  private flush(
    id: string,
    e: Entry,
    write: (at: number) => Promise<void>,
    intervalMs: number,
    closing = false,
  ): void {
    const at = e.state.lastActiveAt ?? 0;
    if (at <= e.storedActiveAt || (this.closed && !closing)) return;
    e.writing = write(at)
      .then(() => {
        e.storedActiveAt = Math.max(e.storedActiveAt, at);
      })
      .catch((err: unknown) =>
        this.logger.warn({ sessionId: id, err: String(err) }, "recording session activity failed"),
      )
      .finally(() => {
        e.writing = null;
        // Activity that arrived while writing: schedule it (touch with no new activity).
        if ((e.state.lastActiveAt ?? 0) > e.storedActiveAt && !this.closed && this.entries.get(id) === e) {
          this.touchPending(id, e, write, intervalMs);
        }
      });
  }

  private touchPending(id: string, e: Entry, write: (at: number) => Promise<void>, intervalMs: number): void {
    if (e.timer) return;
    e.timer = setTimeout(
      () => {
        e.timer = null;
        this.flush(id, e, write, intervalMs);
      },
      Math.max(0, e.storedActiveAt + intervalMs - this.now()),
    );
    e.timer.unref();
  }

  /** Forgets a session (deleted, reaped, found gone). */
  forget(id: string): void {
    const e = this.entries.get(id);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(id);
  }

  /**
   * Stops every timer, writes activity that was still waiting for its interval, and waits for
   * the writes in flight. Nothing is written afterwards.
   */
  async close(): Promise<void> {
    this.closed = true;
    const writing: Array<Promise<void>> = [];
    for (const [id, e] of this.entries) {
      if (e.timer) clearTimeout(e.timer);
      e.timer = null;
      if (!e.writing && e.write) this.flush(id, e, e.write, 0, true);
      if (e.writing) writing.push(e.writing);
    }
    await Promise.allSettled(writing);
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      e = { state: {}, storedActiveAt: 0, timer: null, writing: null, write: null };
      this.entries.set(id, e);
    }
    return e;
  }
}
