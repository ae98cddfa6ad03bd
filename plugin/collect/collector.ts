import type { Config, Connector, ContentType } from '../config/load.js';
import { type Clock, systemClock, WaitInterruptedError } from '../defender/budget.js';
import { DefenderClient } from '../defender/client.js';
import { errorClassOf } from '../defender/errors.js';
import type { Logger } from '../log.js';
import { SinkClosedError, type Sink } from '../output/sink.js';
import type { TaskLeases } from '../state/leases.js';
import { LeaseLostError, type StateStore } from '../state/store.js';
import type { RecordMapper } from '../transform/mapper.js';
import { AlertsCollector } from './alerts.js';
import { CursorStore } from './cursor-store.js';
import { HostCollector } from './host.js';
import { HuntingCollector } from './hunting.js';
import { MachineActionsCollector } from './machine-actions.js';
import { makeEmitter, newCounters, type RecordFilter, type TaskCounters } from './pipeline.js';
import { type CollectorTask, type PollResult, StoppedError } from './task.js';
import { VulnerabilitiesCollector } from './vulnerabilities.js';

export interface TaskState {
  connector: string;
  content: ContentType;
  running: boolean;
  lastStart?: number;
  lastSuccess?: number;
  lastError?: { class: string; message: string; at: number };
  cursor?: string;
  counters: TaskCounters;
}

export interface CollectorHooks {
  onPollStart?(state: TaskState): void;
  onPollDone?(state: TaskState, result: PollResult): void;
  onPollFailed?(state: TaskState, error: unknown): void;
  onProgress?(state: TaskState, p: { pages: number; records: number; cursor: string }): void;
}

export interface CollectorOptions {
  config: Config;
  sink: Sink;
  mapper: () => RecordMapper;
  filterFor?: (connector: Connector) => RecordFilter | undefined;
  logger: Logger;
  clock?: Clock;
  hooks?: CollectorHooks;
  /** where cursors live (default: files under config.stateDir) */
  state?: StateStore;
  /** replicas sharing one database: a task is polled only under its lease */
  leases?: TaskLeases;
  /** overrides for tests: a client per connector, tasks per content type */
  clientFor?: (connector: Connector) => DefenderClient;
  taskFor?: (content: ContentType) => CollectorTask;
}

const tasks: Record<ContentType, () => CollectorTask> = {
  alerts: () => new AlertsCollector(),
  host: () => new HostCollector(),
  vulnerabilities: () => new VulnerabilitiesCollector(),
  machineActions: () => new MachineActionsCollector(),
  hunting: () => new HuntingCollector(),
};
const defaultTask = (content: ContentType): CollectorTask => tasks[content]();

interface Runner {
  state: TaskState;
  task: CollectorTask;
  connector: Connector;
  client: DefenderClient;
  emit: (entities: Record<string, unknown>[]) => Promise<void>;
  loop?: Promise<void>;
}

/**
 * Runs every connector × content type: each task polls on its own interval (the first at once),
 * never overlapping itself; a failing connector only reddens its own tasks.
 */
export class Collector {
  readonly runners: Runner[] = [];
  private readonly stopper = new AbortController();
  private readonly clock: Clock;
  private readonly cursors: StateStore;

  constructor(private readonly opts: CollectorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.cursors = opts.state ?? new CursorStore(opts.config.stateDir);
    const tagPrefix = opts.config.output.tagPrefix;
    for (const connector of opts.config.connectors) {
      if (!connector.functions.includes('collect')) continue;
      const client = opts.clientFor?.(connector) ?? new DefenderClient(connector, { logger: opts.logger, clock: this.clock });
      const filter = opts.filterFor?.(connector);
      for (const content of connector.contentTypes) {
        const counters = newCounters();
        this.runners.push({
          state: { connector: connector.name, content, running: false, counters },
          task: (opts.taskFor ?? defaultTask)(content),
          connector,
          client,
          emit: makeEmitter({ connector, content, sink: opts.sink, mapper: opts.mapper, filter, tagPrefix, clock: this.clock, counters }),
        });
      }
    }
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** One poll of every task (with leases: of every task this replica holds), concurrently; resolves with the number of tasks that failed. */
  async runOnce(): Promise<number> {
    const results = await Promise.all(this.runners.map((r) => this.pollOnce(r)));
    return results.filter((ok) => ok === false).length;
  }

  start(): void {
    for (const r of this.runners) r.loop = this.loop(r);
  }

  /** Stops polling; in-flight polls end at their next delivery or request, or at once when waiting on the API's budget or a retry. */
  async stop(): Promise<void> {
    this.stopper.abort();
    for (const client of new Set(this.runners.map((r) => r.client))) client.interruptWaits();
    await Promise.all(this.runners.map((r) => r.loop));
    this.close();
  }

  /** Releases the API connections (after runOnce, or once stopped). */
  close(): void {
    for (const client of new Set(this.runners.map((r) => r.client))) client.close();
  }

  private async loop(r: Runner): Promise<void> {
    const intervalMs = r.connector.intervalMinutes * 60_000;
    while (!this.stopped) {
      const started = this.clock.now();
      await this.pollOnce(r);
      // a task another replica holds (or that this one just handed on) is asked for again soon: its holder may die
      const leases = this.opts.leases;
      const wait = leases && !leases.holds(r.connector.name, r.task.content) ? leases.retryMs : started + intervalMs - this.clock.now();
      if (wait > 0) await this.sleep(wait);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopper.signal;
      // a stop that came while the poll was still running has already fired its event
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }

  /** Returns true when the poll succeeded (or was cut short by a stop or a lost lease), undefined when another replica holds the task. */
  private async pollOnce(r: Runner): Promise<boolean | undefined> {
    const { state, connector } = r;
    if (this.stopped) return true;
    const lease = this.opts.leases?.acquire(connector.name, r.task.content);
    if (this.opts.leases && !lease) return undefined;
    state.running = true;
    state.lastStart = this.clock.now();
    this.opts.hooks?.onPollStart?.(state);
    try {
      const result = await r.task.poll({
        connector,
        client: r.client,
        cursors: this.cursors,
        emit: r.emit,
        progress: (p) => this.opts.hooks?.onProgress?.(state, p),
        logger: this.opts.logger,
        clock: this.clock,
        signal: lease ? AbortSignal.any([this.stopper.signal, lease.signal]) : this.stopper.signal,
      });
      state.lastSuccess = this.clock.now();
      state.lastError = undefined;
      state.cursor = result.cursor;
      this.opts.logger.info({ connector: connector.name, content: r.task.content, pages: result.pages, records: result.records, cursor: result.cursor }, 'poll done');
      this.opts.hooks?.onPollDone?.(state, result);
      return true;
    } catch (e) {
      if (this.stopped && (e instanceof StoppedError || e instanceof SinkClosedError || e instanceof WaitInterruptedError)) return true;
      if (e instanceof LeaseLostError || lease?.signal.aborted) {
        // not a failure of the task: the replica that took it over reads on from the committed cursor
        this.opts.logger.warn({ connector: connector.name, content: r.task.content, err: e }, 'poll stopped: lease lost; its uncommitted work is read again by the new holder');
        return true;
      }
      const errorClass = errorClassOf(e);
      state.lastError = { class: errorClass, message: (e as Error)?.message ?? String(e), at: this.clock.now() };
      this.opts.logger.error({ connector: connector.name, content: r.task.content, err: e, errorClass }, 'poll failed; the cursor did not move');
      this.opts.hooks?.onPollFailed?.(state, e);
      return false;
    } finally {
      state.running = false;
      await lease?.done();
    }
  }
}
