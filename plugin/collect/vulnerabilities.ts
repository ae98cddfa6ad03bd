import { createHash, type Hash } from 'node:crypto';
import { DefenderApiError } from '../defender/errors.js';
import { epochMs } from '../transform/convert.js';
import { InFlightDeliveries } from './in-flight.js';
import { readPageRetrying } from './page-retry.js';
import { type CollectorTask, type PollResult, type TaskContext, throwIfStopped } from './task.js';

const fullPath = '/api/machines/SoftwareVulnerabilitiesByMachine';
const deltaPath = '/api/machines/SoftwareVulnerabilityChangesByMachine';
/**
 * The export snapshot is regenerated every 6 hours (get-assessment-software-vulnerabilities.md), so
 * it can be that old when the export starts: deltas begin 6 h before, and the overlap is deduped
 * downstream by at-least-once consumers rather than lost.
 */
const snapshotAgeMs = 6 * 3600_000;
/** the delta API refuses a sinceTime older than 14 days; keep an hour of slack */
const deltaReachMs = 14 * 24 * 3600_000 - 3600_000;

export interface VulnerabilitiesCursor {
  v: 1;
  /** start of the last completed full export; undefined until one completes */
  baselineAt?: string;
  /** the delta position: the latest eventTimestamp delivered (or the baseline start) */
  since?: string;
  /** id|eventTimestamp|status of delta records delivered at exactly `since` */
  boundary?: string[];
  /** a run in progress: the page to resume with after a restart */
  progress?: { kind: 'full' | 'delta'; startedAt: string; nextLink: string; maxEvent?: string };
}

export function isVulnerabilitiesCursor(v: unknown): v is VulnerabilitiesCursor {
  const c = v as VulnerabilitiesCursor;
  if (!c || c.v !== 1) return false;
  if (c.progress && (typeof c.progress.nextLink !== 'string' || (c.progress.kind !== 'full' && c.progress.kind !== 'delta'))) return false;
  return (c.since === undefined || typeof c.since === 'string') && (c.boundary === undefined || Array.isArray(c.boundary));
}

/**
 * Vulnerabilities from the export-assessment APIs: a full export (nextLink pages of up to 200 000
 * records, parsed as a stream), then deltas since the latest eventTimestamp delivered; a full
 * baseline again every vulnerabilityBaselineDays or when the delta position is older than the
 * 14 days the API reaches. Progress is saved after every page so a restart resumes mid-export.
 */
export class VulnerabilitiesCollector implements CollectorTask {
  readonly content = 'vulnerabilities' as const;

  constructor(
    private readonly emitBatch = 1000,
    /** slices delivered but not yet acknowledged while the next ones are read */
    private readonly slicesInFlight = 4,
  ) {}

  async poll(ctx: TaskContext): Promise<PollResult> {
    const { connector, cursors } = ctx;
    let cursor = (await cursors.load(connector.name, 'vulnerabilities', isVulnerabilitiesCursor)) ?? { v: 1 };
    const now = ctx.clock.now();
    cursors.assertNotAhead(connector.name, 'vulnerabilities', { since: cursor.since, baselineAt: cursor.baselineAt }, now);
    const result: PollResult = { pages: 0, records: 0, cursor: '' };
    cursor = await this.dropForeignLink(ctx, cursor);
    const baselineDue = !cursor.baselineAt || now - Date.parse(cursor.baselineAt) >= connector.vulnerabilityBaselineDays * 86_400_000;
    const deltaOutOfReach = !cursor.since || now - Date.parse(cursor.since) >= deltaReachMs;
    const resumeFull = cursor.progress?.kind === 'full';
    // A delta run left half-way is resumed, unless its position went out of the API's reach meanwhile.
    if (resumeFull || ((!cursor.progress || cursor.progress.kind === 'delta') && (baselineDue || deltaOutOfReach))) {
      cursor = await this.full(ctx, cursor, now, result);
    } else {
      cursor = await this.delta(ctx, cursor, now, result);
    }
    result.cursor = `baseline ${cursor.baselineAt ?? 'none'}, since ${cursor.since ?? 'none'}`;
    return result;
  }

