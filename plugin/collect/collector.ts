import { setMaxListeners } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { type Config, type Connector, type ContentType, defaultMaxConcurrentPolls } from '../config/load.js';
import { type Clock, systemClock, WaitInterruptedError } from '../defender/budget.js';
import { DefenderClient } from '../defender/client.js';
import { withWaitHook } from '../defender/idle-waits.js';
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
import { FileMachineInventory, type MachineInventory } from './inventory.js';
import { MachineActionsCollector } from './machine-actions.js';
import { makeEmitter, newCounters, type RecordFilter, type TaskCounters } from './pipeline.js';
import { jitter, nextDue, PollSlots } from './scheduler.js';
import { type CollectorTask, type PollResult, StoppedError } from './task.js';
import { VulnerabilitiesCollector } from './vulnerabilities.js';

export interface TaskState {
  connector: string;
  content: ContentType;
  running: boolean;
  /** when the next poll is due (the current one's, while it waits for a slot or runs) */
  due?: number;
  /** waiting for a poll slot (maxConcurrentPolls are busy) */
  waiting?: boolean;
  /** how late the last poll started, ms after it was due */
  startLagMs?: number;
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
  /** where cursors live (default: files in stateDir; PostgreSQL for replicas) */
  cursors?: StateStore;
  /** replicas sharing one database: a task is polled only under its lease */
  leases?: TaskLeases;
  /** where machine inventories live (default: files under stateDir) */
  inventory?: MachineInventory;
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
  /** jitter(): phase in the interval, order among tasks due together */
  jitter: number;
  task: CollectorTask;
  connector: Connector;
  client: DefenderClient;
  emit: (entities: Record<string, unknown>[]) => Promise<void>;
  /** stops this task only (a reconfigure that removes its connector) or with the whole collector */
  stopper: AbortController;
  /** a retiring task (reconfigure) that waited shutdownTimeoutSeconds: it stops waiting for acknowledgements */
  abandon: AbortController;
  loop?: Promise<void>;
}

/**
 * Runs every connector × content type: each task polls on its own interval (the first at once),
 * never overlapping itself; a failing connector only reddens its own tasks. At most
 * maxConcurrentPolls polls run at once (PollSlots): a task that is due waits for a slot, oldest due
 * first, and is late (startLagMs, lagMs()) until it gets one; it is never skipped. One poll of one
 * task is the unit of work.
 */
export class Collector {
  readonly runners: Runner[] = [];
  readonly slots: PollSlots;
  private readonly stopper = new AbortController();
  private readonly clock: Clock;
  private readonly cursors: StateStore;
  private started = false;
  private readonly inventory: MachineInventory;

  constructor(private readonly opts: CollectorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.cursors = opts.cursors ?? new CursorStore(opts.config.stateDir);
    this.inventory = opts.inventory ?? new FileMachineInventory(opts.config.stateDir, (file, err) => opts.logger.warn({ file, err }, 'machine inventory unreadable: alerts are delivered without their machine fields until the next host poll rewrites it'));
    this.slots = new PollSlots(opts.config.maxConcurrentPolls ?? defaultMaxConcurrentPolls());
    for (const connector of opts.config.connectors) this.add(connector);
  }

  /** The runners of one connector (none when it does not collect), its client built afresh. */
  private add(connector: Connector): Runner[] {
    if (!connector.functions.includes('collect')) return [];
    const { opts } = this;
    const client = opts.clientFor?.(connector) ?? new DefenderClient(connector, { logger: opts.logger, clock: this.clock });
    const filter = opts.filterFor?.(connector);
    const added = connector.contentTypes.map((content): Runner => {
      const counters = newCounters();
      const stopper = new AbortController();
      const abandon = new AbortController();
      // a task's poll may listen for its stop in many places at once, and each delivery in flight for abandon: not a listener leak
      setMaxListeners(0, stopper.signal, abandon.signal);
      return {
        state: { connector: connector.name, content, running: false, waiting: false, counters },
        jitter: jitter(connector.name, content),
        task: (opts.taskFor ?? defaultTask)(content),
        connector,
        client,
        emit: makeEmitter({ connector, content, sink: opts.sink, mapper: opts.mapper, filter, tagPrefix: opts.config.output.tagPrefix, clock: this.clock, counters, abandon: abandon.signal }),
        stopper,
        abandon,
      };
    });
    this.runners.push(...added);
    return added;
  }

