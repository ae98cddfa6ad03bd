import { dirname, join, resolve } from 'node:path';
import type { Config, ContentType } from '../config/load.js';
import { contentTypes } from '../config/load.js';
import { loadConfigOrReport, reportProblems } from '../config/report.js';
import { createLogger, redact, type Logger } from '../log.js';
import { formatProblem } from '../schema-check.js';
import { createSink } from '../output/create.js';
import { DefenderClient } from '../defender/client.js';
import * as metrics from '../status/metrics.js';
import { StatusStore } from '../status/store.js';
import { startCollectorProbes } from '../status/probes.js';
import { compileLogFilters } from '../config/log-filters.js';
import { TransformReloader, transformsDir } from '../transform/transforms.js';
import { Collector } from './collector.js';
import { reloadConfig } from './config-reload.js';
import { combineHooks, startStatusLoop, statusHooks, timedSink } from './observe.js';
import { progressHooks } from './progress.js';
import { openState } from '../state/open.js';
import { acquireLock, LockedError } from './lock.js';
import { reportToParent, superviseWorkers, workerConfig, workerShare } from './workers.js';

export interface RunOptions {
  config: string;
  once?: boolean;
  /** connector or connector:content, repeatable */
  resetCursor?: string[];
  /** overrides output.type (in_exec runs `run --once --output stdout`) */
  output?: 'stdout';
  /** a progress line per content type on stderr as pages are delivered */
  progress?: boolean;
  /** transforms folder (default: the packaged transforms/) */
  transforms?: string;
}

function parseReset(spec: string, names: string[]): { connector: string; content?: ContentType } | string {
  const i = spec.lastIndexOf(':');
  const connector = i === -1 ? spec : spec.slice(0, i);
  const content = i === -1 ? undefined : spec.slice(i + 1);
  if (!names.includes(connector)) return `--reset-cursor ${spec}: no connector named "${connector}" (known: ${names.join(', ')})`;
  if (content !== undefined && !contentTypes.includes(content as ContentType)) return `--reset-cursor ${spec}: content must be one of ${contentTypes.join(', ')}`;
  return { connector, content: content as ContentType | undefined };
}