  /**
   * A saved page link on another host than the configured apiEndpoint (changed since the link was
   * saved) is never followed: the export starts over (a delta, from its saved position) instead of
   * failing every interval until --reset-cursor.
   */
  private async dropForeignLink(ctx: TaskContext, cursor: VulnerabilitiesCursor): Promise<VulnerabilitiesCursor> {
    if (!cursor.progress) return cursor;
    try {
      ctx.client.url(cursor.progress.nextLink);
      return cursor;
    } catch {
      const from = URL.canParse(cursor.progress.nextLink) ? new URL(cursor.progress.nextLink).origin : 'an unreadable link';
      ctx.logger.warn({ connector: ctx.connector.name, from, to: ctx.connector.apiBaseUrl }, `saved ${cursor.progress.kind} export page link is on ${from}, not the configured apiEndpoint; starting that run over`);
      const restarted: VulnerabilitiesCursor = { ...cursor, progress: undefined };
      await ctx.cursors.save(ctx.connector.name, 'vulnerabilities', restarted);
      return restarted;
    }
  }

  private async full(ctx: TaskContext, cursor: VulnerabilitiesCursor, now: number, result: PollResult): Promise<VulnerabilitiesCursor> {
    const startedAt = cursor.progress?.kind === 'full' ? cursor.progress.startedAt : new Date(now).toISOString();
    let link: string | undefined = cursor.progress?.kind === 'full' ? cursor.progress.nextLink : undefined;
    const first = { path: fullPath, query: { pageSize: ctx.connector.vulnerabilityPageSize } };
    try {
      await this.pages(ctx, link ? { path: link } : first, result, async (next) => {
        const saved: VulnerabilitiesCursor = next
          ? { ...cursor, progress: { kind: 'full', startedAt, nextLink: next } }
          : { v: 1, baselineAt: startedAt, since: new Date(Date.parse(startedAt) - snapshotAgeMs).toISOString(), boundary: [] };
        await ctx.cursors.save(ctx.connector.name, 'vulnerabilities', saved);
        cursor = saved;
      });
    } catch (e) {
      // A saved page link can expire between runs; start the export over rather than fail forever.
      if (link && e instanceof DefenderApiError && (e.status === 400 || e.status === 404 || e.status === 410)) {
        ctx.logger.warn({ connector: ctx.connector.name, err: e }, 'saved export page link no longer valid; restarting the full export');
        const restarted: VulnerabilitiesCursor = { ...cursor, progress: undefined };
        await ctx.cursors.save(ctx.connector.name, 'vulnerabilities', restarted);
        link = undefined;
        return this.full(ctx, restarted, now, result);
      }
      throw e;
    }
    return cursor;
  }

  private async delta(ctx: TaskContext, cursor: VulnerabilitiesCursor, now: number, result: PollResult): Promise<VulnerabilitiesCursor> {
    const since = cursor.since!;
    const boundary = new Set(cursor.boundary ?? []);
    let maxEvent = cursor.progress?.kind === 'delta' ? (cursor.progress.maxEvent ?? since) : since;
    let maxEventMs = Date.parse(maxEvent);
    let atMax = new Set<string>();
    const startedAt = cursor.progress?.startedAt ?? new Date(now).toISOString();
    const link = cursor.progress?.kind === 'delta' ? cursor.progress.nextLink : undefined;
    const first = { path: deltaPath, query: { sinceTime: since, pageSize: ctx.connector.vulnerabilityPageSize } };
    try {
      await this.pages(
        ctx,
        link ? { path: link } : first,
        result,
        async (next) => {
          const saved: VulnerabilitiesCursor = next
            ? { ...cursor, progress: { kind: 'delta', startedAt, nextLink: next, maxEvent } }
            : {
                v: 1,
                baselineAt: cursor.baselineAt,
                since: maxEvent,
                boundary: maxEvent === since ? [...boundary, ...atMax] : [...atMax],
              };
          await ctx.cursors.save(ctx.connector.name, 'vulnerabilities', saved);
          cursor = saved;
        },
        (records) => {
          const fresh: Record<string, unknown>[] = [];
          for (const r of records) {
            const k = `${String(r.id)}|${String(r.eventTimestamp)}|${String(r.status)}`;
            if (boundary.has(k)) continue;
            fresh.push(r);
            const t = epochMs(r.eventTimestamp);
            if (t === undefined) continue;
            if (t > maxEventMs) {
              maxEventMs = t;
              maxEvent = new Date(t).toISOString();
              atMax = new Set([k]);
            } else if (t === maxEventMs) atMax.add(k);
          }
          return fresh;
        },
      );
    } catch (e) {
      // A saved page link can expire between runs: ask for the delta again from the saved position.
      if (link && e instanceof DefenderApiError && (e.status === 400 || e.status === 404 || e.status === 410)) {
        ctx.logger.warn({ connector: ctx.connector.name, err: e }, 'saved delta page link no longer valid; asking for the delta again');
        const restarted: VulnerabilitiesCursor = { ...cursor, progress: undefined };
        await ctx.cursors.save(ctx.connector.name, 'vulnerabilities', restarted);
        return this.delta(ctx, restarted, now, result);
      }
      throw e;
    }
    return cursor;
  }

