import { idleWait } from './idle-waits.js';

/** Clock seam: tests drive it with @sinonjs/fake-timers through the globals. */
export interface Clock {
  now(): number;
  /** Resolves after ms; may resolve early once `signal` aborts (sleepUnless then rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      // an interrupted hour-long wait must not leave its timer holding the process
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** A wait for the rate budget or a retry that was cut short because the collector is stopping. */
export class WaitInterruptedError extends Error {
  constructor() {
    super('wait interrupted: stopping');
    this.name = 'WaitInterruptedError';
  }
}

/**
 * clock.sleep(ms) that rejects with WaitInterruptedError as soon as `signal` aborts: a shutdown
 * must not sit out an hourly budget or a long Retry-After. The clock gets the signal too, so that
 * the system clock clears its timer. A poll sleeping here gives up its scheduler slot (idleWait).
 */
export function sleepUnless(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return idleWait(() => clock.sleep(ms));
  if (signal.aborted) return Promise.reject(new WaitInterruptedError());
  return idleWait(() => sleepOrAbort(clock, ms, signal));
}

function sleepOrAbort(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(new WaitInterruptedError());
    signal.addEventListener('abort', onAbort, { once: true });
    clock.sleep(ms, signal).then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}

export type ApiFamily = 'standard' | 'export' | 'hunting';

/**
 * Documented limits (defender-api.md §3–§6), paced a little below so that network latency between
 * our send time and Defender's count never tips a window over: 100/min & 1 500/h for the OData
 * APIs, 30/min & 1 000/h for the export-assessment APIs.
 */
export const familyLimits: Record<ApiFamily, { perMinute: number; perHour: number }> = {
  standard: { perMinute: 98, perHour: 1480 },
  export: { perMinute: 29, perHour: 990 },
  // Advanced hunting (Graph runHuntingQuery): "at least 45 calls per minute per tenant"; the
  // Defender for Endpoint hunting API it replaces documented 45/min and 1 500/h.
  hunting: { perMinute: 43, perHour: 1480 },
};

const minute = 60_000;
const hour = 3_600_000;

/**
 * A sliding-window budget: at most perMinute calls in any 60 s and perHour in any hour, counted at
 * the moment a call is let through. Callers queue in order; no call is ever let through early.
 */
export class RateBudget {
  private readonly sent: number[] = [];
  private queue: Promise<void> = Promise.resolve();
  /** callers in acquire(), the one being served included */
  private queued = 0;

  constructor(
    readonly perMinute: number,
    readonly perHour: number,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Resolves when one more call fits in both windows; the call is counted then. Rejects with
   * WaitInterruptedError when `signal` aborts first (the callers behind it keep their turn).
   */
  acquire(signal?: AbortSignal): Promise<void> {
    // A caller queued behind another one's wait waits too: like a sleep, that gives up its poll slot.
    const ahead = this.queued++ ? idleWait(() => this.queue) : this.queue;
    const next = ahead.then(() => this.waitForSlot(signal)).finally(() => this.queued--);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** How long a caller arriving now would wait, in ms (for status and progress lines). */
  waitMs(): number {
    return this.delayAt(this.clock.now());
  }

  private delayAt(now: number): number {
    while (this.sent.length && this.sent[0]! <= now - hour) this.sent.shift();
    let wait = 0;
    if (this.sent.length >= this.perHour) wait = Math.max(wait, this.sent[this.sent.length - this.perHour]! + hour - now);
    const inMinute = this.countSince(now - minute);
    if (inMinute >= this.perMinute) wait = Math.max(wait, this.sent[this.sent.length - this.perMinute]! + minute - now);
    return wait;
  }

  private countSince(t: number): number {
    // sent is sorted: binary search for the first entry after t
    let lo = 0;
    let hi = this.sent.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sent[mid]! > t) hi = mid;
      else lo = mid + 1;
    }
    return this.sent.length - lo;
  }

  private async waitForSlot(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      const wait = this.delayAt(now);
      if (wait <= 0) {
        this.sent.push(now);
        return;
      }
      await sleepUnless(this.clock, wait, signal);
    }
  }
}
