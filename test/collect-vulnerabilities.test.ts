import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import nock from 'nock';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { type VulnerabilitiesCursor, VulnerabilitiesCollector } from '../plugin/collect/vulnerabilities.js';
import { epochMs } from '../plugin/transform/convert.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { fakeJwt, nockTokens, tokenReply, useNockedEntra } from './helpers/entra.js';
import { pollOnce } from './helpers/collect.js';
import { HeldAcksSink } from './helpers/held-acks-sink.js';
import { MemorySink } from './helpers/memory-sink.js';

const full = '/api/machines/SoftwareVulnerabilitiesByMachine';
const delta = '/api/machines/SoftwareVulnerabilityChangesByMachine';
const vuln = (i: number, extra: Record<string, unknown> = {}) => ({
  id: `m${i}_chrome_131_CVE-2025-${1000 + i}_`,
  deviceId: `${i}`.padStart(40, 'a'),
  cveId: `CVE-2025-${1000 + i}`,
  lastSeenTimestamp: '2026-02-28 03:02:19',
  ...extra,
});

/** Serves `pages` in order, each linking to the next with a $skiptoken. */
function nockPages(path: string, pages: Array<Array<Record<string, unknown>>>, seenQueries: URLSearchParams[] = []) {
  pages.forEach((items, i) => {
    nock(apiOrigin)
      .get(path)
      .query((q) => (i === 0 ? !('$skiptoken' in q) : q.$skiptoken === String(i)))
      .reply((uri) => {
        seenQueries.push(new URL(uri, apiOrigin).searchParams);
        const next = i + 1 < pages.length ? { '@odata.nextLink': `${apiOrigin}${path}?$skiptoken=${i + 1}` } : {};
        return [200, JSON.stringify({ '@odata.context': 'x', value: items, ...next })];
      });
  });
  return seenQueries;
}

