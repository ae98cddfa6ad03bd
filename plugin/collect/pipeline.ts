import type { Connector, ContentType } from '../config/load.js';
import type { Clock } from '../defender/budget.js';
import { SinkClosedError, type OutRecord, type Sink } from '../output/sink.js';
import type { RecordMapper } from '../transform/mapper.js';

/** Returns the name of the log filter that drops this record, or undefined to keep it. */
export type RecordFilter = (content: ContentType, record: Record<string, unknown>) => string | undefined;

export interface TaskCounters {
  collected: number;
  filtered: number;
  /** records delivered marked with transform_error */
  failed: number;
  filteredBy: Record<string, number>;
}

export const newCounters = (): TaskCounters => ({ collected: 0, filtered: 0, failed: 0, filteredBy: {} });

/**
 * entities → records (current transforms) → log filters → sink. The mapper is looked up per batch
 * so that a transform reload applies from the next batch on.
 */
export function makeEmitter(opts: {
  connector: Connector;
  content: ContentType;
  sink: Sink;
  mapper: () => RecordMapper;
  filter?: RecordFilter;
  tagPrefix: string;
  clock: Clock;
  counters: TaskCounters;
  /** fired: the task stops waiting for the acknowledgement of what it delivered (see unlessAbandoned) */
  abandon?: AbortSignal;
}): (entities: Record<string, unknown>[]) => Promise<void> {
  const { connector, content, sink, filter, counters } = opts;
  return async (entities) => {
    const mapper = opts.mapper();
    const ctx = { connector: connector.name, tenant: connector.tenant, tagPrefix: opts.tagPrefix, writeTime: opts.clock.now() };
    const out: OutRecord[] = [];
    for (const entity of entities) {
      for (const r of mapper.map(content, entity, ctx)) {
        const dropper = filter?.(content, r.record);
        if (dropper !== undefined) {
          counters.filtered++;
          counters.filteredBy[dropper] = (counters.filteredBy[dropper] ?? 0) + 1;
          continue;
        }
        if (r.record.transform_error !== undefined) counters.failed++;
        out.push(r);
      }
    }
    counters.collected += entities.length;
    // Returned, not awaited: a suspended frame would keep the entities and records alive (and
    // promoted by the garbage collector) until the pipeline acknowledges them.
    return out.length ? unlessAbandoned(sink.deliver(out), opts.abandon) : undefined;
  };
}

/**
 * The delivery, or a SinkClosedError once `abandon` fires before it is acknowledged: the batch stays
 * with the sink (it may still arrive), but the poll stops waiting for it and moves no cursor past it.
 */
function unlessAbandoned(delivery: Promise<void>, abandon: AbortSignal | undefined): Promise<void> {
  if (!abandon) return delivery;
  return new Promise((resolve, reject) => {
    const giveUp = () => reject(new SinkClosedError(String(abandon.reason)));
    const settled = () => abandon.removeEventListener('abort', giveUp);
    // handled either way: the sink may still fail the batch after it was given up (at its close)
    delivery.then(
      () => (settled(), resolve()),
      (e: unknown) => (settled(), reject(e)),
    );
    if (abandon.aborted) giveUp();
    else abandon.addEventListener('abort', giveUp, { once: true });
  });
}
