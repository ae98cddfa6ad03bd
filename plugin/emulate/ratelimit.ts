// Sliding-window call budgets, as documented per API: 100/min + 1 500/h for alerts, machines and
// machine actions; 30/min + 1 000/h for the export-assessment APIs. `scale` shrinks both windows
// (0.01: 100 calls per 0.6 s) so tests can hit the limit quickly.

export interface Limit {
  perMinute: number;
  perHour: number;
}

export const documentedLimits: Record<'standard' | 'export' | 'hunting', Limit> = {
  standard: { perMinute: 100, perHour: 1500 },
  export: { perMinute: 30, perHour: 1000 },
  // advanced hunting: 45 calls a minute per tenant (at least), 1 500 an hour (the Defender for Endpoint hunting API's figures)
  hunting: { perMinute: 45, perHour: 1500 },
};

export interface Verdict {
  ok: boolean;
  /** how long until a call would be accepted, in ms (only when !ok) */
  retryAfterMs: number;
}

export class SlidingWindowLimiter {
  private readonly calls = new Map<string, number[]>();

  constructor(
    private scale: number,
    private enabled = true,
  ) {}

  configure(opts: { scale?: number; enabled?: boolean }): void {
    if (opts.scale !== undefined) this.scale = opts.scale;
    if (opts.enabled !== undefined) this.enabled = opts.enabled;
    this.calls.clear();
  }

  get isEnabled(): boolean {
    return this.enabled;
  }

  /** Counts one call on `bucket` at `nowMs` if the budget allows it (rejected calls are not counted). */
  take(bucket: string, limit: Limit, nowMs: number): Verdict {
    if (!this.enabled) return { ok: true, retryAfterMs: 0 };
    const minute = 60_000 * this.scale;
    const hour = 3_600_000 * this.scale;
    let list = this.calls.get(bucket);
    if (!list) this.calls.set(bucket, (list = []));
    let drop = 0;
    while (drop < list.length && list[drop]! <= nowMs - hour) drop++;
    if (drop) list.splice(0, drop);
    // calls inside the last minute: the tail of the (time-ordered) list
    let firstInMinute = list.length;
    while (firstInMinute > 0 && list[firstInMinute - 1]! > nowMs - minute) firstInMinute--;
    const inMinute = list.length - firstInMinute;
    if (inMinute >= limit.perMinute) {
      // the oldest call that must leave the minute window before one more fits
      const oldest = list[list.length - limit.perMinute]!;
      return { ok: false, retryAfterMs: Math.max(1, oldest + minute - nowMs) };
    }
    if (list.length >= limit.perHour) {
      const oldest = list[list.length - limit.perHour]!;
      return { ok: false, retryAfterMs: Math.max(1, oldest + hour - nowMs) };
    }
    list.push(nowMs);
    return { ok: true, retryAfterMs: 0 };
  }
}
