import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import type { Logger } from '../log.js';

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
 * A connector's share of the tenant's advanced hunting allocation, kept in a file so a restart
 * neither forgets the running time of the last hour nor runs into a CPU quota Graph still blocks:
 * the quotas are Graph's, a new process does not reset them.
 */
export class HuntingBudget {
  private state: BudgetFile = { v: 1, runs: [] };

  constructor(
    readonly file: string,
    logger: Logger,
  ) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    // only a budget is lost (no record, no cursor): start afresh, say so, and the next run rewrites the file
    if (isBudgetFile(value)) this.state = value;
    else logger.warn({ file }, `${file}: not a hunting budget (expected {"v":1,"runs":[[end ms, running ms], …]}); starting with an empty one`);
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

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.state));
  }
}
