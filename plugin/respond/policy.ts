import type { AutoResponsePolicy } from '../generated/config.js';

export type Policy = Required<Omit<AutoResponsePolicy, 'categories'>> & { categories?: string[] };

/** Defaults of schemas/config.schema.json (respond.auto), for code paths that build a policy by hand. */
export function policyWithDefaults(p: AutoResponsePolicy | undefined): Policy {
  return {
    enabled: p?.enabled ?? false,
    dryRun: p?.dryRun ?? true,
    minSeverity: p?.minSeverity ?? 'High',
    detectionSources: p?.detectionSources ?? ['WindowsDefenderAtp'],
    categories: p?.categories,
    maxPerHourPerConnector: p?.maxPerHourPerConnector ?? 10,
    maxPerHour: p?.maxPerHour ?? 20,
    excludeTag: p?.excludeTag ?? 'no-auto-isolate',
    isolationType: p?.isolationType ?? 'Full',
  };
}

// Defender alert severities, lowest first (alerts.md: UnSpecified, Informational, Low, Medium, High).
const severityRank: Record<string, number> = { Informational: 1, Low: 2, Medium: 3, High: 4 };

export interface AlertFacts {
  severity: string;
  detectionSource?: string;
  category?: string;
}

/** Does the alert pass the policy's filters? undefined = yes; otherwise why not. */
export function screenAlert(policy: Policy, alert: AlertFacts): string | undefined {
  const rank = severityRank[alert.severity];
  if (rank === undefined) return `severity ${JSON.stringify(alert.severity)} is not one of Informational, Low, Medium, High`;
  if (rank < severityRank[policy.minSeverity]!) return `severity ${alert.severity} is below minSeverity ${policy.minSeverity}`;
  if (policy.detectionSources.length && !policy.detectionSources.includes(alert.detectionSource ?? '')) {
    return `detectionSource ${JSON.stringify(alert.detectionSource ?? null)} is not in detectionSources [${policy.detectionSources.join(', ')}]`;
  }
  if (policy.categories?.length && !policy.categories.includes(alert.category ?? '')) {
    return `category ${JSON.stringify(alert.category ?? null)} is not in categories [${policy.categories.join(', ')}]`;
  }
  return undefined;
}

export type Reservation = { ok: true; release(): void } | { ok: false; scope: 'connector' | 'total'; limit: number; retryAfterMs: number };

const hour = 3_600_000;

/**
 * Sliding one-hour windows of automated isolations, per connector and in total. reserve() checks
 * and takes a slot in one synchronous step, so concurrent requests can never overshoot a cap.
 */
export class IsolationCaps {
  private readonly total: number[] = [];
  private readonly perConnector = new Map<string, number[]>();

  constructor(
    private readonly policy: Pick<Policy, 'maxPerHour' | 'maxPerHourPerConnector'>,
    private readonly now: () => number = Date.now,
  ) {}

  private prune(list: number[], t: number): void {
    while (list.length && list[0]! <= t - hour) list.shift();
  }

  /** Seeds the windows (e.g. from the audit log after a restart). */
  seed(connector: string, at: number): void {
    const list = this.perConnector.get(connector) ?? [];
    list.push(at);
    list.sort((a, b) => a - b);
    this.perConnector.set(connector, list);
    this.total.push(at);
    this.total.sort((a, b) => a - b);
  }

  count(connector?: string): number {
    const t = this.now();
    const list = connector === undefined ? this.total : (this.perConnector.get(connector) ?? []);
    this.prune(list, t);
    return list.length;
  }

  /** Would reserve() succeed now? (no slot taken; used to skip Defender look-ups once a cap is full) */
  full(connector: string): Reservation | undefined {
    const r = this.reserve(connector);
    if (r.ok) {
      r.release();
      return undefined;
    }
    return r;
  }

  reserve(connector: string): Reservation {
    const t = this.now();
    const mine = this.perConnector.get(connector) ?? [];
    this.perConnector.set(connector, mine);
    this.prune(mine, t);
    this.prune(this.total, t);
    if (mine.length >= this.policy.maxPerHourPerConnector) {
      return { ok: false, scope: 'connector', limit: this.policy.maxPerHourPerConnector, retryAfterMs: mine.length ? mine[0]! + hour - t : hour };
    }
    if (this.total.length >= this.policy.maxPerHour) {
      return { ok: false, scope: 'total', limit: this.policy.maxPerHour, retryAfterMs: this.total.length ? this.total[0]! + hour - t : hour };
    }
    mine.push(t);
    this.total.push(t);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        const i = mine.lastIndexOf(t);
        if (i >= 0) mine.splice(i, 1);
        const j = this.total.lastIndexOf(t);
        if (j >= 0) this.total.splice(j, 1);
      },
    };
  }
}
