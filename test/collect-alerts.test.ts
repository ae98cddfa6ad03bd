import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import nock from 'nock';
import { AlertsCollector, type AlertsCursor } from '../plugin/collect/alerts.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { fakeJwt, nockTokens, tokenReply, useNockedEntra } from './helpers/entra.js';
import { alert, nockAlertsApi } from './helpers/odata-api.js';
import { pollOnce } from './helpers/collect.js';
import { HeldAcksSink } from './helpers/held-acks-sink.js';

const now = Date.parse('2026-03-01T12:00:00Z');
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
const min = 60_000;
const hour = 60 * min;

function alertsConfig(extra: Record<string, unknown> = {}) {
  return testConfig({ contentTypes: ['alerts'], lookbackHours: 3, ...extra });
}

function cursorOf(config: ReturnType<typeof testConfig>): AlertsCursor {
  return JSON.parse(readFileSync(new CursorStore(config.stateDir).file('acme-mde', 'alerts'), 'utf8')) as AlertsCursor;
}

function journalOf(config: ReturnType<typeof testConfig>): string[] {
  return readFileSync(new CursorStore(config.stateDir).sideFile('acme-mde', 'alerts', 'window'), 'utf8').split('\n').filter(Boolean);
}

const ids = (records: Record<string, unknown>[]) => records.map((r) => `${String(r.id)}@${String(r.lastUpdateTime)}`).sort();
const key = (a: Record<string, unknown>) => `${String(a.id)}|${String(a.lastUpdateTime)}`;

function resetNock() {
  nock.cleanAll();
  nockTokens([tokenReply(fakeJwt({ roles: ['Alert.Read.All'] }))]);
}

