import type { Config } from '../config/load.js';
import { errorClassOf, PipelineError } from '../defender/errors.js';
import type { Logger } from '../log.js';
import type { Sink } from '../output/sink.js';
import * as metrics from '../status/metrics.js';
import { statusRecords } from '../status/records.js';
import type { StatusStore } from '../status/store.js';
import type { CollectorHooks, TaskState } from './collector.js';
import type { TaskCounters } from './pipeline.js';

/** Calls every hook set in order (progress lines and status both watch the same polls). */
export function combineHooks(...all: CollectorHooks[]): CollectorHooks {
  return {
    onPollStart: (s) => all.forEach((h) => h.onPollStart?.(s)),
    onPollDone: (s, r) => all.forEach((h) => h.onPollDone?.(s, r)),
    onPollFailed: (s, e) => all.forEach((h) => h.onPollFailed?.(s, e)),
    onProgress: (s, p) => all.forEach((h) => h.onProgress?.(s, p)),
  };
}

/** Status file and Prometheus counters from the collector's polls (counts are per-poll deltas). */
export function statusHooks(status: StatusStore): CollectorHooks {
  const before = new Map<TaskState, TaskCounters>();
  const delta = (s: TaskState) => {
    const b = before.get(s) ?? { collected: 0, filtered: 0, failed: 0, filteredBy: {} };
    const d = { records: s.counters.collected - b.collected, filtered: s.counters.filtered - b.filtered, failed: s.counters.failed - b.failed };
    const labels = { connector: s.connector, content: s.content };
    metrics.records.inc({ ...labels, stage: 'collected' }, d.records);
    metrics.records.inc({ ...labels, stage: 'filtered' }, d.filtered);
    metrics.records.inc({ ...labels, stage: 'failed' }, d.failed);
    return d;
  };
  return {
    onPollStart: (s) => {
      before.set(s, structuredClone(s.counters));
      status.recordLate(s.connector, s.content, undefined);
    },
    onPollDone(s) {
      status.recordSuccess(s.connector, s.content, { ...delta(s), cursor: s.cursor });
      metrics.polls.inc({ connector: s.connector, content: s.content, outcome: 'success' });
      status.saveSoon();
    },
    onPollFailed(s, e) {
      delta(s);
      status.recordFailure(s.connector, s.content, e);
      metrics.polls.inc({ connector: s.connector, content: s.content, outcome: 'failure' });
      metrics.errors.inc({ connector: s.connector, class: errorClassOf(e) });
      status.saveSoon();
    },
  };
}

/** Times every delivery until acknowledged (defender_fluent_batch_ack_seconds). */
export function timedSink(sink: Sink, label: string): Sink {
  return {
    deliver(batch) {
      const end = metrics.batchAckSeconds.startTimer({ sink: label });
      // Not an async function awaiting the delivery: its suspended frame would keep the batch
      // alive until the ack (see makeEmitter).
      return sink.deliver(batch).then(() => void end());
    },
    state: () => sink.state(),
    close: (ms) => sink.close(ms),
  };
}

/**
 * Every statusIntervalMinutes: one status record per connector into the pipeline. Every 15 s: while
 * the sink cannot deliver, the polls waiting on it are marked red with the sink's reason (they
 * resume by themselves once it recovers; their next success turns them green); tasks past their due
 * time still waiting for a poll slot are marked late.
 */
export function startStatusLoop(opts: { config: Config; status: StatusStore; sink: Sink; runners: () => TaskState[]; logger: Logger }): () => void {
  const { config, status, sink, logger } = opts;
  let sending = false;
  const emit = () => {
    if (sending) return; // the previous status batch is still waiting for the pipeline
    sending = true;
    sink
      .deliver(statusRecords(config, status.read(), Date.now()))
      .catch((e: unknown) => logger.debug({ err: e }, 'status records not delivered'))
      .finally(() => (sending = false));
  };
  const watch = () => {
    const now = Date.now();
    const late = opts.runners().filter((r) => r.waiting && r.due !== undefined && r.due < now);
    const reason = `every poll slot is busy (maxConcurrentPolls: ${config.maxConcurrentPolls}); the poll runs as soon as one frees`;
    for (const r of late) status.recordLate(r.connector, r.content, r.due, reason);
    const state = sink.state();
    const blocked = state.ok ? [] : opts.runners().filter((r) => r.running);
    for (const r of blocked) status.recordFailure(r.connector, r.content, new PipelineError(`pipeline not acknowledging: ${state.reason ?? 'unknown'}; collection paused`));
    if (blocked.length || late.length) status.saveSoon();
  };
  const statusTimer = setInterval(emit, config.statusIntervalMinutes * 60_000);
  const watchTimer = setInterval(watch, 15_000);
  statusTimer.unref();
  watchTimer.unref();
  return () => {
    clearInterval(statusTimer);
    clearInterval(watchTimer);
  };
}
