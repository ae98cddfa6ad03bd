import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import nock from 'nock';
import { Collector, type TaskState } from '../plugin/collect/collector.js';
import { startStatusLoop } from '../plugin/collect/observe.js';
import { jitter, nextDue } from '../plugin/collect/scheduler.js';
import type { CollectorTask, TaskContext } from '../plugin/collect/task.js';
import type { Config, ContentType } from '../plugin/config/load.js';
import type { TokenProvider } from '../plugin/defender/auth.js';
import { systemClock } from '../plugin/defender/budget.js';
import { type ClientEvents, DefenderClient } from '../plugin/defender/client.js';
import { StatusStore } from '../plugin/status/store.js';
import { captureLogger } from './helpers/collect.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { MemorySink } from './helpers/memory-sink.js';
import { RawMapper } from './helpers/raw-mapper.js';
import { useNock } from './helpers/nock.js';

const minute = 60_000;
/** of two alerts-only connectors due together, the one started first */
const [first, second] = ['c1', 'c2'].sort((a, b) => jitter(a, 'alerts') - jitter(b, 'alerts'));

/** `n` connectors like the test connector, named c1…cn, every content type, polling every minute. */
function configWith(n: number, maxConcurrentPolls: number): Config {
  const base = testConfig({ intervalMinutes: 1 }, { maxConcurrentPolls });
  return { ...base, connectors: Array.from({ length: n }, (_, i) => ({ ...base.connectors[0]!, name: `c${i + 1}` })) };
}

/** A client that never asks Entra for a token (the API calls go to nock). */
const offlineClient = (c: Config['connectors'][number], events?: ClientEvents) =>
  new DefenderClient(c, { tokens: { getToken: async () => 'token', close: () => undefined, renewals: 0 } as unknown as TokenProvider, random: () => 0, events });

interface Poll {
  task: string;
  due: number;
  start: number;
  end?: number;
}

/** Polls that work (not an idle wait: they keep their slot) for `workMs` of timer time, logged in `polls`. */
function busyTask(content: ContentType, polls: Poll[], workMs: number | ((ctx: TaskContext) => number)): CollectorTask {
  return {
    content,
    async poll(ctx) {
      const p: Poll = { task: `${ctx.connector.name}:${content}`, due: NaN, start: Date.now() };
      polls.push(p);
      await new Promise((r) => setTimeout(r, typeof workMs === 'number' ? workMs : workMs(ctx)));
      p.end = Date.now();
      return { pages: 1, records: 0, cursor: '' };
    },
  };
}

/** The largest number of polls running at the same instant. */
function maxOverlap(polls: Poll[], at: number): number {
  const edges = polls.flatMap((p) => [
    [p.start, 1],
    [p.end ?? at, -1],
  ]);
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d!));
  return max;
}