describe('alerts collection', () => {
  useNockedEntra({ roles: ['Alert.Read.All'] });

  it('first start reads the lookback, with evidence, in one pinned window', async () => {
    const config = alertsConfig();
    const inside = [alert(iso(2 * hour)), alert(iso(1 * min)), alert(iso(3 * hour - 1000), { evidence: [] })];
    const outside = [alert(iso(3 * hour + 1000))];
    const served = nockAlertsApi([...inside, ...outside]);
    const { sink, failed } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.equal(failed, 0);
    assert.deepEqual(ids(sink.records()), ids(inside));
    // a short page is no proof of the end (a server may cap pages below $top): one more, empty, page ends the window
    assert.deepEqual(
      served.map((p) => [p.skip, p.count]),
      [
        [0, 3],
        [3, 0],
      ],
    );
    assert.equal(served[0]!.filter, `lastUpdateTime ge ${iso(3 * hour)} and lastUpdateTime lt ${iso(0)}`);
    assert.equal(cursorOf(config).watermark, iso(0));
    assert.ok(sink.received.every((r) => r.tag === 'microsoft_defender.syslog.alerts'));
  });

  it('pages with $top/$skip until a page with nothing new, all pages of a window share its end, ties on lastUpdateTime lose nothing', async () => {
    const config = alertsConfig();
    const tie = iso(30 * min);
    const alerts = Array.from({ length: 11 }, (_, i) => alert(i % 2 ? tie : iso((i + 1) * min)));
    const served = nockAlertsApi(alerts);
    const { sink } = await pollOnce(config, new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.deepEqual(ids(sink.records()), ids(alerts));
    assert.deepEqual(
      served.map((p) => [p.skip, p.count]),
      [
        [0, 4],
        [4, 4],
        [8, 3],
        [11, 0],
      ],
    );
    assert.equal(new Set(served.map((p) => p.filter)).size, 1, 'window end pinned across pages');
  });

  it('re-reads a margin of each page so an alert leaving the window mid-paging cannot shift another out of sight', async () => {
    const config = alertsConfig();
    const alerts = Array.from({ length: 9 }, (_, i) => alert(iso((i + 1) * min)));
    const original = [...alerts];
    // After the first page, alert 0 is updated (its lastUpdateTime moves past the window end):
    // every later alert shifts one place up in the result set.
    const served = nockAlertsApi(alerts, {
      mutate: (page) => {
        if (page === 1) alerts[0] = { ...alerts[0]!, lastUpdateTime: new Date(now + min).toISOString(), status: 'Resolved' };
      },
    });
    const { sink } = await pollOnce(config, new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 1 }), { now });
    assert.deepEqual(ids(sink.records()), ids(original), 'every alert of the window arrives exactly once');
    assert.deepEqual(
      served.map((p) => p.skip),
      // the last page holds only the previous page's margin: nothing new, the end
      [0, 3, 6, 7],
    );
  });

  it('a restart resumes from the cursor: overlap re-read, delivered versions skipped, updated versions delivered', async () => {
    const config = alertsConfig({ alertOverlapMinutes: 5 });
    const a = alert(iso(2 * min));
    const b = alert(iso(10 * min));
    nockAlertsApi([a, b]);
    await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    const first = cursorOf(config);
    assert.deepEqual(first.seen, [`${String(a.id)}|${String(a.lastUpdateTime)}`], 'only alerts inside the overlap are carried');

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    const later = now + 10 * min;
    const late = alert(new Date(now - 1 * min).toISOString()); // indexed late: older than the watermark, inside the overlap
    const updatedA = { ...a, status: 'Resolved', lastUpdateTime: new Date(now + 3 * min).toISOString() };
    const served = nockAlertsApi([a, b, late, updatedA]);
    const { sink } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now: later });
    assert.deepEqual(ids(sink.records()), ids([late, updatedA]));
    assert.equal(served[0]!.filter, `lastUpdateTime ge ${new Date(now - 5 * min).toISOString()} and lastUpdateTime lt ${new Date(later).toISOString()}`);
  });

  it('an alert from the second-to-last window of a catch-up is not re-delivered by the next overlap', async () => {
    const config = alertsConfig({ lookbackHours: 24 + 2 / 60, alertOverlapMinutes: 5 });
    const a = alert(iso(3 * min)); // in the first window, inside the overlap of the final watermark
    nockAlertsApi([a]);
    const first = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.equal(first.sink.received.length, 1);
    assert.deepEqual(cursorOf(config).seen, [`${String(a.id)}|${String(a.lastUpdateTime)}`]);

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    nockAlertsApi([a]);
    const second = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now: now + min });
    assert.equal(second.sink.received.length, 0);
  });

  it('a long catch-up is split into windows, each committed after delivery', async () => {
    const config = alertsConfig({ lookbackHours: 50 });
    const alerts = [alert(iso(49 * hour)), alert(iso(30 * hour)), alert(iso(1 * hour))];
    const served = nockAlertsApi(alerts);
    const { sink } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.deepEqual(ids(sink.records()), ids(alerts));
    // windows of 2, 0 and 1 alerts: each non-empty one ends on an empty page
    assert.equal(served.length, 5);
    assert.equal(cursorOf(config).watermark, iso(0));
  });

  it('the cursor does not move when the pipeline does not acknowledge', async () => {
    const config = alertsConfig();
    nockAlertsApi([alert(iso(5 * min))]);
    const { MemorySink } = await import('./helpers/memory-sink.js');
    const sink = new MemorySink();
    sink.failWith = new Error('pipeline down');
    const { failed, states } = await pollOnce(config, new AlertsCollector(), { now, sink });
    assert.equal(failed, 1);
    assert.match(states[0]!.lastError!.message, /pipeline down/);
    assert.throws(() => cursorOf(config), /ENOENT/);
  });

  it('reads on while slices await their acknowledgement, at most slicesInFlight of them, and moves the cursor only after the last ack', async () => {
    const config = alertsConfig();
    nockAlertsApi(Array.from({ length: 8 }, (_, i) => alert(iso((i + 1) * min))));
    const sink = new HeldAcksSink();
    const poll = pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 2, slicesInFlight: 2 }), { now, sink });
    await sink.waitForPending(2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sink.pending.length, 2, 'a second slice was handed over before the first was acknowledged, and no third');
    assert.throws(() => cursorOf(config), /ENOENT/);
    for (let acked = 0; acked < 4; acked++) {
      await sink.waitForPending(1);
      await new Promise((r) => setTimeout(r, 30)); // room for a premature cursor save to land
      assert.throws(() => cursorOf(config), /ENOENT/, `no cursor before every slice is acknowledged (${acked} of 4)`);
      sink.ackOldest();
    }
    const { failed } = await poll;
    assert.equal(failed, 0);
    assert.equal(sink.received.length, 8);
    assert.equal(cursorOf(config).watermark, iso(0));
  });

  it('a slice that fails while later ones are in flight fails the window: the cursor stays', async () => {
    const config = alertsConfig();
    nockAlertsApi(Array.from({ length: 4 }, (_, i) => alert(iso((i + 1) * min))));
    const sink = new HeldAcksSink();
    const poll = pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 2, slicesInFlight: 3 }), { now, sink });
    await sink.waitForPending(2);
    sink.failOldest(new Error('chunk refused'));
    sink.ackOldest();
    const { failed, states } = await poll;
    assert.equal(failed, 1);
    assert.match(states[0]!.lastError!.message, /chunk refused/);
    assert.throws(() => cursorOf(config), /ENOENT/);
  });

  describe('read-ahead: the next $skip page is asked for while the end of this one is processed', () => {
    /** Polls `cond` every 10 ms for up to 2 s; false if it never held. */
    async function eventually(cond: () => boolean): Promise<boolean> {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      return cond();
    }

    it('page 2 is asked for while the last slice of page 1 still waits for its acknowledgement', async () => {
      const config = alertsConfig();
      const served = nockAlertsApi(Array.from({ length: 15 }, (_, i) => alert(iso((i + 1) * min))));
      const sink = new HeldAcksSink();
      // one slice at a time: without read-ahead page 2 could only be asked for after this ack
      const poll = pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 2, slicesInFlight: 1 }), { now, sink });
      for (let i = 0; i < 4; i++) {
        await sink.waitForPending(1);
        sink.ackOldest();
      }
      await sink.waitForPending(1); // page 1's last slice, held
      assert.ok(await eventually(() => served.length === 2), `page 2 asked for ahead: ${JSON.stringify(served)}`);
      assert.equal(sink.pending.length, 1);
      while ((await Promise.race([poll.then(() => 'done'), sink.waitForPending(1).then(() => 'more')])) === 'more') sink.ackOldest();
      const { failed } = await poll;
      assert.equal(failed, 0);
      assert.equal(sink.received.length, 15);
      assert.deepEqual(
        served.map((p) => [p.skip, p.count]),
        [
          [0, 10],
          [10, 5],
          [15, 0],
        ],
      );
      assert.equal(cursorOf(config).watermark, iso(0));
    });

    it('a page asked for ahead that is not needed (this one links on) is dropped unread: nothing from it is delivered', async () => {
      const config = alertsConfig();
      const p1 = Array.from({ length: 10 }, (_, i) => alert(iso((i + 1) * min)));
      const wrong = Array.from({ length: 5 }, (_, i) => alert(iso((i + 20) * min)));
      const p2 = Array.from({ length: 3 }, (_, i) => alert(iso((i + 40) * min)));
      const asked: string[] = [];
      nock(apiOrigin)
        .get('/api/alerts')
        .query(true)
        .times(3)
        .reply((uri) => {
          const q = new URL(uri, apiOrigin).searchParams;
          asked.push(q.get('$skiptoken') ? 'link' : `skip=${q.get('$skip')}`);
          if (q.get('$skiptoken')) return [200, { value: p2 }];
          if (q.get('$skip') === '0') return [200, { value: p1, '@odata.nextLink': `${apiOrigin}/api/alerts?$skiptoken=2` }];
          return [200, { value: wrong }];
        });
      const { failed, sink } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 5 }), { now });
      assert.equal(failed, 0);
      assert.deepEqual(ids(sink.records()), ids([...p1, ...p2]));
      assert.ok(await eventually(() => asked.includes('skip=10')), `the read-ahead went out: ${asked.join(', ')}`);
      assert.deepEqual(asked.slice().sort(), ['link', 'skip=0', 'skip=10']);
    });

    it('a read-ahead page that failed fails the window when it is taken: the cursor stays', async () => {
      const config = alertsConfig();
      const firstPage = Array.from({ length: 4 }, (_, i) => alert(iso((i + 1) * min)));
      nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '0').reply(200, { value: firstPage });
      nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '4').reply(403, { error: { code: 'Forbidden', message: 'role removed', target: 'x' } });
      const { failed, states, sink } = await pollOnce(config, new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 1 }), { now });
      assert.equal(failed, 1);
      assert.match(states[0]!.lastError!.message, /role removed|403/);
      assert.equal(sink.received.length, 4, 'page 1 was delivered');
      assert.equal(cursorOf(config).watermark, iso(3 * hour), 'the watermark did not move (the window is recorded as unfinished)');
      assert.equal(journalOf(config).length, 4);
    });
  });

  it('an API failure mid-window keeps the previous cursor', async () => {
    const config = alertsConfig();
    const store = new CursorStore(config.stateDir);
    const before: AlertsCursor = { v: 1, watermark: iso(1 * hour), seen: [] };
    await store.save('acme-mde', 'alerts', before);
    nock('https://api-us.securitycenter.microsoft.com').get('/api/alerts').query(true).reply(200, { value: Array.from({ length: 2 }, () => alert(iso(30 * min))) });
    nock('https://api-us.securitycenter.microsoft.com').get('/api/alerts').query(true).reply(403, { error: { code: 'Forbidden', message: 'no', target: 'x' } });
    const { failed, sink } = await pollOnce(config, new AlertsCollector({ pageSize: 2, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.equal(failed, 1);
    assert.equal(sink.received.length, 2, 'the first page was delivered');
    const { partial, ...committed } = cursorOf(config);
    assert.deepEqual(committed, before, 'watermark and overlap keys unchanged');
    assert.deepEqual(partial, { start: iso(1 * hour + 5 * min), end: iso(0) }, 'the unfinished window, to resume');
    assert.deepEqual(journalOf(config).sort(), ids(sink.records()).map((k) => k.replace('@', '|')), 'its delivered page in the journal');
  });

  describe('a window of several pages that fails (or is killed) part-way is resumed, not delivered again', () => {
    it('the next poll resumes the same window, skips what the acknowledged pages delivered, then commits it', async () => {
      const config = alertsConfig();
      const alerts = Array.from({ length: 10 }, (_, i) => alert(iso((i + 1) * min)));
      const collector = () => new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 2, readAhead: false });
      // first poll: pages at $skip 0 and 4 answer, the third fails
      const firstFilter: string[] = [];
      nock(apiOrigin)
        .get('/api/alerts')
        .query(true)
        .times(2)
        .reply((uri) => {
          const q = new URL(uri, apiOrigin).searchParams;
          firstFilter.push(q.get('$filter')!);
          const skip = Number(q.get('$skip'));
          return [200, { value: alerts.slice(skip, skip + 4) }];
        });
      nock(apiOrigin).get('/api/alerts').query(true).reply(503, { error: { code: 'ServiceUnavailable', message: 'down', target: 'x' } }, { 'Retry-After': '0' }).persist();
      const first = await pollOnce(config, collector(), { now });
      assert.equal(first.failed, 1);
      assert.equal(first.sink.received.length, 8);
      nock.cleanAll();
      nockTokens([tokenReply(fakeJwt({ roles: ['Alert.Read.All'] }))]);

      // next poll, 10 minutes later: the same window (pinned end), every alert once in all
      const served = nockAlertsApi(alerts);
      const second = await pollOnce(config, collector(), { now: now + 10 * min });
      assert.equal(second.failed, 0);
      assert.deepEqual(ids(second.sink.records()), ids(alerts.slice(8)), 'only what the first poll did not deliver');
      assert.equal(served[0]!.filter, firstFilter[0], 'the resumed window keeps its bounds');
      const cursor = cursorOf(config);
      assert.equal(cursor.partial, undefined);
      assert.equal(cursor.watermark, iso(-10 * min), 'then the polls go on to now');
    });

    it('a page goes into the journal only once all its slices are acknowledged', async () => {
      const config = alertsConfig();
      nockAlertsApi(Array.from({ length: 6 }, (_, i) => alert(iso((i + 1) * min))));
      const sink = new HeldAcksSink();
      const journal = new CursorStore(config.stateDir).sideFile('acme-mde', 'alerts', 'window');
      const poll = pollOnce(config, new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 2, slicesInFlight: 4 }), { now, sink });
      await sink.waitForPending(2); // page 1, both slices held
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(existsSync(journal), false, 'nothing recorded while page 1 awaits its acks');
      sink.ackOldest();
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(existsSync(journal), false, 'nor with one of its two slices acknowledged');
      sink.ackOldest();
      await sink.waitForPending(1); // page 2 read
      assert.equal(journalOf(config).length, 4);
      while ((await Promise.race([poll.then(() => 'done'), sink.waitForPending(1).then(() => 'more')])) === 'more') sink.ackOldest();
      assert.equal((await poll).failed, 0);
      assert.equal(cursorOf(config).partial, undefined);
    });

    it('a journal line torn by a crash is dropped: that alert is delivered again, none is skipped', async () => {
      const config = alertsConfig();
      const alerts = Array.from({ length: 3 }, (_, i) => alert(iso((i + 1) * min)));
      await new CursorStore(config.stateDir).save('acme-mde', 'alerts', { v: 1, watermark: iso(3 * hour), seen: [], partial: { start: iso(3 * hour), end: iso(0) } });
      writeFileSync(new CursorStore(config.stateDir).sideFile('acme-mde', 'alerts', 'window'), `${key(alerts[0]!)}\n${key(alerts[1]!).slice(0, 10)}`);
      nockAlertsApi(alerts);
      const { failed, sink } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
      assert.equal(failed, 0);
      assert.deepEqual(ids(sink.records()), ids(alerts.slice(1)));
      assert.equal(cursorOf(config).partial, undefined);
    });

    describe('resume edge cases (from the review)', () => {
      const collector = () => new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 1, readAhead: false });
      const config = () => testConfig({ contentTypes: ['alerts'], lookbackHours: 3 });

      it('journaled alerts inside the overlap are carried after the resumed window commits (no duplicate two polls later)', async () => {
        const c = config();
        const alerts = Array.from({ length: 6 }, (_, i) => alert(iso((i + 1) * min)));
        nockAlertsApi(alerts, { failFromSkip: 4 });
        assert.equal((await pollOnce(c, collector(), { now })).failed, 1);
        resetNock();
        nockAlertsApi(alerts);
        const second = await pollOnce(c, collector(), { now: now + 2 * min });
        assert.equal(second.failed, 0);
        assert.deepEqual(ids(second.sink.records()), ids(alerts.slice(4)));
        resetNock();
        nockAlertsApi(alerts);
        const third = await pollOnce(c, collector(), { now: now + 4 * min });
        assert.equal(third.failed, 0);
        assert.deepEqual(ids(third.sink.records()), [], 'nothing delivered again from the overlap');
      });

      it('a resumed window that fails again keeps the first poll\'s journal', async () => {
        const c = config();
        const alerts = Array.from({ length: 13 }, (_, i) => alert(iso((i + 1) * min)));
        nockAlertsApi(alerts, { failFromSkip: 8 });
        assert.equal((await pollOnce(c, collector(), { now })).failed, 1);
        resetNock();
        nockAlertsApi(alerts, { failFromSkip: 12 });
        const second = await pollOnce(c, collector(), { now: now + 1 * min });
        assert.equal(second.failed, 1);
        assert.deepEqual(ids(second.sink.records()), ids(alerts.slice(8, 12)));
        resetNock();
        nockAlertsApi(alerts);
        const third = await pollOnce(c, collector(), { now: now + 2 * min });
        assert.equal(third.failed, 0);
        assert.deepEqual(ids(third.sink.records()), ids(alerts.slice(12)));
      });

      it('the partial cursor keeps the overlap keys of the last commit', async () => {
        const c = config();
        const old = [alert(iso(62 * min)), alert(iso(61 * min))];
        const fresh = Array.from({ length: 6 }, (_, i) => alert(iso(30 * min - i * 1000)));
        await new CursorStore(c.stateDir).save('acme-mde', 'alerts', { v: 1, watermark: iso(1 * hour), seen: old.map(key) } satisfies AlertsCursor);
        nockAlertsApi([...old, ...fresh], { failFromSkip: 4 });
        const first = await pollOnce(c, collector(), { now });
        assert.equal(first.failed, 1);
        assert.deepEqual(ids(first.sink.records()), ids(fresh.slice(0, 2)));
        resetNock();
        nockAlertsApi([...old, ...fresh]);
        const second = await pollOnce(c, collector(), { now: now + 1 * min });
        assert.equal(second.failed, 0);
        assert.deepEqual(ids(second.sink.records()), ids(fresh.slice(2)), 'the alerts the cursor\'s seen lists are not delivered again');
      });

      it('alerts delivered by a cut attempt of a page are journaled with it', async () => {
        const c = config();
        const alerts = Array.from({ length: 6 }, (_, i) => alert(iso((i + 1) * min)));
        const body = JSON.stringify({ value: alerts.slice(0, 4) });
        // page 1: cut after ~3 alerts, then whole; page 2 fails
        nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '0').reply(200, body.slice(0, Math.floor(body.length * 0.8)));
        nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '0').reply(200, body);
        nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '4').reply(403, { error: { code: 'Forbidden', message: 'no', target: 'x' } });
        const first = await pollOnce(c, collector(), { now });
        assert.equal(first.failed, 1);
        assert.deepEqual(ids(first.sink.records()), ids(alerts.slice(0, 4)));
        resetNock();
        nockAlertsApi(alerts);
        const second = await pollOnce(c, collector(), { now: now + 1 * min });
        assert.deepEqual(ids(second.sink.records()), ids(alerts.slice(4)));
      });

      it('after a torn journal line, the next append starts on a line of its own (no key lost to the fragment)', async () => {
        const c = testConfig({ contentTypes: ['alerts'], lookbackHours: 3 });
        const alerts = Array.from({ length: 9 }, (_, i) => alert(iso((i + 1) * min)));
        const store = new CursorStore(c.stateDir);
        await store.save('acme-mde', 'alerts', { v: 1, watermark: iso(3 * hour), seen: [], partial: { start: iso(3 * hour), end: iso(0) } });
        // pages 1 and 2 acknowledged; the crash tore page 2's append after a few bytes
        writeFileSync(store.sideFile('acme-mde', 'alerts', 'window'), `${alerts.slice(0, 4).map(key).join('\n')}\n${key(alerts[4]!).slice(0, 10)}`);
        const coll = () => new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0, sliceSize: 1, readAhead: false });
        nockAlertsApi(alerts, { failFromSkip: 8 });
        const second = await pollOnce(c, coll(), { now: now + min });
        assert.deepEqual(ids(second.sink.records()), ids(alerts.slice(4, 8)), 'page 2 again (the torn append)');
        resetNock();
        nockAlertsApi(alerts);
        const third = await pollOnce(c, coll(), { now: now + 2 * min });
        assert.deepEqual(ids(third.sink.records()), ids(alerts.slice(8)), 'page 2 was journaled by the second poll');
      });
    });

    it('a cursor with a malformed partial window is an error naming the file, not a silent restart', async () => {
      const config = alertsConfig();
      await new CursorStore(config.stateDir).save('acme-mde', 'alerts', { v: 1, watermark: iso(3 * hour), seen: [], partial: { start: 'yesterday', end: iso(0) } });
      const { failed, states } = await pollOnce(config, new AlertsCollector(), { now });
      assert.equal(failed, 1);
      assert.match(states[0]!.lastError!.message, /acme-mde\.alerts\.json.*--reset-cursor acme-mde:alerts/);
    });
  });

  it('a cursor ahead of the clock (clock set back) stops the task with the reason, asks nothing and keeps the cursor; minutes of skew pass', async () => {
    const config = alertsConfig();
    const store = new CursorStore(config.stateDir);
    const ahead = { v: 1, watermark: new Date(now + 3 * 24 * hour).toISOString(), seen: [] };
    await store.save('acme-mde', 'alerts', ahead);
    const served = nockAlertsApi([alert(iso(5 * min))]);
    const { failed, states, sink } = await pollOnce(config, new AlertsCollector(), { now });
    assert.equal(failed, 1);
    assert.match(states[0]!.lastError!.message, /ahead of this machine's clock .*watermark .* 4320 min ahead.*fix the clock.*--reset-cursor acme-mde:alerts/);
    assert.equal(served.length, 0, 'no window that has not happened yet was asked for');
    assert.equal(sink.received.length, 0);
    assert.deepEqual(cursorOf(config), ahead);
    await store.save('acme-mde', 'alerts', { v: 1, watermark: new Date(now + 2 * min).toISOString(), seen: [] });
    assert.equal((await pollOnce(config, new AlertsCollector(), { now })).failed, 0);
  });

  it('follows @odata.nextLink when present and stops on a repeated link', async () => {
    const config = alertsConfig();
    const origin = 'https://api-us.securitycenter.microsoft.com';
    const p1 = [alert(iso(5 * min))];
    const p2 = [alert(iso(6 * min))];
    nock(origin).get('/api/alerts').query(true).reply(200, { value: p1, '@odata.nextLink': `${origin}/api/alerts?$skiptoken=2` });
    nock(origin).get('/api/alerts').query({ $skiptoken: '2' }).reply(200, { value: p2 });
    const { sink } = await pollOnce(config, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.deepEqual(ids(sink.records()), ids([...p1, ...p2]));

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    const config2 = alertsConfig();
    nock(origin).get('/api/alerts').query(true).times(3).reply(200, { value: [alert(iso(5 * min))], '@odata.nextLink': `${origin}/api/alerts?$skiptoken=same` });
    const run = await pollOnce(config2, new AlertsCollector({ pageSize: 10, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.equal(run.failed, 1);
    assert.match(run.states[0]!.lastError!.message, /paging loop/);
  });

  it('refuses a nextLink to another host', async () => {
    const config = alertsConfig();
    nock('https://api-us.securitycenter.microsoft.com').get('/api/alerts').query(true).reply(200, { value: [], '@odata.nextLink': 'https://attacker.example/api/alerts' });
    const run = await pollOnce(config, new AlertsCollector(), { now });
    assert.equal(run.failed, 1);
    assert.equal(run.states[0]!.lastError!.class, 'paging');
  });

  it('stops when the server ignores $skip instead of looping', async () => {
    const config = alertsConfig();
    const page = Array.from({ length: 4 }, (_, i) => alert(iso((i + 1) * min)));
    nock('https://api-us.securitycenter.microsoft.com').get('/api/alerts').query(true).times(3).reply(200, { value: page });
    const run = await pollOnce(config, new AlertsCollector({ pageSize: 4, maxWindowMs: 24 * hour, pageMargin: 0 }), { now });
    assert.equal(run.failed, 1);
    assert.match(run.states[0]!.lastError!.message, /repeats the previous page/);
    assert.equal(run.sink.received.length, 4);
  });

  it('a corrupt cursor is an error naming the file and the reset command, not a silent lookback', async () => {
    const config = alertsConfig();
    const file = new CursorStore(config.stateDir).file('acme-mde', 'alerts');
    await new CursorStore(config.stateDir).save('acme-mde', 'alerts', { v: 1, watermark: iso(0), seen: [] });
    writeFileSync(file, '{"v":1,"waterm');
    const run = await pollOnce(config, new AlertsCollector(), { now });
    assert.equal(run.failed, 1);
    assert.ok(run.states[0]!.lastError!.message.includes(file));
    assert.match(run.states[0]!.lastError!.message, /--reset-cursor acme-mde:alerts/);
    assert.equal(run.sink.received.length, 0);
  });

  it('an alert without id or lastUpdateTime is delivered, not a reason to fail the window', async () => {
    const config = alertsConfig();
    const broken = { title: 'no id', severity: 'High', evidence: [] };
    nock('https://api-us.securitycenter.microsoft.com').get('/api/alerts').query(true).reply(200, { value: [alert(iso(1 * min)), broken] }).get('/api/alerts').query(true).reply(200, { value: [] });
    const run = await pollOnce(config, new AlertsCollector(), { now });
    assert.equal(run.failed, 0);
    assert.equal(run.sink.received.length, 2);
    assert.equal(cursorOf(config).watermark, iso(0));
  });

  it('an empty page and an alert with empty evidence pass through', async () => {
    const config = alertsConfig();
    nockAlertsApi([alert(iso(1 * min), { evidence: [] })]);
    const { sink, failed } = await pollOnce(config, new AlertsCollector(), { now });
    assert.equal(failed, 0);
    assert.equal(sink.received.length, 1);
  });
});
