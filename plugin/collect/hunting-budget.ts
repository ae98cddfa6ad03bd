import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';

interface BudgetFile {
  v: 1;
  /** [end, ms] of the query runs of the last hour */
  runs: Array<[number, number]>;
  /** no query before this time (a CPU-quota 429: Graph blocks the tenant until the next cycle) */
  blockedUntil?: number;
  blockedReason?: string;
}

function isBudgetFile(v: unknown): v is BudgetFile {
  const b = v as BudgetFile;
  return (
    !!b &&
    b.v === 1 &&
    Array.isArray(b.runs) &&
    b.runs.every((r) => Array.isArray(r) && r.length === 2 && r.every((n) => typeof n === 'number' && Number.isFinite(n))) &&
    (b.blockedUntil === undefined || (typeof b.blockedUntil === 'number' && Number.isFinite(b.blockedUntil))) &&
    (b.blockedReason === undefined || typeof b.blockedReason === 'string')
  );
}

/**
 * A connector's share of the tenant's advanced hunting allocation, kept with its state (a file under
 * stateDir, or its hunting row in PostgreSQL, shared by replicas), so that neither a restart nor a
 * replica taking the task over forgets the running time of the last hour or runs into a CPU quota
 * Graph still blocks: the quotas are Graph's, a new process does not reset them. Read afresh at the
 * start of each poll (another replica may have polled since); saved after each change, in order.
 */
export class HuntingBudget {
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: StateStore,
    private readonly connector: string,
    private readonly logger: Logger,
    private state: BudgetFile,
  ) {}

  static async load(store: StateStore, connector: string, logger: Logger): Promise<HuntingBudget> {
    const { text, where } = await store.loadBudget(connector);
    let value: unknown;
    try {
      value = text === undefined ? undefined : JSON.parse(text);
    } catch {
      value = null;
    }
    // only a budget is lost (no record, no cursor): start afresh, say so, and the next run rewrites it
    if (value !== undefined && !isBudgetFile(value)) logger.warn({ where }, `${where}: not a hunting budget (expected {"v":1,"runs":[[end ms, running ms], …]}); starting with an empty one`);
    return new HuntingBudget(store, connector, logger, isBudgetFile(value) ? value : { v: 1, runs: [] });
  }

  /** Running time of the runs that ended in the hour before now. */
  usedLastHour(now: number): number {
    return this.state.runs.filter(([end]) => end > now - 3600_000).reduce((sum, [, ms]) => sum + ms, 0);
  }

  record(end: number, ms: number): void {
    this.state.runs = [...this.state.runs.filter(([e]) => e > end - 3600_000), [end, ms]];
    this.save();
  }

  /** The CPU-quota block still in force at now, if any. */
  blocked(now: number): { until: number; reason: string } | undefined {
    const until = this.state.blockedUntil;
    return until !== undefined && until > now ? { until, reason: this.state.blockedReason ?? '' } : undefined;
  }

  block(until: number, reason: string): void {
    this.state.blockedUntil = until;
    this.state.blockedReason = reason;
    this.save();
  }

  /** Resolves once every change so far is saved (or failed to be, which is logged). */
  saved(): Promise<void> {
    return this.saving;
  }

  // A save that fails (a lost lease, the database away) loses a little accounting, never records: logged, not thrown.
  private save(): void {
    const text = JSON.stringify(this.state);
    this.saving = this.saving
      .then(() => this.store.saveBudget(this.connector, text))
      .catch((e: unknown) => this.logger.warn({ connector: this.connector, err: e }, 'hunting budget not saved; the next poll reads the last saved one'));
  }
}
