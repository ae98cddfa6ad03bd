import assert from 'node:assert/strict';
import type pg from 'pg';
import { Collector } from '../plugin/collect/collector.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { type CollectorTask, throwIfStopped } from '../plugin/collect/task.js';
import type { ContentType } from '../plugin/config/load.js';
import { LeaseManager, type Task, type TaskLease, type TaskLeases } from '../plugin/state/leases.js';
import { openPool, PgStateStore } from '../plugin/state/postgres.js';
import { LeaseLostError } from '../plugin/state/store.js';
import { captureLogger } from './helpers/collect.js';
import { testConfig } from './helpers/connector.js';
import { MemorySink } from './helpers/memory-sink.js';
import { RawMapper } from './helpers/raw-mapper.js';
import { until } from './helpers/until.js';
import { freshDatabase, holdLease } from './helpers/postgres.js';

const names = (ts: Task[]) => ts.map((t) => `${t.connector}:${t.content}`).sort();

describe('leases: LeaseManager on a real PostgreSQL', function () {
  this.timeout(60_000);
  const tasks: Task[] = ['t1', 't2'].flatMap((connector) => (['alerts', 'host'] as const).map((content) => ({ connector, content })));
  let pool: pg.Pool;
  const managers: LeaseManager[] = [];
  const manager = (owner: string) => {
    const m = new LeaseManager(pool, tasks, { leaseMs: 1500, logger: captureLogger().logger, owner });
    managers.push(m);
    return m;
  };
  beforeEach(async () => {
    pool = await openPool(await freshDatabase());
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.stop();
    await pool.end();
  });

  it('a replica that joins takes its share from one that holds all (a task being polled stays until its poll ends); a stopped one gives its tasks back at once; never one task on two', async () => {
    const a = manager('A');
    await a.start();
    assert.deepEqual(names(a.holding()), names(tasks), 'alone, a replica takes every task');
    const b = manager('B');
    await b.start();
    assert.deepEqual(b.holding(), [], 'no task is taken from a live holder');
    // past its share (2 of 4 with two replicas) A gives idle tasks back at its next renewal, and B takes them
    const polling = a.acquire('t1', 'alerts')!;
    await until('A gives back what is over its share', () => a.holding().length === 2);
    assert.ok(a.holds('t1', 'alerts') && !polling.signal.aborted, 'the task being polled is not taken from under its poll');
    await polling.done();
    assert.ok(a.holds('t1', 'alerts'), 'within its share, A keeps it after the poll');
    await until('B takes the tasks given back', () => b.holding().length === 2);
    assert.deepEqual(names([...a.holding(), ...b.holding()]), names(tasks), 'every task held once');
    const { rows } = await pool.query<{ owner: string }>('SELECT owner FROM defender_fluent_tasks ORDER BY owner');
    assert.deepEqual(rows.map((r) => r.owner), ['A', 'A', 'B', 'B']);
    // B stops (SIGTERM): its leases are released, and A takes them on its next claim
    await b.stop();
    await until('A takes back what B released', () => a.holding().length === 4);
  });

  it('replicas that run other tasks (the workers of one deployment, each with its own connectors) do not shrink a replica’s share: every task is claimed', async () => {
    const other = new LeaseManager(pool, [{ connector: 'elsewhere', content: 'alerts' }], { leaseMs: 1500, logger: captureLogger().logger, owner: 'W1' });
    managers.push(other);
    await other.start();
    const a = manager('W0');
    await a.start();
    assert.deepEqual(names(a.holding()), names(tasks), 'no other replica offers these tasks: W0 takes them all');
    assert.deepEqual(names(other.holding()), ['elsewhere:alerts']);
    // a replica with the same tasks does count: W0 gives it half
    const b = manager('B');
    await b.start();
    await until('B takes its share of the same tasks', () => b.holding().length === 2 && a.holding().length === 2);
  });

  it('a lease taken over behind a replica’s back is lost: the poll holding it is aborted and the task is not acquired again', async () => {
    const a = manager('A');
    await a.start();
    const lease = a.acquire('t1', 'alerts')!;
    assert.equal(lease.signal.aborted, false);
    await holdLease(pool, 'C', 't1', 'alerts'); // as if A's lease had run out and C claimed it
    await until('A notices at its next renewal', () => lease.signal.aborted);
    assert.equal(a.acquire('t1', 'alerts'), undefined);
    assert.ok(a.acquire('t1', 'host'), 'the other leases are kept');
  });

  it('an operator’s reset (--reset-cursor) takes the lease with the cursor: the holder’s poll is stopped and it cannot write its old cursor back', async () => {
    const a = manager('A');
    await a.start();
    const holder = new PgStateStore(pool, 'A');
    const lease = a.acquire('t1', 'alerts')!;
    await holder.save('t1', 'alerts', { lastUpdateTime: '2025-06-10T00:00:00Z' });
    // another replica's `run --reset-cursor t1:alerts`, while A goes on
    const removed = await new PgStateStore(pool, 'B').reset('t1', 'alerts');
    assert.equal(removed.length, 1);
    assert.match(removed[0] as string, /^t1:alerts /);
    await assert.rejects(holder.save('t1', 'alerts', { lastUpdateTime: '2025-06-11T00:00:00Z' }), LeaseLostError);
    assert.equal(await holder.load('t1', 'alerts', (v): v is unknown => true), undefined, 'the cursor stays reset');
    await until('A notices at its next renewal and stops the poll', () => lease.signal.aborted);
    assert.ok(a.holds('t1', 'host'), 'the other leases are kept');
  });
});

describe('leases: the Collector polls a task only under its lease', () => {
  /** One task whose poll waits for `release`, checks its signal, then commits a cursor. */
  function gatedTask(content: ContentType, polls: string[], gate: Promise<void>): CollectorTask {
    return {
      content,
      async poll(ctx) {
        polls.push(`${ctx.connector.name}:${content}`);
        await gate;
        throwIfStopped(ctx.signal);
        await ctx.cursors.save(ctx.connector.name, content, { v: 1 });
        return { pages: 1, records: 0, cursor: 'x' };
      },
    };
  }

  it('skips the tasks held elsewhere; a lease lost mid-poll stops it before it commits, reported as lost (not failed), and the lease is handed back', async () => {
    const config = testConfig({ contentTypes: ['alerts', 'host'] });
    const controller = new AbortController();
    const done: string[] = [];
    const leases: TaskLeases = {
      retryMs: 1000,
      holds: (_connector, content) => content === 'alerts',
      acquire: (connector, content): TaskLease | undefined =>
        content === 'alerts' ? { signal: controller.signal, done: async () => void done.push(`${connector}:${content}`) } : undefined,
    };
    const polls: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const { logger, lines } = captureLogger();
    const collector = new Collector({ config, sink: new MemorySink(), mapper: () => new RawMapper(), logger, leases, taskFor: (content) => gatedTask(content, polls, gate) });
    const run = collector.runOnce();
    await until('the alerts poll started', () => polls.length === 1);
    controller.abort(); // the lease is lost while the poll is in flight
    open();
    assert.equal(await run, 0, 'a lost lease is not a failed poll');
    assert.deepEqual(polls, ['acme-mde:alerts'], 'the host task, held elsewhere, was not polled');
    assert.deepEqual(done, ['acme-mde:alerts']);
    assert.equal(await new CursorStore(config.stateDir).load('acme-mde', 'alerts', (v): v is unknown => true), undefined, 'nothing committed');
    assert.ok(lines.some((l) => l.includes('lease lost')));
    assert.ok(!lines.some((l) => l.includes('poll failed')));
  });
});
