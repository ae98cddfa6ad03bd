import { fork, type ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import * as metrics from '../status/metrics.js';
import { reloadConfig } from './config-reload.js';
import type { ConnectorStatus, StatusFile, StatusStore } from '../status/store.js';

/** In a worker's environment: its share, as JSON ({"index": k, "count": n, "connectors": [names]}: worker k of n). */
export const workerEnv = 'DEFENDER_FLUENT_WORKER';

export interface WorkerShare {
  index: number;
  count: number;
  /** the names of the connectors this worker runs */
  connectors: string[];
}

/** This process's share when it is a worker, else undefined. */
export function workerShare(env: NodeJS.ProcessEnv = process.env): WorkerShare | undefined {
  let v: Partial<WorkerShare> | undefined;
  try {
    v = JSON.parse(env[workerEnv] ?? 'null') as Partial<WorkerShare> | undefined;
  } catch {
    return undefined;
  }
  return v && Number.isInteger(v.index) && Number.isInteger(v.count) && Array.isArray(v.connectors) && v.connectors.every((n) => typeof n === 'string') ? (v as WorkerShare) : undefined;
}

/** A worker's config: its connectors, and its part of maxConcurrentPolls, so that the whole process keeps the configured bound. */
export function workerConfig(config: Config, share: WorkerShare): Config {
  const mine = new Set(share.connectors);
  return {
    ...config,
    connectors: config.connectors.filter((c) => mine.has(c.name)),
    maxConcurrentPolls: Math.max(1, Math.ceil(config.maxConcurrentPolls / share.count)),
  };
}

/** The connectors of each of `count` workers: every count-th one of the config, so that each worker has as many. */
export function partition(config: Config, count: number): string[][] {
  return Array.from({ length: count }, (_, w) => config.connectors.filter((_c, i) => i % count === w).map((c) => c.name));
}

/**
 * The partition after a reload, moving no connector from one worker to another: a connector that stays
 * stays on its worker, a removed one leaves it, a new one goes to the worker with the fewest. Only the
 * workers whose connectors changed (in name or in settings) restart. With another number of workers
 * (fewer connectors than `workers`, or no longer), all of them start again on a new partition.
 */
export function repartition(before: string[][], old: Config, next: Config, count: number): { shares: string[][]; restart: number[] | 'all' } {
  if (count !== before.length) return { shares: partition(next, count), restart: 'all' };
  const was = new Map(old.connectors.map((c) => [c.name, c]));
  const now = new Map(next.connectors.map((c) => [c.name, c]));
  const shares = before.map((share) => share.filter((n) => now.has(n)));
  const placed = new Set(shares.flat());
  for (const c of next.connectors) {
    if (placed.has(c.name)) continue;
    const fewest = shares.reduce((best, share, w) => (share.length < (shares[best] as string[]).length ? w : best), 0);
    (shares[fewest] as string[]).push(c.name);
  }
  const restart = shares.flatMap((share, w) => {
    const prior = before[w] as string[];
    return share.length === prior.length && share.every((n, i) => n === prior[i] && isDeepStrictEqual(was.get(n), now.get(n))) ? [] : [w];
  });
  return { shares, restart };
}

/** What a worker sends its parent: its connectors' status and its metrics; `done` with the exit code once it has finished on its own (--once). */
export interface WorkerReport {
  status: Record<string, ConnectorStatus>;
  metrics: metrics.MetricsJson;
  done?: number;
}

/** In a worker: sends the status of its connectors and its metrics to the parent; resolves once sent. */
export async function reportToParent(config: Config, data: StatusFile, done?: number): Promise<void> {
  const status: Record<string, ConnectorStatus> = {};
  for (const c of config.connectors) if (data.connectors[c.name]) status[c.name] = data.connectors[c.name]!;
  const report: WorkerReport = { status, metrics: await metrics.registry.getMetricsAsJSON(), ...(done === undefined ? {} : { done }) };
  // the parent may be gone (it stops its workers when it stops): nothing left to report to
  if (!process.connected) return;
  await new Promise<void>((resolve) => process.send!(report, () => resolve()));
}

/** Passes whole lines only, so that the records of several workers reach the one stdout without cutting into each other. */
class WholeLines extends Transform {
  private rest: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const end = buf.lastIndexOf(10);
    this.rest = Buffer.from(end === -1 ? buf : buf.subarray(end + 1));
    done(null, end === -1 ? undefined : buf.subarray(0, end + 1));
  }

  /** A worker that died mid-line leaves a cut record: dropped (its batch was never acknowledged, so it is sent again). */
  override _flush(done: TransformCallback): void {
    done();
  }
}

