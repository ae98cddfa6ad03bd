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

/** In a worker's environment: "k/n", its share of the connectors (worker k of n). */
export const workerEnv = 'DEFENDER_FLUENT_WORKER';

export interface WorkerShare {
  index: number;
  count: number;
}

/** This process's share when it is a worker, else undefined. */
export function workerShare(env: NodeJS.ProcessEnv = process.env): WorkerShare | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(env[workerEnv] ?? '');
  return m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
}

/**
 * A worker's config: every count-th connector (a disjoint share, stable for a given config), and
 * its part of maxConcurrentPolls, so that the whole process keeps the configured bound.
 */
export function workerConfig(config: Config, share: WorkerShare): Config {
  return {
    ...config,
    connectors: config.connectors.filter((_, i) => i % share.count === share.index),
    maxConcurrentPolls: Math.max(1, Math.ceil(config.maxConcurrentPolls / share.count)),
  };
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
  const workers: (ChildProcess | undefined)[] = [];
  const codes: (number | undefined)[] = [];
  let stopping = false;
  /** the config a reload changed the connectors to: the workers stop, then start again on it */
  let restartWith: Config | undefined;
  let allDone!: () => void;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  // a worker started from the TypeScript sources needs the loader its parent runs under
  const execArgv = cliFile.endsWith('.ts') && !process.execArgv.some((a) => a.includes('tsx')) ? [...process.execArgv, '--import', 'tsx'] : process.execArgv;

  const start = (index: number, failures: number) => {
    const startedAt = Date.now();
    const child = fork(cliFile, ['run', '--config', o.configFile, ...o.args], {
      env: { ...process.env, [workerEnv]: `${index}/${count}` },
      execArgv,
      // its own process group: a Ctrl-C reaches this process only, which passes one SIGINT on (a
      // second one would make the worker exit at once without its acknowledgements)
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    workers[index] = child;
    child.stdout!.pipe(new WholeLines()).pipe(process.stdout, { end: false });
    const names = workerConfig(config, { index, count }).connectors.map((c) => c.name);
    logger.info({ worker: index, pid: child.pid, connectors: names.length }, 'worker started');
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
      if (restartWith && !stopping) {
        if (workers.every((w) => !w)) startAll();
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
        // a reload may have started every worker afresh meanwhile
        if (restartWith || workers[index]) return;
        if (!stopping) start(index, again);
        else if (workers.every((w) => !w)) allDone();
      }, delay).unref();
    });
  };

  const startAll = () => {
    if (restartWith) {
      config = restartWith;
      restartWith = undefined;
      count = Math.min(config.workers, config.connectors.length);
      o.onReload?.(config);
    }
    for (let i = 0; i < count; i++) start(i, 0);
  };
  // SIGHUP: the workers reload their transforms. When the connectors changed in a valid config, every
  // worker stops as on SIGTERM (acknowledgements awaited, cursors committed) and all start again on the
  // new partition; all of them at once, so that no connector that moves to another worker is ever
  // polled by two processes. An invalid config changes nothing (reloadConfig logs why); nor does one
  // that also changes a setting that waits for a restart, since a worker reads the whole file.
  const onHup = () => {
    const reloaded = o.once || stopping || restartWith ? undefined : reloadConfig(o.configFile, config, logger);
    const next = reloaded?.config;
    if (!next || isDeepStrictEqual(next.connectors, config.connectors)) return workers.forEach((w) => w?.kill('SIGHUP'));
    if (reloaded.kept.length) {
      logger.error(`config reload: with workers the connectors change waits for a restart too, as ${reloaded.kept.join(', ')} changed (each worker reads the whole file when it starts)`);
      return workers.forEach((w) => w?.kill('SIGHUP'));
    }
    logger.info('config reloaded: the connectors changed; restarting the workers on the new partition');
    restartWith = next;
    if (workers.every((w) => !w)) return startAll();
    workers.forEach((w) => w?.kill('SIGTERM'));
  };
  // a second stop signal exits this process at once (process.exit): the workers get theirs too
  const onExit = () => workers.forEach((w) => w?.kill('SIGTERM'));
  // a closed stdout (EPIPE) must not crash this process: the workers' writes then go unacknowledged, their cursors stay put
  const onStdoutError = (e: Error) => logger.error({ err: e }, "stdout is closed: the workers' records are not relayed");
  process.on('SIGHUP', onHup);
  process.on('exit', onExit);
  process.stdout.on('error', onStdoutError);
  try {
    startAll();
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
