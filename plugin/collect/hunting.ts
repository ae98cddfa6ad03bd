import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { Connector } from '../config/load.js';
import type { DefenderClient } from '../defender/client.js';
import { DefenderApiError, type ErrorClass } from '../defender/errors.js';
import { graphClient, huntingLimits, isCpuQuota, isResultTooLarge, runHuntingQuery, type HuntingResult } from '../defender/hunting.js';
import { formatProblem } from '../schema-check.js';
import { HuntingBudget } from './hunting-budget.js';
import { loadHuntingQueries, type HuntingQuery } from './hunting-queries.js';
import { InFlightDeliveries } from './in-flight.js';
import { type CollectorTask, type PollResult, type TaskContext, throwIfStopped } from './task.js';

/** Per query: rows with a time < watermark were delivered; `seen` keys the rows inside the overlap; `lastRun` schedules the next run. */
export interface HuntingQueryCursor {
  watermark: string;
  seen: string[];
  lastRun: string;
}

export interface HuntingCursor {
  v: 1;
  queries: Record<string, HuntingQueryCursor>;
}

export function isHuntingCursor(v: unknown): v is HuntingCursor {
  const c = v as HuntingCursor;
  const date = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));
  return (
    !!c &&
    c.v === 1 &&
    !!c.queries &&
    typeof c.queries === 'object' &&
    Object.values(c.queries).every((q) => !!q && date(q.watermark) && date(q.lastRun) && Array.isArray(q.seen) && q.seen.every((s) => typeof s === 'string'))
  );
}

export interface HuntingOptions {
  /** the longest window one call asks for (a catch-up is committed window by window) */
  maxWindowMs: number;
  /** a window whose result is full (maxRows) is split down to this size, then delivered as is */
  minWindowMs: number;
  /** rows per result Graph returns at most: a full result was cut off */
  maxRows: number;
  /** rows handed to the pipeline at a time */
  sliceSize: number;
  /** running time of queries allowed per hour and connector (the tenant's CPU allocation) */
  runningMsPerHour: number;
  /** the Graph client of a connector (tests); default: graph.microsoft.com or the connector's graphEndpoint */
  clientFor?: (connector: Connector) => DefenderClient;
}

const defaults: HuntingOptions = { maxWindowMs: 24 * 3600_000, minWindowMs: 60_000, maxRows: huntingLimits.maxRows, sliceSize: 500, runningMsPerHour: huntingLimits.runningMsPerHour };

/** Why a query did not run (or not to the end) this poll: named with its file and line in status. */
class QueryFailure extends Error {
  constructor(
    message: string,
    readonly errorClass: ErrorClass,
  ) {
    super(message);
  }
}

/**
 * Scheduled KQL queries (hunting/*.kql) through Microsoft Graph runHuntingQuery, one cursor per
 * query on its time column: each run asks for [watermark − overlap, now), skips the rows it
 * delivered in the overlap (time + key columns), and commits once the pipeline acknowledged the
 * rows. A broken query file, or a query Graph refuses, is reported and the others still run; a 429
 * for the tenant's CPU allocation stops every query until the next CPU cycle (Retry-After, else 15
 * minutes; the allocation is the tenant's: the other queries would be refused too) and says so in
 * status; the running time of the last hour and that block survive a restart (HuntingBudget).
 */
export class HuntingCollector implements CollectorTask {
  readonly content = 'hunting' as const;
  private readonly opts: HuntingOptions;
  private readonly clients = new Map<string, DefenderClient>();

  constructor(opts: Partial<HuntingOptions> = {}) {
    this.opts = { ...defaults, ...opts };
  }

  private graph(ctx: TaskContext): DefenderClient {
    let client = this.clients.get(ctx.connector.name);
    if (!client) {
      client = this.opts.clientFor?.(ctx.connector) ?? graphClient(ctx.connector, { logger: ctx.logger, clock: ctx.clock, signal: ctx.signal });
      this.clients.set(ctx.connector.name, client);
      const made = client;
      // a stop must not sit out a Retry-After; the sockets go with the collector
      ctx.signal.addEventListener('abort', () => {
        made.interruptWaits();
        made.close();
      }, { once: true });
    }
    return client;
  }

