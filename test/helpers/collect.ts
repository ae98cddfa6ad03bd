import { Collector } from '../../plugin/collect/collector.js';
import type { CollectorTask } from '../../plugin/collect/task.js';
import type { Config } from '../../plugin/config/load.js';
import { createLogger } from '../../plugin/log.js';
import type { Sink } from '../../plugin/output/sink.js';
import type { RecordMapper } from '../../plugin/transform/mapper.js';
import { RawMapper } from './raw-mapper.js';
import { MemorySink } from './memory-sink.js';
import { PassThrough } from 'node:stream';

/** Captured log lines (JSON) of a collector under test. */
export function captureLogger() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  return { logger: createLogger('debug', stream), lines };
}

/** Runs one poll of the given task for every connector of `config`; returns the sink and the failure count. */
export async function pollOnce<S extends Sink = MemorySink>(config: Config, task: CollectorTask, opts: { now?: number; sink?: S; mapper?: RecordMapper } = {}) {
  const sink = opts.sink ?? (new MemorySink() as unknown as S);
  const { logger, lines } = captureLogger();
  const mapper = opts.mapper ?? new RawMapper();
  const clock = { now: () => opts.now ?? Date.now(), sleep: async () => undefined };
  const collector = new Collector({ config, sink, mapper: () => mapper, logger, clock, taskFor: () => task });
  const failed = await collector.runOnce();
  return { sink, failed, lines, states: collector.runners.map((r) => r.state) };
}
