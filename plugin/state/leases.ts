import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { ContentType } from '../config/load.js';
import type { Logger } from '../log.js';

/** The lease of one task for one poll (see TaskLeases). */
export interface TaskLease {
  /** aborted when the lease is lost (not renewed in time): the poll stops before it commits */
  readonly signal: AbortSignal;
  /** after the poll: keeps the lease for the next one, or gives it up when this replica holds more than its share */
  done(): Promise<void>;
}

/**
 * How the Collector shares tasks with other replicas: a task is polled only under its lease.
 * acquire() answers from what this replica holds (no query); taking and renewing leases happens
 * in the background.
 */
export interface TaskLeases {
  acquire(connector: string, content: ContentType): TaskLease | undefined;
  /** whether this replica holds the task's lease now (after a poll: kept, or handed on) */
  holds(connector: string, content: ContentType): boolean;
  /** how long a task skipped for want of its lease waits before asking again */
  readonly retryMs: number;
}

export interface Task {
  connector: string;
  content: ContentType;
}

const id = (connector: string, content: string) => `${connector}\u0000${content}`;

/**
 * Row leases in PostgreSQL (table defender_fluent_tasks): a task row has an owner and a
 * lease_until. Every leaseMs / 3 a replica (1) marks itself alive in defender_fluent_replicas,
 * (2) renews the leases it holds in one UPDATE (those not renewed are lost: their polls are
 * aborted), (3) when it holds more than its fair share, ceil(tasks / live replicas with the same
 * tasks), gives the excess back (idle tasks at once, a task being polled when its poll ends:
 * rebalance when a replica joins), and (4) when it holds fewer, claims free or expired tasks with SELECT … FOR UPDATE SKIP
 * LOCKED, so replicas claiming at once take different rows without waiting on each other. A stopped
 * replica releases all at once; a killed one's leases expire after leaseMs and are claimed at the
 * next claim of another.
 */
