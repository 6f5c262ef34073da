/**
 * MAX_SESSIONS. The count comes from the backend (so it covers every replica's sessions) plus
 * the creations this process has admitted but not finished; admission is serialized with a
 * mutex, so concurrent creates here can never overshoot, while the slow part (starting the
 * container/pod) still runs in parallel.
 */
import { Mutex } from "async-mutex";
import { CapacityError } from "@code-interpreter/core";

export class SessionSlots {
  private readonly mutex = new Mutex();
  private readonly pending = new Map<string, number>();

  constructor(private readonly max: number) {}

  /**
   * Admits one creation for `key` (the owner, or "*" for a global limit) or throws
   * CapacityError (429). Call the returned function once the creation has finished or failed.
   */
  async admit(key: string, countExisting: () => Promise<number>): Promise<() => void> {
    if (this.max <= 0) return () => undefined;
    return this.mutex.runExclusive(async () => {
      const inFlight = this.pending.get(key) ?? 0;
      const existing = await countExisting();
      if (existing + inFlight >= this.max) {
        throw new CapacityError(
          `session limit reached (${this.max}, MAX_SESSIONS): delete a session or wait for one to expire`,
        );
      }
      this.pending.set(key, inFlight + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const n = (this.pending.get(key) ?? 1) - 1;
        if (n <= 0) this.pending.delete(key);
        else this.pending.set(key, n);
      };
    });
  }
}