  /** Streams every page from `start` on, delivering in slices, calling onPageDone(nextLink) after each page is acknowledged. */
  private async pages(
    ctx: TaskContext,
    start: { path: string; query?: Record<string, string | number> },
    result: PollResult,
    onPageDone: (nextLink: string | undefined) => Promise<void>,
    select: (records: Record<string, unknown>[]) => Record<string, unknown>[] = (r) => r,
  ): Promise<void> {
    const linksSeen = new Set<string>();
    // Slices awaiting acknowledgement while the next are read; every one is acknowledged before
    // the page's progress is saved.
    const inFlight = new InFlightDeliveries(this.slicesInFlight);
    let request = start;
    for (;;) {
      throwIfStopped(ctx.signal);
      const handed = new HandedOn();
      const page = await readPageRetrying(
        ctx,
        'vulnerability export',
        () => ctx.client.openPage({ ...request, family: 'export' }),
        this.emitBatch,
        () => handed.restart(),
        async (items) => {
          const fresh = select(handed.fresh(items));
          const delivery = fresh.length ? ctx.emit(fresh) : undefined;
          handed.commit();
          if (delivery) await inFlight.add(delivery);
          result.records += fresh.length;
        },
      );
      handed.end();
      await inFlight.drain();
      result.pages++;
      const next = page.nextLink || undefined;
      if (next) {
        if (linksSeen.has(next)) throw new DefenderApiError(`${start.path}: @odata.nextLink repeats a link already followed (paging loop)`, { errorClass: 'paging' });
        linksSeen.add(next);
        ctx.client.url(next);
      }
      await onPageDone(next);
      ctx.progress?.({ pages: result.pages, records: result.records, cursor: next ? 'paging' : 'done' });
      if (!next) return;
      request = { path: next };
    }
  }
}

/**
 * What earlier attempts at one page handed on, so that a page asked for again after a cut delivers
 * only the rest: how many items, and a digest of their keys proving that the page came back with
 * the same items in the same order. Memory stays constant whatever the page size. A page that
 * came back different fails the poll; the next one reads the page whole from its saved link
 * (duplicates, never a gap).
 */
class HandedOn {
  private count = 0;
  private digest = '';
  private seen = 0;
  private hash: Hash = createHash('sha1');

  restart(): void {
    this.seen = 0;
    this.hash = createHash('sha1');
  }

  /** The items of this slice not handed on by an earlier attempt. */
  fresh(items: Record<string, unknown>[]): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const r of items) {
      if (this.seen === this.count) this.verify();
      this.hash.update(`${String(r.id)}|${String(r.eventTimestamp)}|${String(r.status)}\n`);
      if (++this.seen > this.count) out.push(r);
    }
    return out;
  }

  /** Everything read so far is handed on (delivered or awaiting its acknowledgement). */
  commit(): void {
    if (this.seen <= this.count) return;
    this.count = this.seen;
    this.digest = this.hash.copy().digest('base64');
  }

  /** The page ended: it must have held at least what was handed on before. */
  end(): void {
    if (this.seen < this.count) throw this.changed(`${this.seen} items where ${this.count} were read before`);
    if (this.seen === this.count) this.verify();
  }

  private verify(): void {
    if (this.count && this.hash.copy().digest('base64') !== this.digest) throw this.changed(`its first ${this.count} items differ`);
  }

  private changed(why: string): DefenderApiError {
    return new DefenderApiError(`export page asked for again after a cut came back different (${why}); the next poll reads it whole`, { errorClass: 'paging' });
  }
}