/** `defender-fluent run`: the collector. Returns the exit code. */
export async function runCommand(opts: RunOptions): Promise<number> {
  const loaded = loadConfigOrReport(opts.config);
  if (!loaded) return 2;
  // a worker process (workers: N) runs its share of the connectors; its parent did the rest
  const share = workerShare();
  let config = share ? workerConfig(loaded.config, share) : loaded.config;
  const logger = share ? createLogger(config.logLevel).child({ worker: share.index }) : createLogger(config.logLevel);
  if (!share) for (const w of loaded.warnings) logger.warn(formatProblem(w));

  const opened = TransformReloader.open(opts.transforms ?? transformsDir, { logger });
  if (!opened.ok) {
    reportProblems(opened.problems);
    return 2;
  }
  const transforms = opened.reloader;

  // One collector per stateDir with files; with PostgreSQL any number of replicas share the tasks through leases.
  let lock;
  let disposeSignals = () => undefined as void;
  try {
    // A worker runs under its parent's lock. A lock of another host or container is watched until
    // its heartbeat moves or goes stale (at most 30 s), so a pod rescheduled onto a shared volume
    // starts without a crash loop.
    if (!share && config.state.type === 'file') {
      lock = await acquireLock(config.stateDir, 'collector.lock', {
        wait: true,
        onWatch: (h) => logger.warn(`${join(config.stateDir, 'collector.lock')} is held by pid ${h.pid}${h.host ? ` on ${h.host}` : ''}, whose pid cannot be checked here: watching its heartbeat for up to ${h.staleMs / 1000} s`),
        // another instance judged us dead and runs now: stop as on SIGTERM, never run side by side
        onLost: (reason) => {
          logger.error(`${reason}: stopping`);
          process.kill(process.pid, 'SIGTERM');
        },
      });
    }
  } catch (e) {
    if (e instanceof LockedError) {
      // two collectors on one stateDir is a deployment mistake, not a failed poll
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let state;
  try {
    state = await openState(config, logger);
  } catch (e) {
    await lock?.release();
    process.stderr.write(`error: cannot open the PostgreSQL state store: ${redact((e as Error).message)}\n`);
    return 1;
  }
  try {
    const cursors = state.store;
    for (const spec of opts.resetCursor ?? []) {
      const parsed = parseReset(spec, config.connectors.map((c) => c.name));
      if (typeof parsed === 'string') {
        process.stderr.write(`error: ${parsed}\n`);
        return 2;
      }
      const removed = await cursors.reset(parsed.connector, parsed.content);
      // the host content's state includes the machine inventory it wrote: started over, it is read afresh
      if (parsed.content === undefined || parsed.content === 'host') removed.push(...(await state.inventory.reset(parsed.connector)));
      logger.warn({ removed }, `cursor reset for ${spec}: the next poll starts from the lookback`);
    }
    const signals = stopSignals(config, logger);
    const { stopRequested } = signals;
    disposeSignals = signals.dispose;
    if (!share && config.workers > 1) {
      const args = [...(opts.once ? ['--once'] : []), ...(opts.output ? ['--output', opts.output] : []), ...(opts.progress ? ['--progress'] : []), ...(opts.transforms ? ['--transforms', opts.transforms] : [])];
      const status = new StatusStore(config.stateDir, { metricsSnapshot: true });
      status.keepOnly(config.connectors);
      // the health listener is the parent's: readiness from the workers' reports, /metrics summed over them
      const probes = await startCollectorProbes({ health: config.health, get connectors() { return config.connectors; } }, status, logger).catch((e: Error) => e);
      if (probes instanceof Error) {
        process.stderr.write(`error: ${probes.message}\n`);
        return 2;
      }
      const onReload = (next: typeof config) => {
        config = next;
        status.keepOnly(next.connectors);
      };
      try {
        return await superviseWorkers({ configFile: opts.config, config, args, once: !!opts.once, status, logger, stopRequested, onReload });
      } finally {
        await probes?.close();
      }
    }

    const output = opts.output === 'stdout' ? { type: 'stdout' as const, tagPrefix: config.output.tagPrefix } : config.output;
    const sink = timedSink(createSink(output, logger, dirname(resolve(opts.config))), output.type);
    const status = new StatusStore(config.stateDir, share ? { publish: (data) => void reportToParent(config, data) } : { metricsSnapshot: true });
    status.keepOnly(config.connectors);
    const mirror = state.statusMirror?.(status);
    const stopMirror = mirror?.start(15_000);
    const hooks = combineHooks(statusHooks(status), ...(mirror ? [mirror.hooks()] : []), ...(opts.progress ? [progressHooks()] : []));
    // readiness and the status records follow the connectors of the config running now (SIGHUP changes them)
    const running = { ...config, output, get connectors() { return config.connectors; } };
    const collector = new Collector({
      config: running,
      cursors: state.store,
      leases: state.leases,
      inventory: state.inventory,
      sink,
      mapper: transforms.mapperFn,
      filterFor: (c) => compileLogFilters(c.logFilters),
      logger,
      hooks,
      clientFor: (c) => {
        const client = new DefenderClient(c, { logger, events: metrics.clientEvents(c.name) });
        metrics.trackTokenRenewals(c.name, client.tokens);
        return client;
      },
    });
    let probes: { close(): Promise<void> } | undefined;
    try {
      // a worker's parent serves the listener for all of them
      if (!share) probes = await startCollectorProbes(running, status, logger);
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      await sink.close(0);
      return 2;
    }
    const stopStatus = startStatusLoop({ config: running, status, sink, runners: () => collector.runners.map((r) => r.state), logger });
    const stopLag = metrics.trackPollLag(() => collector.lags());
    const shutdownMs = config.shutdownTimeoutSeconds * 1000;

    // Stop polling, let in-flight batches be acknowledged (and their cursors committed) until the
    // deadline, then close the sink, which fails what is still unacknowledged: its cursor stays put.
    // `work` is what must finish besides the polling loops: the polls of a --once run.
    const shutdown = async (work: Promise<unknown> = Promise.resolve()): Promise<void> => {
      const stopped = collector.stop().then(() => work);
      await Promise.race([stopped, new Promise<void>((r) => setTimeout(r, shutdownMs).unref())]);
      await sink.close(0);
      await stopped;
    };
    // SIGHUP or an edited transform file reloads the transforms; a failed reload keeps the old ones.
    // SIGHUP also reloads the config's connectors (a worker's parent does that for its workers), one reload at a time.
    let reloading = Promise.resolve();
    const onHup = () => {
      void transforms.reload();
      if (share || opts.once) return;
      reloading = reloading
        .then(async () => {
          const next = reloadConfig(opts.config, config, logger)?.config;
          if (!next) return;
          config = next;
          const { removed, added, changed } = await collector.reconfigure(next.connectors);
          status.keepOnly(next.connectors);
          status.saveSoon();
          logger.info({ removed, added, changed }, 'config reloaded');
        })
        .catch((e: unknown) => logger.error({ err: e }, 'config reload failed; the running connectors are kept'));
    };
    const stopWatch = opts.once ? () => undefined : transforms.watch();
    process.on('SIGHUP', onHup);
    let code = 1;
    try {
      await state.leases?.start();
      if (opts.once) {
        const work = collector.runOnce();
        void stopRequested.then(() => shutdown(work));
        const failed = await work;
        collector.close();
        await sink.close(shutdownMs);
        return (code = failed ? 1 : 0);
      }
      collector.start();
      await stopRequested;
      await shutdown();
      return (code = 0);
    } finally {
      stopStatus();
      stopMirror?.();
      stopLag();
      stopWatch();
      await probes?.close();
      process.off('SIGHUP', onHup);
      // the last polls' results, coalesced by saveSoon(); a worker hands them over with its exit code
      if (share) await reportToParent(config, status.read(), code);
      else status.save();
    }
  } finally {
    await state.close();
    disposeSignals();
    await lock?.release();
  }
}

/**
 * SIGTERM/SIGINT ask for a stop (stopRequested); a second one exits at once. A worker also stops
 * when its parent is gone (its IPC channel closes).
 */
function stopSignals(config: Config, logger: Logger): { stopRequested: Promise<void>; dispose: () => void } {
  let signals = 0;
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn(`${sig} again: exiting now; unacknowledged work is not committed`);
      process.exit(130);
    }
    logger.info(`${sig}: stopping; waiting up to ${config.shutdownTimeoutSeconds}s for acknowledgements`);
    requestStop();
  };
  const onDisconnect = () => {
    logger.warn('the parent process is gone: stopping');
    requestStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (workerShare()) process.on('disconnect', onDisconnect);
  return {
    stopRequested,
    dispose() {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('disconnect', onDisconnect);
    },
  };
}