  async poll(ctx: TaskContext): Promise<PollResult> {
    const { connector, cursors } = ctx;
    const { queries, problems } = loadHuntingQueries(connector.huntingDir);
    const failures: QueryFailure[] = problems.map((p) => new QueryFailure(formatProblem(p), 'config'));
    for (const f of failures) ctx.logger.error({ connector: connector.name, content: this.content }, `hunting query skipped: ${f.message}`);
    const cursor: HuntingCursor = (await cursors.load(connector.name, 'hunting', isHuntingCursor)) ?? { v: 1, queries: {} };
    const now = ctx.clock.now();
    cursors.assertNotAhead(connector.name, 'hunting', Object.fromEntries(Object.entries(cursor.queries).map(([name, q]) => [`query ${name} watermark`, q.watermark])), now);
    // read afresh each poll: another replica may have used the tenant's quota since
    const budget = await HuntingBudget.load(cursors, connector.name, ctx.logger);
    try {
      return await this.runQueries(ctx, queries, failures, cursor, now, budget);
    } finally {
      await budget.saved();
    }
  }

  /** The queries that are due, within the budget, in file order. */
  private async runQueries(ctx: TaskContext, queries: HuntingQuery[], failures: QueryFailure[], cursor: HuntingCursor, now: number, budget: HuntingBudget): Promise<PollResult> {
    const result: PollResult = { pages: 0, records: 0, cursor: '' };
    const ran: string[] = [];
    const block = budget.blocked(now);
    if (block) failures.push(new QueryFailure(`advanced hunting is blocked until ${new Date(block.until).toISOString()}, the tenant's next CPU cycle (${block.reason}): no query runs before then; ${queries.map((q) => q.name).join(', ')} wait`, 'throttled'));
    for (const q of block ? [] : queries) {
      throwIfStopped(ctx.signal);
      const last = cursor.queries[q.name]?.lastRun;
      // due once its interval has passed (a poll a little early still counts: polls run every intervalMinutes)
      if (last && now - Date.parse(last) < q.intervalMs - 30_000) continue;
      const used = budget.usedLastHour(now);
      if (used >= this.opts.runningMsPerHour) {
        failures.push(new QueryFailure(`hunting running-time budget used up (${Math.round(used / 1000)} s of ${this.opts.runningMsPerHour / 1000} s in the last hour): ${q.name} and the queries after it wait for the next poll`, 'throttled'));
        break;
      }
      try {
        await this.runQuery(ctx, q, cursor, now, result, budget);
        ran.push(q.name);
      } catch (e) {
        if (!(e instanceof DefenderApiError || e instanceof QueryFailure)) throw e; // a stop, the sink, a bug: the task's own failure
        if (e instanceof DefenderApiError && e.status === 429) {
          // the quotas are the tenant's: the queries after this one would be refused too
          const retry = e.retryAfterMs !== undefined ? ` (Retry-After ${Math.ceil(e.retryAfterMs / 1000)} s)` : '';
          if (isCpuQuota(e)) {
            // Graph blocks the tenant until its next CPU cycle: no call before then, after a restart neither
            const until = ctx.clock.now() + (e.retryAfterMs ?? huntingLimits.cpuCycleMs);
            budget.block(until, `${q.name} got a CPU-quota 429`);
            failures.push(new QueryFailure(`${q.file}: ${q.name}: the tenant's advanced hunting CPU quota is used up${retry}: waiting for the next cycle, until ${new Date(until).toISOString()}; its cursor did not move (${e.message})`, 'throttled'));
          } else {
            failures.push(new QueryFailure(`${q.file}: ${q.name}: advanced hunting calls are throttled${retry}: waiting for the next poll; its cursor did not move (${e.message})`, 'throttled'));
          }
          break;
        }
        const errorClass = e instanceof DefenderApiError ? e.errorClass : e.errorClass;
        failures.push(new QueryFailure(e instanceof QueryFailure ? e.message : `${q.file}: ${q.name}: ${e.message}; its cursor did not move`, errorClass));
      }
    }
    // one position per query, so status shows where each one is (and which did not run)
    const where = queries.map((q) => `${q.name} ${ran.includes(q.name) ? 'ran' : 'waits'}, rows to ${cursor.queries[q.name]?.watermark ?? '(never run)'}`);
    result.cursor = `${ran.length} of ${queries.length} queries ran: ${where.join('; ')}`;
    if (failures.length) {
      // the queries that ran are committed; status shows the rest, each with its file
      throw new DefenderApiError(`${failures.length} hunting quer${failures.length === 1 ? 'y' : 'ies'} failed (${result.cursor}): ${failures.map((f) => f.message).join('; ')}`, { errorClass: failures[0]!.errorClass });
    }
    return result;
  }

