import type { Connector, ContentType } from '../config/load.js';
import { DefenderApiError } from '../defender/errors.js';
import { InFlightDeliveries } from './in-flight.js';
import { attachMachines, type InventoryReader } from './inventory.js';
import { readPageRetrying } from './page-retry.js';
import { PageAhead } from './read-ahead.js';
import { type CollectorTask, type PollResult, type TaskContext, throwIfStopped } from './task.js';

/** The cursor of a WindowedCollector (alerts, machine actions). */
export interface AlertsCursor {
  v: 1;
  /** every item with an update time < watermark has been delivered */
  watermark: string;
  /** id|update time of items delivered within the overlap before the watermark */
  seen: string[];
  /**
   * A window of several pages begun and not finished (a failed poll, a kill): it is resumed with
   * the same bounds, skipping the alerts its window journal lists as delivered.
   */
  partial?: { start: string; end: string };
}

export function isAlertsCursor(v: unknown): v is AlertsCursor {
  const c = v as AlertsCursor;
  const date = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));
  return (
    !!c &&
    c.v === 1 &&
    date(c.watermark) &&
    Array.isArray(c.seen) &&
    c.seen.every((s) => typeof s === 'string') &&
    // a partial window starts at or before the watermark (nothing between them is skipped) and ends after it starts
    (c.partial === undefined || (!!c.partial && date(c.partial.start) && date(c.partial.end) && Date.parse(c.partial.start) <= Date.parse(c.watermark) && Date.parse(c.partial.start) < Date.parse(c.partial.end)))
  );
}

export interface AlertsOptions {
  /** $top per page; the API allows 10 000 */
  pageSize: number;
  /** the longest window queried at once (catch-ups are committed window by window) */
  maxWindowMs: number;
  /** items re-read at the start of each next page, so a shift of the result set cannot skip one */
  pageMargin: number;
  /** alerts handed to the pipeline at a time while a page streams in */
  sliceSize: number;
  /** slices delivered but not yet acknowledged while the next ones are read (1: wait for each) */
  slicesInFlight: number;
  /** ask for the next $skip page while reading the end of this one */
  readAhead: boolean;
}

export const defaultAlertsOptions: AlertsOptions = { pageSize: 10_000, maxWindowMs: 24 * 3600_000, pageMargin: 100, sliceSize: 250, slicesInFlight: 4, readAhead: true };

type PageRequest = { path: string; query?: Record<string, string | number> };

/**
 * A list API read in windows of an update time (alerts by lastUpdateTime, machine actions by
 * lastUpdateDateTimeUtc): what differs between them; the windows, overlap, dedupe, journal and
 * cursor are WindowedCollector's.
 */
export interface WindowedSource {
  content: Extract<ContentType, 'alerts' | 'machineActions'>;
  /** e.g. /api/alerts */
  path: string;
  /** the field $filter compares with the window's bounds */
  filterField: string;
  /** the entity's update time: the first of these fields that is a string (the docs spell some two ways) */
  timeFields: string[];
  /** further query parameters of every page ($expand) */
  query?: Record<string, string>;
  /** what the API calls one item, for messages */
  noun: string;
  overlapMinutes(connector: Connector): number;
}

export const alertsSource: WindowedSource = {
  content: 'alerts',
  path: '/api/alerts',
  filterField: 'lastUpdateTime',
  timeFields: ['lastUpdateTime'],
  query: { $expand: 'evidence' },
  noun: 'alert',
  overlapMinutes: (c) => c.alertOverlapMinutes,
};

/**
 * Items by windows of their update time (alerts: lastUpdateTime). The window end is pinned for
 * every page of a window; the start reaches back the overlap (`alertOverlapMinutes`) behind the
 * watermark to catch items indexed late, and what was already delivered there is skipped by id +
 * update time (an updated alert has a new lastUpdateTime, so it is a new record). Pages use
 * $top/$skip; a nextLink is followed when present. A window ends on a page with nothing new past
 * the previous page, never on a short page alone.
 */
export class WindowedCollector implements CollectorTask {
  readonly content: WindowedSource['content'];

  private readonly opts: AlertsOptions;
  private readonly timeOf: (a: Record<string, unknown>) => string | undefined;

  constructor(
    private readonly source: WindowedSource,
    opts: Partial<AlertsOptions> = {},
  ) {
    this.content = source.content;
    this.opts = { ...defaultAlertsOptions, ...opts };
    this.timeOf = (a) => {
      for (const f of source.timeFields) if (typeof a[f] === 'string') return a[f] as string;
      return undefined;
    };
  }