describe('vulnerability collection', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  useNockedEntra();

  const cursor = (config: ReturnType<typeof testConfig>) =>
    JSON.parse(readFileSync(new CursorStore(config.stateDir).file('acme-mde', 'vulnerabilities'), 'utf8')) as VulnerabilitiesCursor;

  it('reads on while slices await their acknowledgement; a page\'s progress is saved only once all its slices are acknowledged', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'], vulnerabilityPageSize: 4 });
    nockPages(full, [[vuln(1), vuln(2), vuln(3), vuln(4)], [vuln(5)]]);
    const sink = new HeldAcksSink();
    const cursorFile = new CursorStore(config.stateDir).file('acme-mde', 'vulnerabilities');
    const poll = pollOnce(config, new VulnerabilitiesCollector(2, 2), { now, sink });
    await sink.waitForPending(2);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(sink.pending.length, 2, 'the second slice was handed over before the first was acknowledged');
    sink.ackOldest();
    await new Promise((r) => setTimeout(r, 30)); // room for a premature progress save to land
    assert.equal(existsSync(cursorFile), false, 'no progress saved while a slice of the page awaits its ack');
    sink.ackOldest();
    await sink.waitForPending(1);
    const progress = cursor(config).progress;
    assert.ok(progress?.nextLink?.endsWith('$skiptoken=1'), `first page committed once acknowledged: ${JSON.stringify(progress)}`);
    sink.ackOldest();
    assert.equal((await poll).failed, 0);
    assert.equal(sink.received.length, 5);
  });

  it('a delta position ahead of the clock stops the task with the reason and asks nothing', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'] });
    const ahead = { v: 1, baselineAt: new Date(now - 86_400_000).toISOString(), since: new Date(now + 86_400_000).toISOString() };
    await new CursorStore(config.stateDir).save('acme-mde', 'vulnerabilities', ahead);
    const { failed, states, sink } = await pollOnce(config, new VulnerabilitiesCollector(), { now });
    assert.equal(failed, 1);
    assert.match(states[0]!.lastError!.message, /ahead of this machine's clock \(since .* 1440 min ahead/);
    assert.equal(sink.received.length, 0);
  });

  it('starts with a full export over nextLink pages, then polls deltas since the latest event delivered', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'], vulnerabilityPageSize: 3 });
    const q = nockPages(full, [[vuln(1), vuln(2), vuln(3)], [vuln(4)]]);
    const first = await pollOnce(config, new VulnerabilitiesCollector(2), { now });
    assert.equal(first.failed, 0);
    assert.equal(first.sink.received.length, 4);
    assert.equal(q[0]!.get('pageSize'), '3');
    const sixHoursBefore = new Date(now - 6 * 3600_000).toISOString(); // the snapshot can be that old
    assert.deepEqual(cursor(config), { v: 1, baselineAt: new Date(now).toISOString(), since: sixHoursBefore, boundary: [] });

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    const changes = [vuln(2, { status: 'Fixed', eventTimestamp: '2026-03-01 13:00:00' }), vuln(5, { status: 'New', eventTimestamp: '2026-03-01 14:30:00' })];
    const dq = nockPages(delta, [changes]);
    const second = await pollOnce(config, new VulnerabilitiesCollector(2), { now: now + 3 * 3600_000 });
    assert.equal(second.sink.received.length, 2);
    assert.equal(dq[0]!.get('sinceTime'), sixHoursBefore);
    const c = cursor(config);
    assert.equal(c.since, '2026-03-01T14:30:00.000Z');
    assert.deepEqual(c.boundary, [`${vuln(5).id}|2026-03-01 14:30:00|New`]);

    // the next delta re-reads the boundary second: what was delivered there is skipped
    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    const more = [vuln(5, { status: 'New', eventTimestamp: '2026-03-01 14:30:00' }), vuln(6, { status: 'Updated', eventTimestamp: '2026-03-01 15:00:00' })];
    nockPages(delta, [more]);
    const third = await pollOnce(config, new VulnerabilitiesCollector(2), { now: now + 6 * 3600_000 });
    assert.deepEqual(third.sink.records().map((r) => r.id), [vuln(6).id]);
  });

  it('resumes a full export at the saved page after a failure, without re-reading acknowledged pages', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'] });
    // page 2 fails (after the client's retries)
    nock(apiOrigin).get(full).query({ $skiptoken: '1' }).reply(500).persist();
    nock(apiOrigin).get(full).query((q) => !('$skiptoken' in q)).reply(200, JSON.stringify({ value: [vuln(1)], '@odata.nextLink': `${apiOrigin}${full}?$skiptoken=1` }));
    const sink = new MemorySink();
    const first = await pollOnce(config, new VulnerabilitiesCollector(), { now, sink });
    assert.equal(first.failed, 1);
    assert.equal(cursor(config).progress?.nextLink, `${apiOrigin}${full}?$skiptoken=1`);

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    nock(apiOrigin).get(full).query({ $skiptoken: '1' }).reply(200, JSON.stringify({ value: [vuln(2)] }));
    const second = await pollOnce(config, new VulnerabilitiesCollector(), { now: now + 60_000, sink });
    assert.equal(second.failed, 0);
    assert.deepEqual(sink.records().map((r) => r.id), [vuln(1).id, vuln(2).id]);
    assert.equal(cursor(config).baselineAt, new Date(now).toISOString(), 'the baseline is when the export started');
  });

  it('an expired saved delta page link asks for the delta again from the saved position', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'] });
    const since = new Date(now - 86_400_000).toISOString();
    await new CursorStore(config.stateDir).save('acme-mde', 'vulnerabilities', {
      v: 1,
      baselineAt: new Date(now - 2 * 86_400_000).toISOString(),
      since,
      boundary: [],
      progress: { kind: 'delta', startedAt: new Date(now - 3600_000).toISOString(), nextLink: `${apiOrigin}${delta}?$skiptoken=stale` },
    });
    nock(apiOrigin).get(delta).query({ $skiptoken: 'stale' }).reply(400, { error: { code: 'BadRequest', message: 'expired skiptoken', target: 't' } });
    const q = nockPages(delta, [[vuln(9, { status: 'New', eventTimestamp: '2026-03-01 10:00:00' })]]);
    const run = await pollOnce(config, new VulnerabilitiesCollector(), { now });
    assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
    assert.equal(q[0]!.get('sinceTime'), since);
    assert.deepEqual(run.sink.records().map((r) => r.id), [vuln(9).id]);
    assert.equal(cursor(config).progress, undefined);
    assert.equal(cursor(config).since, '2026-03-01T10:00:00.000Z');
  });

  it('runs a full baseline again when the delta position is older than the API reaches', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'], vulnerabilityBaselineDays: 13 });
    const old = new Date(now - 15 * 86_400_000).toISOString();
    await new CursorStore(config.stateDir).save('acme-mde', 'vulnerabilities', { v: 1, baselineAt: new Date(now - 86_400_000).toISOString(), since: old, boundary: [] });
    nockPages(full, [[vuln(1)]]);
    const run = await pollOnce(config, new VulnerabilitiesCollector(), { now });
    assert.equal(run.failed, 0);
    assert.equal(cursor(config).since, new Date(now - 6 * 3600_000).toISOString());
  });

  it('a page cut short is asked for again and only its rest delivered; one that comes back with other items fails the poll, progress unmoved', async () => {
    const config = testConfig({ contentTypes: ['vulnerabilities'], vulnerabilityPageSize: 3 });
    const cut = (items: Record<string, unknown>[]) => `{"@odata.context":"x","value":[${items.map((v) => JSON.stringify(v)).join(',')},{"id":"m9_cut`;
    const whole = (items: Record<string, unknown>[]) => JSON.stringify({ '@odata.context': 'x', value: items });
    nock(apiOrigin).get(full).query(true).reply(200, cut([vuln(1), vuln(2)]));
    nock(apiOrigin).get(full).query(true).reply(200, whole([vuln(1), vuln(2), vuln(3)]));
    const first = await pollOnce(config, new VulnerabilitiesCollector(1), { now });
    assert.equal(first.failed, 0, first.states[0]?.lastError?.message);
    assert.deepEqual(first.sink.records().map((r) => r.cveId), ['CVE-2025-1001', 'CVE-2025-1002', 'CVE-2025-1003']);

    const other = testConfig({ contentTypes: ['vulnerabilities'], vulnerabilityPageSize: 3 });
    nockTokens([tokenReply(fakeJwt({}))]);
    nock(apiOrigin).get(full).query(true).reply(200, cut([vuln(1), vuln(2)]));
    nock(apiOrigin).get(full).query(true).reply(200, whole([vuln(2), vuln(1), vuln(3)]));
    const second = await pollOnce(other, new VulnerabilitiesCollector(1), { now });
    assert.equal(second.failed, 1);
    assert.match(second.states[0]!.lastError!.message, /came back different \(its first 2 items differ\)/);
    assert.equal(existsSync(new CursorStore(other.stateDir).file('acme-mde', 'vulnerabilities')), false);
  });

  it("reads delta eventTimestamps as UTC in both formats (the transforms' epochMs)", () => {
    assert.equal(epochMs('2025-06-10 03:02:19'), Date.parse('2025-06-10T03:02:19Z'));
    assert.equal(epochMs('2025-06-10 03:02:19.1234567'), Date.parse('2025-06-10T03:02:19.123Z'));
    assert.equal(epochMs('2025-06-10T03:02:19.1234567Z'), Date.parse('2025-06-10T03:02:19.123Z'));
    assert.equal(epochMs(''), undefined);
    assert.equal(epochMs(null), undefined);
  });
});