  /** Windows from the query's cursor (or its lookback) to now, each committed once delivered. */
  private async runQuery(ctx: TaskContext, q: HuntingQuery, cursor: HuntingCursor, now: number, result: PollResult, budget: HuntingBudget): Promise<void> {
    const { connector, cursors } = ctx;
    const state = cursor.queries[q.name];
    // Advanced hunting holds 30 days: a cursor older than that resumes where data still exists (a little inside, so the window is not refused).
    const oldest = now - huntingLimits.dataDays * 24 * 3600_000 + 3600_000;
    const wanted = state ? Date.parse(state.watermark) - q.overlapMs : now - q.lookbackMs;
    if (state && wanted < oldest) ctx.logger.warn({ connector: connector.name, query: q.name, watermark: state.watermark }, `hunting query cursor is older than the ${huntingLimits.dataDays} days advanced hunting keeps: rows before ${new Date(oldest).toISOString()} are gone`);
    let start = Math.max(wanted, oldest);
    let carry = new Set(state?.seen ?? []);
    while (start < now) {
      throwIfStopped(ctx.signal);
      const end = Math.min(now, start + this.opts.maxWindowMs);
      const rows = await this.fetchWindow(ctx, q, start, end, budget);
      const nextCarry = new Set<string>();
      const keys = new Set<string>();
      const fresh: Record<string, unknown>[] = [];
      for (const { row, time } of rows) {
        const k = rowKey(q, row, time);
        if (Date.parse(time) >= end - q.overlapMs) nextCarry.add(k);
        // delivered by an earlier run inside the overlap, or the same row twice (two halves of a split window meet)
        if (carry.has(k) || keys.has(k)) continue;
        keys.add(k);
        fresh.push(entity(q, row, time));
      }
      // rows of the previous window still inside this overlap stay known
      for (const k of carry) if (Date.parse(k.slice(0, k.indexOf('|'))) >= end - q.overlapMs) nextCarry.add(k);
      const inFlight = new InFlightDeliveries(4);
      for (let i = 0; i < fresh.length; i += this.opts.sliceSize) await inFlight.add(ctx.emit(fresh.slice(i, i + this.opts.sliceSize)));
      await inFlight.drain();
      result.records += fresh.length;
      result.pages++;
      cursor.queries[q.name] = { watermark: new Date(end).toISOString(), seen: [...nextCarry], lastRun: new Date(now).toISOString() };
      await cursors.save(connector.name, 'hunting', cursor);
      ctx.progress?.({ pages: result.pages, records: result.records, cursor: `${q.name} ${new Date(end).toISOString()}` });
      carry = nextCarry;
      start = end;
    }
  }