  async poll(ctx: TaskContext): Promise<PollResult> {
    const { connector, cursors } = ctx;
    const content = this.content;
    const cursor = await cursors.load(connector.name, content, isAlertsCursor);
    const now = ctx.clock.now();
    cursors.assertNotAhead(connector.name, content, { watermark: cursor?.watermark, 'partial window start': cursor?.partial?.start }, now);
    const overlapMs = this.source.overlapMinutes(connector) * 60_000;
    const journal = cursors.journal(connector.name, content);
    let windowStart = cursor?.partial ? Date.parse(cursor.partial.start) : cursor ? Date.parse(cursor.watermark) - overlapMs : now - connector.lookbackHours * 3600_000;
    let resumeEnd = cursor?.partial ? Date.parse(cursor.partial.end) : undefined;
    let carry = new Set(cursor?.seen ?? []);
    let committed = { watermark: cursor?.watermark ?? new Date(windowStart).toISOString(), seen: cursor?.seen ?? [] };
    const result: PollResult = { pages: 0, records: 0, cursor: cursor?.watermark ?? 'none' };
    // read for this poll only (loaded on first use), so no inventory stays in memory between polls
    const machines = ctx.inventory?.reader(connector.name);

    while (windowStart < now) {
      throwIfStopped(ctx.signal);
      const windowEnd = resumeEnd ?? Math.min(now, windowStart + this.opts.maxWindowMs);
      // only while resuming: what the journal lists (kept out of memory otherwise)
      const delivered = new Set(resumeEnd === undefined ? [] : await journal.load());
      let journaled = resumeEnd !== undefined;
      const start = windowStart;
      // After each page of a window that goes on: its alerts into the journal, and the window's
      // bounds into the cursor the first time (the journal is started afresh before that, so a
      // cursor never points at a finished window's journal).
      const checkpoint = async (keys: string[]) => {
        if (journaled) return journal.append(keys);
        await journal.start(keys);
        const partial = { start: new Date(start).toISOString(), end: new Date(windowEnd).toISOString() };
        await cursors.save(connector.name, content, { v: 1, ...committed, partial } satisfies AlertsCursor);
        journaled = true;
      };
      const nextCarry = await this.collectWindow(ctx, { start, end: windowEnd, carry, delivered, checkpoint, machines }, overlapMs, result);
      resumeEnd = undefined;
      committed = { watermark: new Date(windowEnd).toISOString(), seen: [...nextCarry] };
      await cursors.save(connector.name, content, { v: 1, ...committed } satisfies AlertsCursor);
      if (journaled) await journal.remove();
      result.cursor = committed.watermark;
      carry = nextCarry;
      windowStart = windowEnd;
    }
    return result;
  }

