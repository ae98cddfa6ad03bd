import type { PageEnd } from '../defender/client.js';
import { DefenderApiError } from '../defender/errors.js';
import { DigestTable } from '../state/digest-table.js';
import { CursorError, resetCommand } from './cursor-store.js';
import { InFlightDeliveries } from './in-flight.js';
import { readPageRetrying } from './page-retry.js';
import { type CollectorTask, type PollResult, type TaskContext, throwIfStopped } from './task.js';

/** The host cursor; the digests of the machines as last delivered are saved beside it (StateStore.saveDigests), out of the heap. */
export interface HostCursor {
  v: 2;
  /** when the last full refresh was delivered */
  lastFullRefresh: string;
  /** machines in the saved digests */
  machines: number;
}

/** Before version 2 the digests were inside the cursor: machine id → base64 SHA-1 of the machine. */
interface HostCursorV1 {
  v: 1;
  lastFullRefresh: string;
  digests: Record<string, string>;
}

export function isHostCursor(v: unknown): v is HostCursor | HostCursorV1 {
  const c = v as HostCursor | HostCursorV1;
  if (!c || typeof c.lastFullRefresh !== 'string') return false;
  if (c.v === 2) return typeof c.machines === 'number';
  return c.v === 1 && !!c.digests && typeof c.digests === 'object' && !Array.isArray(c.digests);
}

/** The digests a version-1 cursor held, as a table (its SHA-1s cut to what the table keeps). */
function v1Digests(c: HostCursorV1): DigestTable {
  const table = new DigestTable(Object.keys(c.digests).length);
  for (const [id, d] of Object.entries(c.digests)) table.put(id, Buffer.from(d, 'base64'));
  return table;
}

/**
 * The machine list is a snapshot: read it whole every interval, deliver the machines whose content
 * changed since the last delivery, and everything every hostFullRefreshHours. A 404 on the first
 * page means the tenant has no machines. An @odata.nextLink is followed (on the API host only,
 * never twice); otherwise $skip pages are read until an empty one.
 */
export class HostCollector implements CollectorTask {
  readonly content = 'host' as const;

  constructor(
    private readonly pageSize = 10_000,
    /** machines handed to the pipeline at a time while a page streams in */
    private readonly sliceSize = 500,
    /** slices delivered but not yet acknowledged while the next ones are read */
    private readonly slicesInFlight = 4,
  ) {}