export interface SuperviseOptions {
  configFile: string;
  config: Config;
  /** the worker's `run` arguments besides --config (--once, --output stdout, --progress, --transforms DIR) */
  args: string[];
  once: boolean;
  status: StatusStore;
  logger: Logger;
  /** resolves when a stop was asked for (SIGTERM/SIGINT) */
  stopRequested: Promise<void>;
  /** the config the workers were restarted on after a reload */
  onReload?(config: Config): void;
}

const cliFile = fileURLToPath(new URL(`../cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/**
 * `run` with `workers: N`: N processes of this same program (child_process.fork), each running a
 * disjoint share of the connectors with the usual at-least-once rules. Processes rather than threads:
 * each has its own heap and native memory, and one that crashes or runs out of memory takes only its
 * share down; it is restarted and resumes from its cursors (what it had not seen acknowledged is
 * read again). This process keeps the lock, writes the one status.json and metrics snapshot from the
 * workers' reports, relays their stdout line by line, and passes SIGHUP (transforms reload; a config
 * reload, see onHup) and the stop signals on. Resolves with the exit code.
 */
export async function superviseWorkers(o: SuperviseOptions): Promise<number> {
  const { logger, status } = o;
  let config = o.config;
  let count = Math.min(config.workers, config.connectors.length);
  let shares = partition(config, count);
  const workers: (ChildProcess | undefined)[] = [];
  const codes: (number | undefined)[] = [];
  let stopping = false;
  /** a reload that changed the connectors: the workers in `stop` stop, then those in `start` start on the new partition */
  let pending: { config: Config; count: number; shares: string[][]; stop: Set<number>; start: number[] } | undefined;
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  // a worker started from the TypeScript sources needs the loader its parent runs under
  const execArgv = cliFile.endsWith('.ts') && !process.execArgv.some((a) => a.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv;

  const start = (index: number, failures: number) => {
    const startedAt = Date.now();
    const child = fork(cliFile, ['run', '--config', o.configFile, ...o.args], {
      env: { ...process.env, [workerEnv]: JSON.stringify({ index, count, connectors: shares[index] ?? [] } satisfies WorkerShare) },
      execArgv,
      // its own process group: a Ctrl-C reaches this process only, which passes one SIGINT on (a
      // second one would make the worker exit at once without its acknowledgements)
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    workers[index] = child;
    child.stdout!.pipe(new WholeLines()).pipe(process.stdout, { end: false });
    logger.info({ worker: index, pid: child.pid, connectors: shares[index]?.length ?? 0 }, 'worker started');
    let done: number | undefined;
    child.on('message', (m: WorkerReport) => {
      status.merge(m.status);
      metrics.setWorkerMetrics(index, m.metrics);
      status.saveSoon();
      if (m.done !== undefined) done = m.done;
    });
    child.once('exit', (code, signal) => {
      metrics.retireWorkerMetrics(index);
      workers[index] = undefined;
      // --once: a worker that finished says so first; anything else is a death, even an exit 0
      if (pending?.stop.has(index) && !stopping) {
        pending.stop.delete(index);
        if (!pending.stop.size) applyReload();
        return;
      }
      if (stopping || (o.once && done !== undefined)) {
        codes[index] = done ?? code ?? 1;
        if (workers.every((w) => !w)) allDone();
        return;
      }
      // a worker that ran a while starts again at once; one that keeps dying waits up to 30 s
      const again = Date.now() - startedAt > 60_000 ? 0 : failures + 1;
      const delay = again ? Math.min(30_000, 1000 * 2 ** (again - 1)) : 0;
      logger.error({ worker: index, code, signal, restartInMs: delay }, 'worker died; restarting it: it resumes from its cursors');
      setTimeout(() => {
        // a reload may have started it afresh meanwhile, is about to, or left fewer workers
        if (workers[index] || index >= count || pending?.start.includes(index)) return;
        if (!stopping) start(index, again);
        else if (workers.every((w) => !w)) allDone();
      }, delay).unref();
    });
  };

  const applyReload = () => {
    const p = pending as NonNullable<typeof pending>;
    pending = undefined;
    ({ config, count, shares } = p);
    o.onReload?.(config);
    for (const i of p.start) start(i, 0);
  };
  // SIGHUP: the workers reload their transforms. When the connectors changed in a valid config, the
  // workers whose connectors changed stop as on SIGTERM (acknowledgements awaited, cursors committed)
  // and start again on the new partition; the others keep running. No connector moves from one worker
  // to another (repartition), so none is ever polled by two processes. An invalid config changes
  // nothing (reloadConfig logs why); nor does one that also changes a setting that waits for a
  // restart, since a worker reads the whole file.
  const onHup = () => {
    const reloaded = o.once || stopping || pending ? undefined : reloadConfig(o.configFile, config, logger);
    const next = reloaded?.config;
    if (!next || isDeepStrictEqual(next.connectors, config.connectors)) return workers.forEach((w) => w?.kill('SIGHUP'));
    if (reloaded.kept.length) {
      logger.error(`config reload: with workers the connectors change waits for a restart too, as ${reloaded.kept.join(', ')} changed (each worker reads the whole file when it starts)`);
      return workers.forEach((w) => w?.kill('SIGHUP'));
    }
    const nextCount = Math.min(next.workers, next.connectors.length);
    const { shares: nextShares, restart } = repartition(shares, config, next, nextCount);
    const startIdx = restart === 'all' ? [...Array(nextCount).keys()] : restart;
    const stop = new Set((restart === 'all' ? [...workers.keys()] : restart).filter((i) => workers[i]));
    pending = { config: next, count: nextCount, shares: nextShares, stop, start: startIdx };
    logger.info({ restart: startIdx }, restart === 'all' ? 'config reloaded: the number of workers changed; restarting all of them on a new partition' : 'config reloaded: restarting the workers whose connectors changed; the others keep running');
    workers.forEach((w, i) => w?.kill(stop.has(i) ? 'SIGTERM' : 'SIGHUP'));
    if (!stop.size) applyReload();
  };
  // a second stop signal exits this process at once (process.exit): the workers get theirs too
  const onExit = () => workers.forEach((w) => w?.kill('SIGTERM'));
  // a closed stdout (EPIPE) must not crash this process: the workers' writes then go unacknowledged, their cursors stay put
  const onStdoutError = (e: Error) => logger.error({ err: e }, "stdout is closed: the workers' records are not relayed");
  process.on('SIGHUP', onHup);
  process.on('exit', onExit);
  process.stdout.on('error', onStdoutError);
  try {
    for (let i = 0; i < count; i++) start(i, 0);
    void o.stopRequested.then(() => {
      stopping = true;
      workers.forEach((w) => w?.kill('SIGTERM'));
      if (workers.every((w) => !w)) allDone();
    });
    await finished;
    return Math.max(0, ...codes.map((c) => c ?? 0));
  } finally {
    process.off('SIGHUP', onHup);
    process.off('exit', onExit);
    process.stdout.off('error', onStdoutError);
    status.save();
  }
}
