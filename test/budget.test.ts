import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import { familyLimits, RateBudget, sleepUnless, systemClock, WaitInterruptedError } from '../plugin/defender/budget.js';

const minute = 60_000;
const hour = 3_600_000;

type InstalledClock = ReturnType<typeof FakeTimers.install>;

/** The largest number of grants inside any half-open window [t, t + span). */
function maxInWindow(grants: number[], span: number): number {
  const g = [...grants].sort((a, b) => a - b);
  let max = 0;
  let j = 0;
  for (let i = 0; i < g.length; i++) {
    if (j < i) j = i;
    while (j < g.length && g[j]! < g[i]! + span) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

describe('RateBudget (fake timers on the globals)', () => {
  let clock: InstalledClock;

  beforeEach(() => {
    clock = FakeTimers.install({ now: 1_700_000_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.uninstall());

  it('the window checker itself sees a breach (sanity check of the test)', () => {
    assert.equal(maxInWindow([0, 10, minute - 1], minute), 3);
    assert.equal(maxInWindow([0, 10, minute], minute), 2);
  });

  for (const family of ['standard', 'export'] as const) {
    it(`${family}: callers going as fast as they can for 2 simulated hours never exceed the per-minute or per-hour limit`, async () => {
      const { perMinute, perHour } = familyLimits[family];
      const budget = new RateBudget(perMinute, perHour, systemClock);
      const start = Date.now();
      const grants: number[] = [];
      let stop = false;
      // four concurrent callers, each calling again the moment it is let through
      const callers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          await budget.acquire();
          if (stop) return;
          grants.push(Date.now() - start);
        }
      });
      await clock.tickAsync(2 * hour);
      stop = true;
      assert.ok(maxInWindow(grants, minute) <= perMinute, `more than ${perMinute} grants in one minute`);
      assert.ok(maxInWindow(grants, hour) <= perHour, `more than ${perHour} grants in one hour`);
      // ...and the budget is not needlessly stingy: both windows are filled to the limit
      assert.equal(grants.filter((t) => t < minute).length, perMinute);
      assert.equal(grants.filter((t) => t < hour).length, perHour);
      assert.equal(grants.filter((t) => t < 2 * hour).length, 2 * perHour);
      // let the callers still waiting finish so nothing leaks into the next test
      await clock.runAllAsync();
      await Promise.all(callers);
    });
  }

  it('waitMs tells how long a caller arriving now would wait (minute and hour windows)', async () => {
    const budget = new RateBudget(3, 5, systemClock);
    assert.equal(budget.waitMs(), 0);
    for (let i = 0; i < 3; i++) await budget.acquire();
    assert.equal(budget.waitMs(), minute);
    await clock.tickAsync(20_000);
    assert.equal(budget.waitMs(), 40_000);
    await clock.tickAsync(40_000);
    assert.equal(budget.waitMs(), 0);
    await budget.acquire();
    await budget.acquire();
    // 5 calls in the hour: the next one waits for the first to leave the hour window
    assert.equal(budget.waitMs(), hour - minute);
  });

  it('a caller that has to wait is let through exactly when the window frees, not before', async () => {
    const budget = new RateBudget(2, 100, systemClock);
    await budget.acquire();
    await clock.tickAsync(10_000);
    await budget.acquire();
    let granted = -1;
    const start = Date.now() - 10_000;
    void budget.acquire().then(() => (granted = Date.now() - start));
    await clock.tickAsync(minute - 10_000 - 1);
    assert.equal(granted, -1, 'let through early');
    await clock.tickAsync(1);
    assert.equal(granted, minute);
  });

  it('a waiting caller whose signal aborts is let go at once with WaitInterruptedError; the callers behind it keep their turn', async () => {
    const budget = new RateBudget(1, 100, systemClock);
    await budget.acquire();
    const stop = new AbortController();
    const interrupted = budget.acquire(stop.signal).then(
      () => 'granted',
      (e: unknown) => (e instanceof WaitInterruptedError ? `interrupted after ${Date.now() - start} ms` : String(e)),
    );
    const start = Date.now();
    let next = -1;
    void budget.acquire().then(() => (next = Date.now() - start));
    await clock.tickAsync(1000);
    stop.abort();
    assert.equal(await interrupted, 'interrupted after 1000 ms');
    await clock.tickAsync(minute - 1000);
    assert.equal(next, minute, 'the next caller gets the slot the interrupted one would have had');
    await assert.rejects(budget.acquire(stop.signal), WaitInterruptedError, 'an aborted signal never waits');
  });

  it('an interrupted wait leaves no timer behind (an hour-long Retry-After must not hold the process)', async () => {
    const stop = new AbortController();
    const waiting = sleepUnless(systemClock, 3_600_000, stop.signal);
    assert.equal(clock.countTimers(), 1);
    stop.abort();
    await assert.rejects(waiting, WaitInterruptedError);
    assert.equal(clock.countTimers(), 0);
  });

  it('serves waiting callers in FIFO order', async () => {
    const budget = new RateBudget(2, 1000, systemClock);
    const order: number[] = [];
    const all = Array.from({ length: 9 }, (_, i) => budget.acquire().then(() => order.push(i)));
    await clock.tickAsync(5 * minute);
    await Promise.all(all);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('familyLimits', () => {
  it('are at or below the documented limits (100/min & 1500/h; exports 30/min & 1000/h)', () => {
    assert.ok(familyLimits.standard.perMinute <= 100 && familyLimits.standard.perMinute > 0);
    assert.ok(familyLimits.standard.perHour <= 1500 && familyLimits.standard.perHour > 0);
    assert.ok(familyLimits.export.perMinute <= 30 && familyLimits.export.perMinute > 0);
    assert.ok(familyLimits.export.perHour <= 1000 && familyLimits.export.perHour > 0);
  });
});
