// The product's own collector, in this process: Collector + AlertsCollector + DefenderClient (MSAL,
// budget, retries) + the shipped transforms + ForwardSink, pointed at a Harness. Only two seams are
// used: a page size small enough that one window spans several pages, and a client clock whose
// sleeps (Retry-After, backoff) are shortened so fault storms take seconds, not minutes.
import { PassThrough } from 'node:stream';
import { AlertsCollector } from '../../plugin/collect/alerts.js';
import { Collector } from '../../plugin/collect/collector.js';
import type { Clock } from '../../plugin/defender/budget.js';
import { DefenderClient } from '../../plugin/defender/client.js';
import type { ForwardOutputConfig } from '../../plugin/generated/config.js';
import { createLogger } from '../../plugin/log.js';
import { ForwardSink } from '../../plugin/output/forward.js';
import type { Sink } from '../../plugin/output/sink.js';
import { TransformReloader, transformsDir } from '../../plugin/transform/transforms.js';
import type { Harness } from './harness.js';

export const PAGE_SIZE = 100;

/** Real time, but every sleep lasts 1/speedup as long (the budget then simply re-checks sooner). */
export function shortSleeps(speedup: number): Clock {
  return { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.ceil(ms / speedup))) };
}

export interface InProcess {
  collector: Collector;
  sink: ForwardSink;
  /** warnings and errors the collector logged (shown when an assertion fails) */
  log: string[];
  close(): Promise<void>;
}

export function inProcessCollector(h: Harness, opts: { pageSize?: number; speedup?: number; wrapSink?: (s: Sink) => Sink } = {}): InProcess {
  const stream = new PassThrough();
  const log: string[] = [];
  stream.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
  const logger = createLogger('warn', stream);
  const opened = TransformReloader.open(transformsDir, { logger });
  if (!opened.ok) throw new Error(`transforms do not load: ${JSON.stringify(opened.problems)}`);
  const sink = new ForwardSink(h.config.output as ForwardOutputConfig, { logger, reconnectMinMs: 100 });
  const clock = shortSleeps(opts.speedup ?? 20);
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const collector = new Collector({
    config: h.config,
    sink: opts.wrapSink ? opts.wrapSink(sink) : sink,
    mapper: opened.reloader.mapperFn,
    logger,
    clientFor: (c) => new DefenderClient(c, { logger, clock }),
    taskFor: () => new AlertsCollector({ pageSize, maxWindowMs: 24 * 3600_000, pageMargin: 5 }),
  });
  return {
    collector,
    sink,
    log,
    close: async () => {
      await collector.stop();
      await sink.close(0);
    },
  };
}