export class LeaseManager implements TaskLeases {
  readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  readonly retryMs: number;
  private readonly tickMs: number;
  /**
   * Names this replica's set of tasks. Only replicas with the same set share it: the workers of one
   * deployment (workers: N) each run other connectors, and counting them would leave tasks nobody claims.
   */
  private readonly taskSet: string;
  private readonly held = new Map<string, { task: Task; controller: AbortController; polling: boolean; renewedAt: number }>();
  private fairShare = Infinity;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly tasks: Task[],
    private readonly opts: { leaseMs: number; logger: Logger; owner?: string },
  ) {
    if (opts.owner) this.owner = opts.owner;
    this.tickMs = Math.max(100, Math.floor(opts.leaseMs / 3));
    // a task claimed in the background starts polling within a second (a lookup in `held`, no query)
    this.retryMs = Math.min(1000, this.tickMs);
    this.taskSet = createHash('sha256').update(tasks.map((t) => id(t.connector, t.content)).sort().join('\u0001')).digest('base64url');
  }

  /** Registers the tasks, takes a first share, then keeps the leases in the background. */
  async start(): Promise<void> {
    await this.pool.query(
      'INSERT INTO defender_fluent_tasks (connector, content) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING',
      [this.tasks.map((t) => t.connector), this.tasks.map((t) => t.content)],
    );
    await this.tick();
    this.timer = setInterval(() => void this.tickOnce(), this.tickMs);
  }

  /** The tasks this replica holds now. */
  holding(): Task[] {
    return [...this.held.values()].map((h) => h.task);
  }

  holds(connector: string, content: ContentType): boolean {
    const h = this.held.get(id(connector, content));
    return !!h && !h.controller.signal.aborted;
  }

  acquire(connector: string, content: ContentType): TaskLease | undefined {
    const key = id(connector, content);
    const h = this.held.get(key);
    if (!h || h.controller.signal.aborted) return undefined;
    h.polling = true;
    return {
      signal: h.controller.signal,
      done: async () => {
        h.polling = false;
        if (this.held.get(key) !== h || this.held.size <= this.fairShare) return;
        this.held.delete(key);
        await this.release([h.task]).catch((e) => this.opts.logger.warn({ err: e }, 'lease release failed; it expires instead'));
        this.opts.logger.info({ connector, content, share: this.fairShare }, 'lease released to another replica (more than this replica\'s share)');
      },
    };
  }

  /** Stops renewing and gives every lease back, so other replicas take the tasks over at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    const tasks = this.holding();
    this.held.clear();
    await this.release(tasks).catch(() => undefined);
    await this.pool.query('DELETE FROM defender_fluent_replicas WHERE owner = $1', [this.owner]).catch(() => undefined);
  }

  private tickOnce(): void {
    // a renewal still hanging (database out of reach): leases past their period are given up here
    if (this.ticking) return this.expireLocally();
    this.ticking = this.tick()
      .catch((e) => {
        this.opts.logger.warn({ err: e }, 'lease renewal failed; polls whose lease expires are stopped');
        this.expireLocally();
      })
      .finally(() => (this.ticking = undefined));
  }

  private async tick(): Promise<void> {
    const ttl = `${this.opts.leaseMs} milliseconds`;
    const startedAt = Date.now();
    const { rows: live } = await this.pool.query<{ n: string }>(
      `WITH me AS (
         INSERT INTO defender_fluent_replicas (owner, seen_until, tasks) VALUES ($1, clock_timestamp() + $2::interval, $3)
         ON CONFLICT (owner) DO UPDATE SET seen_until = EXCLUDED.seen_until, tasks = EXCLUDED.tasks)
       SELECT count(*) + 1 AS n FROM defender_fluent_replicas WHERE owner <> $1 AND seen_until > clock_timestamp() AND tasks = $3`,
      [this.owner, ttl, this.taskSet],
    );
    this.fairShare = Math.ceil(this.tasks.length / Number(live[0]!.n));
    const { rows: renewed } = await this.pool.query<Task>(
      'UPDATE defender_fluent_tasks SET lease_until = clock_timestamp() + $2::interval WHERE owner = $1 AND lease_until > clock_timestamp() RETURNING connector, content',
      [this.owner, ttl],
    );
    const still = new Set(renewed.map((t) => id(t.connector, t.content)));
    for (const [key, h] of this.held) {
      if (still.has(key)) h.renewedAt = startedAt;
      else this.lose(key, 'not renewed in time (taken over, or reset)');
    }
    // over the share (a replica joined): idle tasks go back now, one being polled when its poll ends (done())
    const idle = [...this.held].filter(([, h]) => !h.polling).slice(0, Math.max(0, this.held.size - this.fairShare));
    if (idle.length) {
      for (const [key] of idle) this.held.delete(key);
      await this.release(idle.map(([, h]) => h.task));
      this.opts.logger.info({ tasks: idle.map(([, h]) => `${h.task.connector}:${h.task.content}`), share: this.fairShare }, "leases released to other replicas (more than this replica's share)");
    }
    const want = this.fairShare - this.held.size;
    if (want <= 0) return;
    const { rows: claimed } = await this.pool.query<Task>(
      `UPDATE defender_fluent_tasks t SET owner = $1, lease_until = clock_timestamp() + $2::interval
       FROM (SELECT connector, content FROM defender_fluent_tasks
             WHERE (owner IS NULL OR lease_until IS NULL OR lease_until <= clock_timestamp())
               AND (connector, content) IN (SELECT * FROM unnest($3::text[], $4::text[]))
             ORDER BY lease_until NULLS FIRST LIMIT $5 FOR UPDATE SKIP LOCKED) free
       WHERE t.connector = free.connector AND t.content = free.content
       RETURNING t.connector, t.content`,
      [this.owner, ttl, this.tasks.map((t) => t.connector), this.tasks.map((t) => t.content), want],
    );
    for (const t of claimed) this.held.set(id(t.connector, t.content), { task: { connector: t.connector, content: t.content as ContentType }, controller: new AbortController(), polling: false, renewedAt: startedAt });
    if (claimed.length) this.opts.logger.info({ tasks: claimed.map((t) => `${t.connector}:${t.content}`), holding: this.held.size, share: this.fairShare }, 'leases taken');
  }

  /** The database is out of reach: a lease not renewed for leaseMs may be another's by now. */
  private expireLocally(): void {
    const now = Date.now();
    for (const [key, h] of this.held) if (now - h.renewedAt >= this.opts.leaseMs) this.lose(key, 'not renewed within the lease period');
  }

  private lose(key: string, why: string): void {
    const h = this.held.get(key)!;
    this.held.delete(key);
    h.controller.abort();
    this.opts.logger.warn({ connector: h.task.connector, content: h.task.content, polling: h.polling }, `lease lost: ${why}`);
  }

  private async release(tasks: Task[]): Promise<void> {
    if (!tasks.length) return;
    await this.pool.query(
      'UPDATE defender_fluent_tasks SET owner = NULL, lease_until = NULL WHERE owner = $1 AND (connector, content) IN (SELECT * FROM unnest($2::text[], $3::text[]))',
      [this.owner, tasks.map((t) => t.connector), tasks.map((t) => t.content)],
    );
  }
}