  /**
   * Applies a reloaded config's connectors: a removed or changed one (any field, a re-read secret
   * included) stops as on a stop (its in-flight deliveries acknowledged, its cursor committed, its
   * client closed); a changed one then starts afresh, as does a new one, polling at once. Unchanged
   * connectors keep running untouched. Resolves with the names removed, added and changed.
   */
  async reconfigure(connectors: Connector[]): Promise<{ removed: string[]; added: string[]; changed: string[] }> {
    const next = new Map(connectors.filter((c) => c.functions.includes('collect')).map((c) => [c.name, c]));
    const running = new Map(this.runners.map((r) => [r.connector.name, r.connector]));
    const changed = [...running.keys()].filter((n) => next.has(n) && !isDeepStrictEqual(next.get(n), running.get(n)));
    const removed = [...running.keys()].filter((n) => !next.has(n));
    const added = [...next.keys()].filter((n) => !running.has(n));
    const launch = (names: string[]) => {
      if (this.stopped) return;
      for (const name of names) for (const r of this.add(next.get(name)!)) if (this.started) r.loop = this.loop(r);
    };
    const retiring = this.runners.filter((r) => removed.includes(r.connector.name) || changed.includes(r.connector.name));
    for (const r of retiring) r.stopper.abort();
    for (const client of new Set(retiring.map((r) => r.client))) client.interruptWaits();
    // new connectors need not wait for the retiring ones' acknowledgements
    launch(added);
    // Those are awaited as on a stop, and for as long: then the retiring tasks give up what is still
    // unacknowledged (their cursors stay before it), so a pipeline that never acknowledges cannot hold
    // a reload, and with it a changed connector's restart and every later reload, for ever.
    const seconds = this.opts.config.shutdownTimeoutSeconds;
    const giveUp = setTimeout(() => {
      this.opts.logger.warn({ connectors: [...new Set(retiring.map((r) => r.connector.name))] }, `config reload: deliveries of removed or changed connectors not acknowledged within shutdownTimeoutSeconds (${seconds} s) are given up; their cursors stay before them, so they are read again if the connector comes back`);
      for (const r of retiring) r.abandon.abort(`connector ${r.connector.name} was removed or changed by a config reload before its delivery was acknowledged`);
    }, seconds * 1000);
    await Promise.all(retiring.map((r) => r.loop));
    clearTimeout(giveUp);
    for (const client of new Set(retiring.map((r) => r.client))) client.close();
    for (const r of retiring) this.runners.splice(this.runners.indexOf(r), 1);
    // the old tasks of a changed connector have ended before its new ones start: one poll per cursor at a time
    launch(changed);
    return { removed, added, changed };
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** One poll of every task (with leases: of every task this replica holds), maxConcurrentPolls at a time; resolves with the number of tasks that failed. */
  async runOnce(): Promise<number> {
    const due = this.clock.now();
    const results = await Promise.all(this.runners.map((r) => this.pollInSlot(r, due)));
    return results.filter((ok) => !ok).length;
  }

  /** How late each task is, ms: while it waits for a slot, since it was due; otherwise how late its last poll started. */
  lags(): { connector: string; content: ContentType; lagMs: number }[] {
    const now = this.clock.now();
    return this.runners.map(({ state: s }) => ({ connector: s.connector, content: s.content, lagMs: s.waiting && s.due !== undefined ? Math.max(0, now - s.due) : (s.startLagMs ?? 0) }));
  }

  start(): void {
    this.started = true;
    for (const r of this.runners) r.loop = this.loop(r);
  }

  /** Stops polling; in-flight polls end at their next delivery or request, or at once when waiting on the API's budget or a retry. */
  async stop(): Promise<void> {
    this.stopper.abort();
    for (const r of this.runners) r.stopper.abort();
    this.slots.open();
    for (const client of new Set(this.runners.map((r) => r.client))) client.interruptWaits();
    await Promise.all(this.runners.map((r) => r.loop));
    this.close();
  }

  /** Releases the API connections (after runOnce, or once stopped). */
  close(): void {
    for (const client of new Set(this.runners.map((r) => r.client))) client.close();
  }

  /**
   * The first poll is due at once (a catch-up), the second at the task's phase within the first
   * interval, so that tasks started together spread out; then one interval after the other (nextDue).
   */
  private async loop(r: Runner): Promise<void> {
    const intervalMs = r.connector.intervalMinutes * 60_000;
    const first = this.clock.now();
    await this.pollInSlot(r, first);
    let due = first + Math.max(1, Math.round(r.jitter * intervalMs));
    while (!r.stopper.signal.aborted) {
      // a task another replica holds (or that this one handed on) is asked for again soon, its holder
      // may die; once it is held here it is polled at once (a dead replica's task is overdue)
      const leases = this.opts.leases;
      if (leases && !leases.holds(r.connector.name, r.task.content)) {
        await this.sleep(leases.retryMs, r.stopper.signal);
        due = this.clock.now();
        continue;
      }
      const wait = due - this.clock.now();
      if (wait > 0) await this.sleep(wait, r.stopper.signal);
      await this.pollInSlot(r, due);
      due = nextDue(due, r.state.lastStart ?? due, intervalMs);
    }
  }

  /** Waits for a slot (oldest due first), polls, gives the slot back; the slot is free while the poll sleeps on the API. */
  private async pollInSlot(r: Runner, due: number): Promise<boolean> {
    // with leases, a task held elsewhere takes no slot
    if (this.opts.leases && !this.opts.leases.holds(r.connector.name, r.task.content)) return true;
    const claim = { due, tie: r.jitter };
    r.state.due = due;
    r.state.waiting = true;
    await this.slots.take(claim);
    r.state.waiting = false;
    r.state.startLagMs = Math.max(0, this.clock.now() - due);
    try {
      return (await withWaitHook(this.slots.hook(claim), () => this.pollOnce(r))) !== false;
    } finally {
      this.slots.give();
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
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
    const stopped = () => r.stopper.signal.aborted;
    if (stopped()) return true;
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
        inventory: this.inventory,
        emit: r.emit,
        progress: (p) => this.opts.hooks?.onProgress?.(state, p),
        logger: this.opts.logger,
        clock: this.clock,
        signal: lease ? AbortSignal.any([r.stopper.signal, lease.signal]) : r.stopper.signal,
      });
      state.lastSuccess = this.clock.now();
      state.lastError = undefined;
      state.cursor = result.cursor;
      this.opts.logger.info({ connector: connector.name, content: r.task.content, pages: result.pages, records: result.records, cursor: result.cursor }, 'poll done');
      this.opts.hooks?.onPollDone?.(state, result);
      return true;
    } catch (e) {
      if (stopped() && (e instanceof StoppedError || e instanceof SinkClosedError || e instanceof WaitInterruptedError)) return true;
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