  /**
   * Delivers every item with start ≤ update time < end that is neither in `carry` (delivered
   * by an earlier poll) nor in `delivered` (by this window before a restart: its journal); returns
   * the keys to carry on. After every page but the last, once all of it is acknowledged,
   * `checkpoint` gets the keys that page delivered.
   */
  private async collectWindow(
    ctx: TaskContext,
    w: { start: number; end: number; carry: Set<string>; delivered: Set<string>; checkpoint: (keys: string[]) => Promise<void>; machines?: InventoryReader },
    overlapMs: number,
    result: PollResult,
  ): Promise<Set<string>> {
    const { start: windowStart, end: windowEnd, carry, delivered } = w;
    const { pageSize, pageMargin } = this.opts;
    const margin = Math.min(pageMargin, pageSize - 1);
    // The next $skip page starts this many items before the end of the last: the margin, but at most
    // half of a short page (a server capping pages at 50 would otherwise be read one item a call).
    const stepBack = (count: number) => Math.min(margin, Math.floor(count / 2));
    const { path, filterField } = this.source;
    const filter = `${filterField} ge ${new Date(windowStart).toISOString()} and ${filterField} lt ${new Date(windowEnd).toISOString()}`;
    const nextCarry = new Set<string>();
    const carryFrom = windowEnd - overlapMs;
    // Every delivery of the window is acknowledged before it returns (and the cursor moves).
    const inFlight = new InFlightDeliveries(this.opts.slicesInFlight);
    let previousPage = new Set<string>();
    const linksSeen = new Set<string>();
    let skip = 0;
    /** how many items of this page the previous one covered too ($skip stepped back by it) */
    let overlap = 0;
    let nextLink: string | undefined;
    /** pages of this window read, and keys delivered by ones not yet journaled (see below) */
    let pagesRead = 0;
    let unjournaled: string[] = [];
    const skipPage = (at: number): PageRequest => ({ path, query: { $filter: filter, ...this.source.query, $top: pageSize, $skip: at } });
    // The next $skip page is asked for once 90 % of this one has arrived: a page that far along is
    // most likely full, so a next one is needed (asked earlier, a window of 5 000–9 999 alerts
    // would waste a call of the budget on an empty page).
    const ahead = new PageAhead();
    try {
      for (;;) {
        throwIfStopped(ctx.signal);
        const request = nextLink ? { path: nextLink } : skipPage(skip);
        const opened = nextLink ? (ahead.drop(), null) : ahead.take(skip);
        // Keys delivered from this page survive a retry of the page, so a page cut short and asked
        // again delivers each alert once; they are its checkpoint.
        const deliveredHere = new Set<string>();
        let thisPage = new Set<string>();
        let repeated = 0;
        let read = 0;
        pagesRead++;
        const page = await readPageRetrying(
          ctx,
          path,
          // the same page, asked for ahead of time: read on the first attempt
          (attempt) => (attempt === 0 && opened ? opened : ctx.client.openPage(request)),
          this.opts.sliceSize,
          () => {
            thisPage = new Set();
            repeated = 0;
            read = 0;
          },
          async (items) => {
            read += items.length;
            if (this.opts.readAhead && !nextLink && !ahead.asked && read >= 0.9 * pageSize) {
              const at = skip + pageSize - stepBack(pageSize);
              ahead.ask(at, () => ctx.client.openPage(skipPage(at)));
            }
            const fresh: Record<string, unknown>[] = [];
            for (const a of items) {
              const updated = this.timeOf(a);
              if (typeof a.id !== 'string' || updated === undefined) {
                // Kept and delivered (the transforms mark what they cannot map), never a reason to fail
                // the window: that would re-deliver everything before it at every interval.
                ctx.logger.warn({ connector: ctx.connector.name, id: a.id }, `${this.source.noun} without id or ${this.source.timeFields.join(' / ')}: delivered without dedupe`);
                fresh.push(a);
                continue;
              }
              const k = `${a.id}|${updated}`;
              thisPage.add(k);
              if (previousPage.has(k)) repeated++;
              // delivered before (by an earlier poll or this window) or now: inside the next overlap, skipped there
              if (Date.parse(updated) >= carryFrom) nextCarry.add(k);
              if (carry.has(k) || previousPage.has(k) || deliveredHere.has(k) || delivered.has(k)) continue;
              fresh.push(a);
              deliveredHere.add(k);
            }
            if (fresh.length && w.machines) await attachMachines(w.machines, fresh, (err) => ctx.logger.warn({ connector: ctx.connector.name, err }, 'machine inventory unavailable: alerts delivered without their machine fields'));
            if (fresh.length) await inFlight.add(ctx.emit(fresh));
            result.records += fresh.length;
          },
        );
        // $skip advances past the re-read overlap (at most half the previous page), so a page made
        // only of the previous page's alerts means the server ignored $skip: stop instead of looping forever.
        if (page.count > overlap && repeated === page.count) {
          throw new DefenderApiError(`GET ${path}: page at $skip=${skip} repeats the previous page (paging loop)`, { errorClass: 'paging' });
        }
        result.pages++;
        ctx.progress?.({ pages: result.pages, records: result.records, cursor: new Date(windowStart).toISOString() });
        previousPage = thisPage;

        const link = page.nextLink;
        // The end: a linked page without a link, or a $skip page that brings nothing past the end of
        // the one before (its items, if any, are all re-read margin). A page shorter than $top is no
        // proof of the end: a server (or gateway) may cap its pages below $top, and ending there moved
        // the watermark past every alert after the first page. So $skip steps on by what the page
        // actually held, and one more page is always asked for.
        if (!link && (nextLink || page.count <= overlap)) {
          // A window shorter than the overlap (the last of a catch-up) keeps what the one before it carried.
          for (const k of carry) if (Date.parse(k.slice(k.lastIndexOf('|') + 1)) >= carryFrom) nextCarry.add(k);
          await inFlight.drain();
          return nextCarry;
        }
        // The window goes on: once this page is acknowledged, a restart need not deliver it again.
        // A short first $skip page is most likely the whole window (its next page is only the check
        // for the end): it is journaled with the next page, not on its own, so a small window costs
        // no cursor or journal write beyond its commit. (Failing before then re-reads it, as before.)
        // A stop that came while this page was in flight journals it at once: its acknowledgements
        // arrived within the shutdown window, and a restart must not deliver it again.
        await inFlight.drain();
        unjournaled.push(...deliveredHere);
        if (link || page.count >= pageSize || pagesRead > 1 || ctx.signal?.aborted) {
          await w.checkpoint(unjournaled);
          unjournaled = [];
        }
        if (link) {
          if (linksSeen.has(link)) throw new DefenderApiError(`GET ${path}: @odata.nextLink repeats a link already followed (paging loop)`, { errorClass: 'paging' });
          linksSeen.add(link);
          ctx.client.url(link); // refuses off-host links before any request
          nextLink = link;
          overlap = 0;
          continue;
        }
        overlap = stepBack(page.count);
        skip += page.count - overlap;
      }
    } finally {
      ahead.drop();
    }
  }
}

/** Alerts by lastUpdateTime, with their evidence. */
export class AlertsCollector extends WindowedCollector {
  constructor(opts: Partial<AlertsOptions> = {}) {
    super(alertsSource, opts);
  }
}