describe('poll scheduler (maxConcurrentPolls)', () => {
  useNock();
  let clock: ReturnType<typeof FakeTimers.install>;
  let collector: Collector | undefined;

  beforeEach(() => {
    clock = FakeTimers.install({ now: Date.parse('2026-03-01T12:00:00Z'), toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(async () => {
    const stopping = collector?.stop();
    await clock.runAllAsync();
    await stopping;
    collector = undefined;
    clock.uninstall();
    nock.cleanAll();
  });

  /** Lets real I/O (nock's replies, zlib) and fake timers run until `done()` holds. */
  async function until(done: () => boolean) {
    for (let i = 0; i < 10_000 && !done(); i++) {
      await new Promise((r) => setImmediate(r));
      await clock.tickAsync(0);
    }
    assert.ok(done(), 'condition never met');
  }

  function makeCollector(config: Config, taskFor: (content: ContentType) => CollectorTask, hooks?: ConstructorParameters<typeof Collector>[0]['hooks'], events?: ClientEvents) {
    collector = new Collector({ config, sink: new MemorySink(), mapper: () => new RawMapper(), logger: captureLogger().logger, clock: systemClock, clientFor: (con) => offlineClient(con, events), taskFor, hooks });
    return collector;
  }

  it('runOnce polls every task once, never more than maxConcurrentPolls at a time', async () => {
    const polls: Poll[] = [];
    const c = makeCollector(configWith(5, 2), (content) => busyTask(content, polls, 10_000));
    const done = c.runOnce();
    await clock.tickAsync(10 * 10_000);
    assert.equal(await done, 0);
    assert.equal(polls.length, 15, 'every connector × content type polled');
    assert.deepEqual(new Set(polls.map((p) => p.task)).size, 15);
    assert.equal(maxOverlap(polls, Date.now()), 2);
  });

  it('starts waiting polls oldest due first, and spreads the next ones over the interval by a stable per-task jitter', async () => {
    const polls: Poll[] = [];
    const violations: string[] = [];
    const started = new Map<TaskState, number>();
    // a poll that starts while another one due earlier still waits breaks the order
    const hooks = {
      onPollStart(s: TaskState) {
        started.set(s, (started.get(s) ?? 0) + 1);
        for (const other of c.runners.map((r) => r.state)) {
          if (other.waiting && other.due! < s.due!) violations.push(`${s.connector}:${s.content} (due ${s.due}) before ${other.connector}:${other.content} (due ${other.due})`);
        }
      },
    };
    const c = makeCollector(configWith(4, 1), (content) => busyTask(content, polls, 2_000), hooks);
    c.start();
    await clock.tickAsync(10 * minute);
    assert.deepEqual(violations, []);
    // 12 tasks × 2 s of work fit in a minute: each polls once per interval (±1 for the first catch-up and phase)
    for (const r of c.runners) assert.ok(Math.abs(started.get(r.state)! - 10) <= 1, `${r.state.connector}:${r.state.content} polled ${started.get(r.state)} times in 10 intervals`);
    // after the catch-up, starts follow each task's phase: spread out, not all at the same instant
    const laterStarts = polls.filter((p) => p.start >= Date.parse('2026-03-01T12:01:00Z')).map((p) => p.start % minute);
    assert.ok(new Set(laterStarts).size >= 10, 'the tasks keep distinct phases within the interval');
    assert.equal(jitter('c1', 'alerts'), jitter('c1', 'alerts'), 'stable');
    assert.notEqual(jitter('c1', 'alerts'), jitter('c1', 'host'));
  });

  it("a connector's long vulnerabilities export does not hold up its alerts and host polls", async () => {
    const polls: Poll[] = [];
    // the export takes 5 minutes; alerts and host a second: with 2 slots they still poll every interval
    const c = makeCollector(configWith(1, 2), (content) => busyTask(content, polls, content === 'vulnerabilities' ? 5 * minute : 1_000));
    c.start();
    await clock.tickAsync(20 * minute);
    for (const content of ['alerts', 'host']) {
      const n = polls.filter((p) => p.task === `c1:${content}`).length;
      assert.ok(n >= 19, `c1:${content} polled ${n} times in 20 one-minute intervals`);
    }
    assert.ok(polls.filter((p) => p.task === 'c1:vulnerabilities').length >= 4);
  });

  it('an overloaded slot is shared: every content type of every connector gets its turns', async () => {
    const polls: Poll[] = [];
    // c1's polls take 5 minutes each, c2's a second, one slot: far more work than time, yet every task keeps polling
    const c = makeCollector(configWith(2, 1), (content) => busyTask(content, polls, (ctx) => (ctx.connector.name === 'c1' ? 5 * minute : 1_000)));
    c.start();
    await clock.tickAsync(60 * minute);
    for (const r of c.runners) {
      const n = polls.filter((p) => p.task === `${r.state.connector}:${r.state.content}`).length;
      assert.ok(n >= 3, `${r.state.connector}:${r.state.content} polled ${n} times in an hour`);
    }
  });

  it('a task that cannot start on time is late (lags, status), and still polls: never dropped', async () => {
    const polls: Poll[] = [];
    const config = configWith(2, 1);
    // 6 tasks × 20 s of work = 2 minutes of work per 1-minute interval: the slot cannot keep up
    const c = makeCollector(config, (content) => busyTask(content, polls, 20_000));
    const status = new StatusStore(config.stateDir);
    const stopStatus = startStatusLoop({ config, status, sink: new MemorySink(), runners: () => c.runners.map((r) => r.state), logger: captureLogger().logger });
    try {
      c.start();
      await clock.tickAsync(5 * minute + 1_000);
      const lags = c.lags();
      assert.ok(lags.some((l) => l.lagMs > minute), `some task is more than an interval late: ${JSON.stringify(lags)}`);
      const waiting = c.runners.filter((r) => r.state.waiting).map((r) => r.state);
      assert.ok(waiting.length >= 1);
      for (const s of waiting) {
        const late = status.read().connectors[s.connector]?.contentTypes[s.content]?.late;
        assert.ok(late, `${s.connector}:${s.content} waits for a slot and is marked late`);
        assert.equal(late.since, new Date(s.due!).toISOString());
        assert.match(late.reason, /maxConcurrentPolls: 1/);
      }
      await clock.tickAsync(10 * minute);
      for (const r of c.runners) {
        const n = polls.filter((p) => p.task === `${r.state.connector}:${r.state.content}`).length;
        assert.ok(n >= 5, `${r.state.connector}:${r.state.content} polled ${n} times in 15 min while overloaded`);
      }
    } finally {
      stopStatus();
    }
    assert.deepEqual(nextDue(0, 90_000, minute), 2 * minute, 'a start more than an interval late keeps the phase and polls once, not once per missed interval');
  });

  it('a poll waiting on a Retry-After gives its slot up to the next task and takes it back after', async () => {
    nock(apiOrigin).get('/api/alerts').reply(429, { error: { code: 'TooManyRequests', message: 'slow down' } }, { 'Retry-After': '3600' });
    nock(apiOrigin).get('/api/alerts').reply(200, { value: [] });
    const polls: Poll[] = [];
    const config = configWith(2, 1);
    config.connectors.forEach((con) => (con.contentTypes = ['alerts']));
    let sawThrottle = false;
    const c = makeCollector(config, (content) => ({
      content,
      async poll(ctx) {
        const p: Poll = { task: ctx.connector.name, due: NaN, start: Date.now() };
        polls.push(p);
        // the task started first (due together: the lower jitter) is throttled for an hour on its only call
        if (ctx.connector.name === first) await ctx.client.request({ path: '/api/alerts' });
        p.end = Date.now();
        return { pages: 1, records: 0, cursor: '' };
      },
    }), undefined, { onThrottled: () => (sawThrottle = true) });
    const done = c.runOnce();
    await until(() => sawThrottle);
    await clock.tickAsync(1_000);
    const throttled = polls.find((p) => p.task === first)!;
    assert.equal(polls[0], throttled, 'the throttled task started first');
    assert.ok(polls.find((p) => p.task === second)?.end !== undefined, 'the other task polled while the first waited out its Retry-After');
    assert.equal(throttled.end, undefined, 'still waiting');
    await clock.tickAsync(3600_000);
    await until(() => throttled.end !== undefined);
    assert.equal(await done, 0);
    assert.ok(throttled.end! >= throttled.start + 3600_000, 'finished after its Retry-After');
  });

  it('a poll waiting for its rate budget gives its slot up too', async () => {
    nock(apiOrigin).get('/api/alerts').reply(200, { value: [] });
    const polls: Poll[] = [];
    const config = configWith(2, 1);
    config.connectors.forEach((con) => (con.contentTypes = ['alerts']));
    const c = makeCollector(config, (content) => ({
      content,
      async poll(ctx) {
        const p: Poll = { task: ctx.connector.name, due: NaN, start: Date.now() };
        polls.push(p);
        if (ctx.connector.name === first) {
          const budget = ctx.client.budget('standard');
          for (let i = 0; i < budget.perMinute; i++) await budget.acquire();
          await ctx.client.request({ path: '/api/alerts' }); // the 99th call this minute waits for the window
        }
        p.end = Date.now();
        return { pages: 1, records: 0, cursor: '' };
      },
    }));
    const done = c.runOnce();
    await clock.tickAsync(1_000);
    assert.equal(polls[0]!.task, first);
    assert.ok(polls.find((p) => p.task === second)?.end !== undefined, 'the other task polled while the first waited for its budget');
    assert.equal(polls[0]!.end, undefined);
    await clock.tickAsync(minute);
    assert.equal(await done, 0);
  });
});