  /**
   * The rows with start ≤ time < end: the KQL with a filter on the time column appended, over that
   * Timespan. A result of maxRows rows (Graph cut it off) or one over the result-size limit is
   * asked for again in two halves, down to minWindowMs.
   */
  private async fetchWindow(ctx: TaskContext, q: HuntingQuery, start: number, end: number, budget: HuntingBudget): Promise<Array<{ row: Record<string, unknown>; time: string }>> {
    const s = new Date(start).toISOString();
    const e = new Date(end).toISOString();
    const kql = `${q.kql}\n| where ${q.timeColumn} >= datetime(${s}) and ${q.timeColumn} < datetime(${e})`;
    // the running time is real elapsed time; the clock (a test's, or the system's) places it in the hour
    const began = performance.now();
    let res: HuntingResult | undefined;
    let tooLarge = false;
    try {
      res = await runHuntingQuery(this.graph(ctx), kql, `${s}/${e}`);
    } catch (err) {
      if (!(err instanceof DefenderApiError && isResultTooLarge(err))) throw err;
      tooLarge = true;
    } finally {
      budget.record(ctx.clock.now(), performance.now() - began);
    }
    const full = tooLarge || res!.rows.length >= this.opts.maxRows;
    if (full && end - start > this.opts.minWindowMs) {
      const mid = start + Math.floor((end - start) / 2);
      ctx.logger.info({ connector: ctx.connector.name, query: q.name, from: s, to: e }, 'hunting result at the row or size limit: asking for the window in two halves');
      return [...(await this.fetchWindow(ctx, q, start, mid, budget)), ...(await this.fetchWindow(ctx, q, mid, end, budget))];
    }
    if (tooLarge) throw new QueryFailure(`${q.file}: ${q.name}: the result of ${s}/${e} is over Graph's size limit even for a window of ${Math.round((end - start) / 1000)} s: project fewer columns`, 'bad_request');
    if (full) ctx.logger.warn({ connector: ctx.connector.name, query: q.name, from: s, to: e }, `hunting result has ${this.opts.maxRows} rows (the limit) in a window of ${Math.round((end - start) / 1000)} s: rows past the limit are not returned by Graph`);
    const columns = new Set(res!.columns.map((c) => c.name));
    if (!columns.has(q.timeColumn)) throw new QueryFailure(`${q.file}:${q.lineOf('/timeColumn')}: ${q.name}: timeColumn "${q.timeColumn}" is not a column of the result (${[...columns].join(', ')})`, 'config');
    for (const [field, column] of Object.entries(q.output)) {
      if (!columns.has(column)) throw new QueryFailure(`${q.file}:${q.lineOf(`/output/${field}`)}: ${q.name}: output ${field} ← "${column}" is not a column of the result (${[...columns].join(', ')})`, 'config');
    }
    for (const k of q.key ?? []) {
      if (!columns.has(k)) throw new QueryFailure(`${q.file}:${q.lineOf('/key')}: ${q.name}: key column "${k}" is not a column of the result (${[...columns].join(', ')})`, 'config');
    }
    const out: Array<{ row: Record<string, unknown>; time: string }> = [];
    for (const row of res!.rows) {
      const t = row[q.timeColumn];
      const ms = typeof t === 'string' ? Date.parse(t) : NaN;
      // a row outside the window (a query that ignores the appended filter, e.g. after a union) belongs to another window
      if (Number.isNaN(ms) || ms < start || ms >= end) continue;
      out.push({ row, time: new Date(ms).toISOString() });
    }
    return out;
  }
}

/** `time|hash of the key columns` (of the whole row without key columns): the dedupe key inside the overlap. */
function rowKey(q: HuntingQuery, row: Record<string, unknown>, time: string): string {
  const identity = q.key ? q.key.map((k) => row[k]) : row;
  return `${time}|${createHash('sha1').update(JSON.stringify(identity)).digest('base64url')}`;
}

/** What the hunting transform maps (schemas/defender/hunting-row.schema.json). */
export function entity(q: HuntingQuery, row: Record<string, unknown>, time: string | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(q.output)) {
    const v = row[column];
    if (v === null || v === undefined || v === '') continue;
    fields[field] = typeof v === 'number' && field === 'process_id' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return { query: q.name, ...(q.title ? { title: q.title } : {}), queryFile: basename(q.file), ...(time ? { time } : {}), ...(q.severity !== undefined ? { severity: q.severity } : {}), row, fields };
}
