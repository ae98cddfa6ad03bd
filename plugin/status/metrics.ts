import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiFamily, ClientEvents } from '../defender/client.js';
import { writeFileAtomic } from '../atomic-file.js';

/**
 * One registry per process. The collector increments these and, on every status save, writes a
 * snapshot (stateDir/metrics.json); the sidecar's GET /metrics serves its own counters summed with
 * that snapshot, so one scrape shows both processes.
 */
export const registry = new Registry();

export const polls = new Counter({
  name: 'defender_fluent_polls_total',
  help: 'Polls per connector and content type, by outcome (success | failure)',
  labelNames: ['connector', 'content', 'outcome'] as const,
  registers: [registry],
});

export const records = new Counter({
  name: 'defender_fluent_records_total',
  help: 'Records per connector and content type, by stage (collected = delivered, filtered = dropped by a log filter, failed = mapping failed)',
  labelNames: ['connector', 'content', 'stage'] as const,
  registers: [registry],
});

export const errors = new Counter({
  name: 'defender_fluent_errors_total',
  help: 'Errors per connector by class (auth, permission, throttled, server, timeout, network, tls, malformed, ...)',
  labelNames: ['connector', 'class'] as const,
  registers: [registry],
});

export const throttled = new Counter({
  name: 'defender_fluent_throttled_total',
  help: 'HTTP 429 answers from Defender per connector and API family',
  labelNames: ['connector', 'family'] as const,
  registers: [registry],
});

const tokenSources = new Map<string, { provider: { readonly renewals: number }; seen: number }>();

export const tokenRenewals = new Counter({
  name: 'defender_fluent_token_renewals_total',
  help: 'Access tokens fetched from Entra (not served from cache) per connector',
  labelNames: ['connector'] as const,
  registers: [registry],
  // TokenProvider counts renewals itself; the delta since the last scrape is added here.
  collect() {
    for (const [connector, src] of tokenSources) {
      const now = src.provider.renewals;
      if (now > src.seen) this.inc({ connector }, now - src.seen);
      src.seen = now;
    }
  },
});

export const configReloads = new Counter({
  name: 'defender_fluent_config_reloads_total',
  help: 'Config reloads on SIGHUP, by outcome (ok | invalid: the running config was kept)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** What trackPollLag() reads at each scrape: every task's lag (Collector.lags()). */
export type PollLagSource = () => Iterable<{ connector: string; content: string; lagMs: number }>;

const pollLagSources = new Set<PollLagSource>();

export const pollLag = new Gauge({
  name: 'defender_fluent_poll_lag_seconds',
  help: 'How late a task is: while it waits for a poll slot (maxConcurrentPolls busy), seconds since its poll was due; otherwise how late its last poll started',
  labelNames: ['connector', 'content'] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const source of pollLagSources) for (const t of source()) this.set({ connector: t.connector, content: t.content }, t.lagMs / 1000);
  },
});

/** Reports a collector's lags as defender_fluent_poll_lag_seconds: trackPollLag(() => collector.lags()); returns the undo. */
export function trackPollLag(source: PollLagSource): () => void {
  pollLagSources.add(source);
  return () => pollLagSources.delete(source);
}

export const batchAckSeconds = new Histogram({
  name: 'defender_fluent_batch_ack_seconds',
  help: 'Time from handing a batch to the sink until the pipeline acknowledged it',
  labelNames: ['sink'] as const,
  buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [registry],
});

export const actions = new Counter({
  name: 'defender_fluent_actions_total',
  help: 'Response actions per connector, type (contain | release | auto_contain) and outcome (accepted, refused, error, dry_run, Succeeded, Failed, TimeOut, Cancelled, ...)',
  labelNames: ['connector', 'type', 'outcome'] as const,
  registers: [registry],
});

export const avSuppressed = new Counter({
  name: 'defender_fluent_av_events_suppressed_total',
  help: 'Windows Defender Antivirus detection events dropped by suppress-av, per tenant',
  labelNames: ['tenant'] as const,
  registers: [registry],
});

/** Wires a DefenderClient's events (429s) to the counters: new DefenderClient(c, { events: clientEvents(c.name) }). */
export function clientEvents(connector: string): ClientEvents {
  return {
    onThrottled: (family: ApiFamily) => throttled.inc({ connector, family }),
  };
}

/** Counts a connector's token renewals: trackTokenRenewals(c.name, client.tokens). */
export function trackTokenRenewals(connector: string, provider: { readonly renewals: number }): void {
  tokenSources.set(connector, { provider, seen: 0 });
}

export const metricsSnapshotFile = 'metrics.json';

export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The last report of each live worker process, and the counters of the workers that died. */
const workerMetrics = new Map<number, MetricsJson>();
const retiredMetrics: MetricsJson[] = [];

/** A worker process's metrics (its latest report), summed with this process's from now on. */
export function setWorkerMetrics(worker: number, json: MetricsJson): void {
  workerMetrics.set(worker, json);
}

/**
 * A worker died: its counters and histograms stay in the sums (its restart counts from zero, and a
 * sum going down would read as a reset); its gauges go.
 */
export function retireWorkerMetrics(worker: number): void {
  const last = workerMetrics.get(worker);
  workerMetrics.delete(worker);
  if (last) retiredMetrics.push(last.filter((m) => String(m.type) !== 'gauge'));
}

/** This process's metrics summed with its workers': one view of the whole collector. */
export async function collectorMetricsJson(): Promise<MetricsJson> {
  const own = await registry.getMetricsAsJSON();
  if (!workerMetrics.size && !retiredMetrics.length) return own;
  return AggregatorRegistry.aggregate([own, ...retiredMetrics, ...workerMetrics.values()]).getMetricsAsJSON();
}

/** The collector's counters (its workers' included) as prom-client JSON, written atomically for the sidecar. */
export async function writeMetricsSnapshot(stateDir: string): Promise<void> {
  const json = await collectorMetricsJson();
  writeFileAtomic(join(stateDir, metricsSnapshotFile), JSON.stringify(json));
}

/**
 * Prometheus text for GET /metrics: this process's registry summed with the collector's snapshot
 * (when stateDir has one). A missing or unreadable snapshot just leaves the collector's part out.
 */
export async function exposition(stateDir?: string): Promise<{ contentType: string; body: string }> {
  const own = await collectorMetricsJson();
  type Snapshot = MetricsJson;
  let other: Snapshot | undefined;
  if (stateDir) {
    try {
      other = JSON.parse(await readFile(join(stateDir, metricsSnapshotFile), 'utf8')) as Snapshot;
      if (!Array.isArray(other)) other = undefined;
    } catch {
      other = undefined;
    }
  }
  const merged = AggregatorRegistry.aggregate(other ? [own, other] : [own]);
  return { contentType: registry.contentType, body: await merged.metrics() };
}
