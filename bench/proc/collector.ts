// Child process: the real collector (Collector → DefenderClient → transforms → sink) for one
// benchmark run, in its own process so that its CPU time and peak RSS are its own.
// The parent sends one `run` command; the child is then stopped (a fresh child per run keeps the
// kernel's RSS high-water mark per run).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { Collector } from '../../plugin/collect/collector.js';
import { timedSink } from '../../plugin/collect/observe.js';
import { checkConfigText, type ContentType } from '../../plugin/config/load.js';
import { DefenderClient } from '../../plugin/defender/client.js';
import type { Clock } from '../../plugin/defender/budget.js';
import { createLogger } from '../../plugin/log.js';
import { ForwardSink } from '../../plugin/output/forward.js';
import type { OutRecord, Sink } from '../../plugin/output/sink.js';
import type { RecordMapper } from '../../plugin/transform/mapper.js';
import { TransformReloader, transformsDir } from '../../plugin/transform/transforms.js';
import type { ForwardOutputConfig } from '../../plugin/generated/config.js';
import { serve } from '../lib/ipc.js';
import { RssSampler } from '../lib/memory.js';

export interface CollectorRunArgs {
  /** connectorConfig() of the emulator */
  connector: Record<string, unknown>;
  contentTypes: ContentType[];
  lookbackHours?: number;
  /** forward: a FluentServer port; null: a sink that acknowledges at once */
  output: { type: 'forward'; port: number } | { type: 'null' };
  /** real: the shipped transforms; none: each entity passed through as the record */
  transforms: 'real' | 'none';
  /** the collector's clock runs 1/clockScale times faster (matches the emulator's --rate-scale) */
  clockScale?: number;
  /** runOnce() this many times (steady polling) */
  polls?: number;
}

export interface CollectorRunResult {
  records: Record<string, number>;
  pages: Record<string, number>;
  recordsOut: number;
  wallMs: number;
  cpuMs: number;
  memory: { sampledPeakMB: number; hwmMB: number | undefined; startMB: number; beforeRunMB: number };
  calls: { total: number; byStatus: Record<string, number>; throttled: number; times: number[]; /** call times minus the clock sleeps (budget waits) before them, ms */ busyTimes: number[] };
  clock: { sleeps: number; sleptClockMs: number; sleptRealMs: number };
  evidence?: { alerts: number; items: number; max: number; sampleBytes: number; sampled: number };
  sink?: Record<string, number>;
}

class NullSink implements Sink {
  records = 0;
  async deliver(batch: OutRecord[]): Promise<void> {
    this.records += batch.length;
  }
  state() {
    return { ok: true };
  }
  async close(): Promise<void> {}
}

/** Passes each entity through untouched: the cost of collection without mapping. */
const identityMapper: RecordMapper = { map: (_content, entity) => [{ tag: 'bench.raw', time: 0, record: entity }] };

/** A clock whose time runs 1/scale times faster, so the client's 98/min budget shrinks like the emulator's windows. */
function scaledClock(scale: number, stats: CollectorRunResult['clock']): Clock {
  const t0 = Date.now();
  return {
    now: () => t0 + (Date.now() - t0) / scale,
    sleep: (ms) => {
      stats.sleeps++;
      stats.sleptClockMs += ms;
      const start = performance.now();
      return new Promise((resolve) =>
        setTimeout(() => {
          stats.sleptRealMs += performance.now() - start;
          resolve();
        }, ms * scale),
      );
    },
  };
}

