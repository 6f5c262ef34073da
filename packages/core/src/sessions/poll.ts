/**
 * The one poll helper: asks `check` until it returns a value (anything but undefined), the
 * time is up or the signal aborts. Waits grow from `intervalMs` by `backoff` up to
 * `maxIntervalMs`. Used where a platform has no "wait until" call of its own (a pod's phase).
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface PollOptions {
  /** Give up after this long (then `onTimeout` decides what is thrown). */
  timeoutMs: number;
  /** First wait between checks. @default 100 */
  intervalMs?: number;
  /** Growth factor of the wait. @default 1 */
  backoff?: number;
  /** Largest wait between checks. @default intervalMs */
  maxIntervalMs?: number;
  signal?: AbortSignal;
}

export class PollTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no result after ${timeoutMs} ms`);
    this.name = "PollTimeoutError";
  }
}

/** Resolves with the first defined result of `check`; rejects with PollTimeoutError or the abort reason. */
export async function poll<T>(check: () => Promise<T | undefined>, opts: PollOptions): Promise<T> {
  const started = Date.now();
  let interval = opts.intervalMs ?? 100;
  const max = opts.maxIntervalMs ?? interval;
  for (;;) {
    opts.signal?.throwIfAborted();
    const v = await check();
    if (v !== undefined) return v;
    const left = opts.timeoutMs - (Date.now() - started);
    if (left <= 0) throw new PollTimeoutError(opts.timeoutMs);
    await sleep(Math.max(1, Math.min(interval, left)), undefined, { signal: opts.signal });
    interval = Math.min(max, Math.round(interval * (opts.backoff ?? 1)));
  }
}