  async poll(ctx: TaskContext): Promise<PollResult> {
    const { connector, cursors } = ctx;
    const cursor = await cursors.load(connector.name, 'host', isHostCursor);
    const now = ctx.clock.now();
    const full = !cursor || now - Date.parse(cursor.lastFullRefresh) >= connector.hostFullRefreshHours * 3600_000;
    const previous = full ? new DigestTable() : cursor!.v === 1 ? v1Digests(cursor!) : await this.savedDigests(ctx);
    const digests = new DigestTable(previous.size);
    const result: PollResult = { pages: 0, records: 0, cursor: '' };
    // Every delivery is acknowledged before the digests (the cursor) are saved.
    const inFlight = new InFlightDeliveries(this.slicesInFlight);
    // Machines delivered by this poll (id → digest): a page asked for again after a cut does not deliver them twice.
    const emitted = new DigestTable();
    const linksSeen = new Set<string>();
    // every machine of a complete read replaces the connector's inventory (alerts read it)
    const inventory = ctx.inventory?.writer(connector.name);
    let skip = 0;
    let nextLink: string | undefined;
    for (;;) {
      throwIfStopped(ctx.signal);
      const request = nextLink ? { path: nextLink } : { path: '/api/machines', query: { $top: this.pageSize, $skip: skip } };
      let page: PageEnd = { count: 0, status: 404 };
      // what this page read (ids and digests), merged into `digests` once the page is whole (a retry starts it afresh)
      let pageIds: string[] = [];
      let pageDigests: Buffer[] = [];
      let repeated = 0;
      try {
        // a page cut short or malformed (a 200 without a `value` array too) is asked for again, as for alerts
        page = await readPageRetrying(
          ctx,
          'machines',
          () => ctx.client.openPage(request),
          this.sliceSize,
          () => {
            pageIds = [];
            pageDigests = [];
            repeated = 0;
          },
          async (machines) => {
            const changed: Record<string, unknown>[] = [];
            for (const m of machines) {
              if (typeof m.id !== 'string') {
                // Delivered (the transforms mark it) rather than failing every poll; with no id to key a
                // digest on, it is delivered again each poll, which keeps it visible until fixed.
                ctx.logger.warn({ connector: ctx.connector.name }, 'machine without id: delivered without a digest');
                changed.push(m);
                continue;
              }
              if (digests.has(m.id)) repeated++;
              const d = DigestTable.digest(m);
              pageIds.push(m.id);
              pageDigests.push(d);
              inventory?.add(m);
              if (!previous.matches(m.id, d) && !emitted.matches(m.id, d)) {
                changed.push(m);
                emitted.put(m.id, d);
              }
            }
            if (changed.length) await inFlight.add(ctx.emit(changed));
            result.records += changed.length;
          },
        );
      } catch (e) {
        // "404 when there are no recent machines" (get-machines.md); past the first page it is an error.
        if (!(e instanceof DefenderApiError && e.status === 404 && skip === 0 && !nextLink)) throw e;
      }
      const { count } = page;
      if (count > 0 && repeated === count) {
        throw new DefenderApiError(`GET /api/machines: page at ${nextLink ? 'its @odata.nextLink' : `$skip=${skip}`} repeats machines already read (paging loop)`, { errorClass: 'paging' });
      }
      for (let i = 0; i < pageIds.length; i++) digests.put(pageIds[i]!, pageDigests[i]!);
      result.pages++;
      ctx.progress?.({ pages: result.pages, records: result.records, cursor: `${digests.size} machines` });
      const link = page.nextLink;
      if (link) {
        if (linksSeen.has(link)) throw new DefenderApiError('GET /api/machines: @odata.nextLink repeats a link already followed (paging loop)', { errorClass: 'paging' });
        linksSeen.add(link);
        ctx.client.url(link); // refuses off-host links before any request
        nextLink = link;
        continue;
      }
      // The end: a linked page without a link, or an empty $skip page. Not a page shorter than $top:
      // a server or gateway may cap pages below $top (1 000 of 3 000 machines were delivered and
      // the digests saved as the whole list). $skip steps on by what each page held, so every
      // position of the list is asked for until the server has nothing more; the price is one
      // empty page per poll. (Ending on "shorter than the largest page seen" would save that call,
      // but loses machines whenever a server's pages vary in size, e.g. capped by bytes.)
      if (nextLink || count === 0) break;
      skip += count;
    }
    await inFlight.drain();
    await inventory?.commit();
    const lastFullRefresh = full ? new Date(now).toISOString() : cursor!.lastFullRefresh;
    // digests first: a crash between the two writes leaves new digests under the old cursor, which
    // at worst delivers machines again (a full refresh early), never skips one
    await cursors.saveDigests(connector.name, digests.entries());
    await cursors.save(connector.name, 'host', { v: 2, lastFullRefresh, machines: digests.size } satisfies HostCursor);
    result.cursor = `${digests.size} machines, full refresh ${lastFullRefresh}`;
    return result;
  }

  /** The digests saved with a version-2 cursor; missing or unreadable ones stop the task rather than deliver every machine as changed. */
  private async savedDigests(ctx: TaskContext): Promise<DigestTable> {
    const name = ctx.connector.name;
    const bytes = await ctx.cursors.loadDigests(name);
    if (!bytes) throw new CursorError(`of ${name}:host`, resetCommand(name, 'host'), 'its host digests are missing', 'is incomplete');
    try {
      return DigestTable.fromEntries(bytes);
    } catch (e) {
      throw new CursorError(`of ${name}:host`, resetCommand(name, 'host'), (e as Error).message, 'is incomplete');
    }
  }
}