async function run(a: CollectorRunArgs): Promise<CollectorRunResult> {
  const logger = createLogger('error');
  const stateDir = mkdtempSync(join(tmpdir(), 'defender-fluent-bench-'));
  try {
    const outputConfig = a.output.type === 'forward' ? { type: 'forward', host: '127.0.0.1', port: a.output.port } : { type: 'stdout' };
    const yamlText = stringify({
      stateDir,
      logLevel: 'error',
      output: outputConfig,
      connectors: [{ ...a.connector, contentTypes: a.contentTypes, lookbackHours: a.lookbackHours ?? 3 }],
    });
    const checked = checkConfigText(join(stateDir, 'bench.yaml'), yamlText);
    if (!checked.config) throw new Error(`bench config: ${JSON.stringify(checked.problems)}`);
    const config = checked.config;

    const clockStats = { sleeps: 0, sleptClockMs: 0, sleptRealMs: 0 };
    const clock = a.clockScale ? scaledClock(a.clockScale, clockStats) : undefined;

    const sink: Sink & { stats?: object } = a.output.type === 'forward' ? new ForwardSink(config.output as ForwardOutputConfig, { logger }) : new NullSink();
    let mapperFn: () => RecordMapper;
    if (a.transforms === 'real') {
      const opened = TransformReloader.open(transformsDir, { logger });
      if (!opened.ok) throw new Error(`transforms: ${JSON.stringify(opened.problems)}`);
      mapperFn = opened.reloader.mapperFn;
    } else mapperFn = () => identityMapper;

    // Evidence statistics of the alerts actually collected (read before mapping; costs a length read).
    const evidence = { alerts: 0, items: 0, max: 0, sampleBytes: 0, sampled: 0 };
    let recordsOut = 0;
    const counting = (inner: RecordMapper): RecordMapper => ({
      map(content, entity, ctx) {
        if (content === 'alerts') {
          const n = Array.isArray(entity.evidence) ? entity.evidence.length : 0;
          evidence.alerts++;
          evidence.items += n;
          if (n > evidence.max) evidence.max = n;
          if (evidence.sampled < 1000) {
            evidence.sampled++;
            evidence.sampleBytes += Buffer.byteLength(JSON.stringify(entity));
          }
        }
        const out = inner.map(content, entity, ctx);
        recordsOut += out.length;
        return out;
      },
    });

    let start = 0;
    const records: Record<string, number> = {};
    const pages: Record<string, number> = {};
    const calls = { total: 0, byStatus: {} as Record<string, number>, throttled: 0, times: [] as number[], busyTimes: [] as number[] };
    const collector = new Collector({
      config,
      // wrapped as `run` wraps it (the ack-time metric), so the bench measures the shipped path
      sink: timedSink(sink, a.output.type),
      mapper: () => counting(mapperFn()),
      logger,
      clock,
      hooks: {
        onPollDone: (st, r) => {
          records[st.content] = (records[st.content] ?? 0) + r.records;
          pages[st.content] = (pages[st.content] ?? 0) + r.pages;
        },
      },
      clientFor: (c) =>
        new DefenderClient(c, {
          logger,
          clock,
          events: {
            onCall: (_family, status) => {
              calls.total++;
              calls.byStatus[String(status ?? 'transport')] = (calls.byStatus[String(status ?? 'transport')] ?? 0) + 1;
              calls.times.push(performance.now() - start);
              calls.busyTimes.push(performance.now() - start - clockStats.sleptRealMs);
            },
            onThrottled: () => void calls.throttled++,
          },
        }),
    });

    const beforeRunMB = process.memoryUsage().rss / 2 ** 20;
    const sampler = new RssSampler(50);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    start = t0;
    for (let i = 0; i < (a.polls ?? 1); i++) {
      const failed = await collector.runOnce();
      if (failed) {
        const errs = collector.runners.map((r) => r.state.lastError).filter(Boolean);
        throw new Error(`collector poll failed: ${JSON.stringify(errs)}`);
      }
    }
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const memory = { ...sampler.stop(), beforeRunMB };
    await sink.close(2000);
    return {
      records,
      pages,
      recordsOut,
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      memory,
      calls,
      clock: clockStats,
      evidence: evidence.alerts ? evidence : undefined,
      sink: (sink as { stats?: Record<string, number> }).stats ?? { records: (sink as NullSink).records },
    };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

serve({ pid: process.pid }, { run: (a: CollectorRunArgs) => run(a) });
