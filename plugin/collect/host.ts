import { createHash } from 'node:crypto';
import { DefenderApiError } from '../defender/errors.js';
import { InFlightDeliveries } from './in-flight.js';
import { type CollectorTask, type PollResult, type TaskContext, throwIfStopped } from './task.js';

export interface HostCursor {
  v: 1;
  /** when the last full refresh was delivered */
  lastFullRefresh: string;
  /** machine id → digest of the machine as last delivered */
  digests: Record<string, string>;
}

export function isHostCursor(v: unknown): v is HostCursor {
  const c = v as HostCursor;
  return !!c && c.v === 1 && typeof c.lastFullRefresh === 'string' && !!c.digests && typeof c.digests === 'object' && !Array.isArray(c.digests);
}

const digest = (m: Record<string, unknown>): string => createHash('sha1').update(JSON.stringify(m)).digest('base64');

/**
 * The machine list is a snapshot: read it whole every interval, deliver the machines whose content
 * changed since the last delivery, and everything every hostFullRefreshHours. A 404 on the first
 * page means the tenant has no machines.
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
    const previous = full ? {} : cursor!.digests;
    const digests: Record<string, string> = {};
    const result: PollResult = { pages: 0, records: 0, cursor: '' };
    // Every delivery is acknowledged before the digests (the cursor) are saved.
    const inFlight = new InFlightDeliveries(this.slicesInFlight);
    let skip = 0;
    for (;;) {
      throwIfStopped(ctx.signal);
      let count = 0;
      let repeated = 0;
      try {
        ({ count } = await ctx.client.streamPage({ path: '/api/machines', query: { $top: this.pageSize, $skip: skip } }, this.sliceSize, async (machines) => {
          const changed: Record<string, unknown>[] = [];
          for (const m of machines) {
            if (typeof m.id !== 'string') throw new DefenderApiError('GET /api/machines: a machine without id', { errorClass: 'malformed' });
            if (digests[m.id] !== undefined) repeated++;
            const d = digest(m);
            digests[m.id] = d;
            if (previous[m.id] !== d) changed.push(m);
          }
          if (changed.length) await inFlight.add(ctx.emit(changed));
          result.records += changed.length;
        }));
      } catch (e) {
        // "404 when there are no recent machines" (get-machines.md); past the first page it is an error.
        if (!(e instanceof DefenderApiError && e.status === 404 && skip === 0)) throw e;
      }
      if (count > 0 && repeated === count) {
        throw new DefenderApiError(`GET /api/machines: page at $skip=${skip} repeats machines already read (paging loop)`, { errorClass: 'paging' });
      }
      result.pages++;
      ctx.progress?.({ pages: result.pages, records: result.records, cursor: `${Object.keys(digests).length} machines` });
      if (count < this.pageSize) break;
      skip += this.pageSize;
    }
    await inFlight.drain();
    const lastFullRefresh = full ? new Date(now).toISOString() : cursor!.lastFullRefresh;
    await cursors.save(connector.name, 'host', { v: 1, lastFullRefresh, digests } satisfies HostCursor);
    result.cursor = `${Object.keys(digests).length} machines, full refresh ${lastFullRefresh}`;
    return result;
  }
}
