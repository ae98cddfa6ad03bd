import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import nock from 'nock';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { HostCollector } from '../plugin/collect/host.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { fakeJwt, nockTokens, tokenReply, useNockedEntra } from './helpers/entra.js';
import { pollOnce } from './helpers/collect.js';
import { HeldAcksSink } from './helpers/held-acks-sink.js';

const machine = (id: string, extra: Record<string, unknown> = {}) => ({
  id: id.padEnd(40, '0'),
  computerDnsName: `${id}.corp.fabrikam.test`,
  lastSeen: '2026-03-01T05:12:44.2398812Z',
  healthStatus: 'Active',
  ipAddresses: [{ ipAddress: '10.0.0.1', macAddress: '00155D0A1B2C', operationalStatus: 'Up' }],
  ...extra,
});

function nockMachines(machines: Array<Record<string, unknown>>) {
  const served: number[] = [];
  nock(apiOrigin)
    .get('/api/machines')
    .query(true)
    .times(100)
    .reply((uri) => {
      const q = new URL(uri, apiOrigin).searchParams;
      const top = Number(q.get('$top'));
      const skip = Number(q.get('$skip'));
      served.push(skip);
      return [200, { value: machines.slice(skip, skip + top) }];
    });
  return served;
}

describe('host collection', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  useNockedEntra();

  it('delivers every machine first (Syslog and Assets), then only those that changed, and all again at the full refresh', async () => {
    const config = testConfig({ contentTypes: ['host'], hostFullRefreshHours: 24 });
    const machines = [machine('a1'), machine('b2'), machine('c3'), machine('d4'), machine('e5')];
    const served = nockMachines(machines);
    const first = await pollOnce(config, new HostCollector(2), { now });
    assert.equal(first.failed, 0);
    // a page shorter than $top is no proof of the end: paging stops on an empty one
    assert.deepEqual(served, [0, 2, 4, 5]);
    assert.equal(first.sink.received.length, 10);
    assert.deepEqual(new Set(first.sink.received.map((r) => r.tag)), new Set(['microsoft_defender.syslog.host', 'microsoft_defender.assets.host']));

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    machines[1] = { ...machines[1]!, healthStatus: 'Inactive' };
    nockMachines(machines);
    const second = await pollOnce(config, new HostCollector(2), { now: now + 3600_000 });
    assert.deepEqual(
      second.sink.records().map((r) => r.healthStatus),
      ['Inactive', 'Inactive'],
    );

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    nockMachines(machines);
    const third = await pollOnce(config, new HostCollector(2), { now: now + 25 * 3600_000 });
    assert.equal(third.sink.received.length, 10, 'full refresh after hostFullRefreshHours');
  });

  it('a version-1 cursor (digests inside it) is read: only the machines changed since are delivered, then the digests move beside the cursor', async () => {
    const config = testConfig({ contentTypes: ['host'], hostFullRefreshHours: 24 });
    const machines = [machine('a1'), machine('b2'), machine('c3')];
    const sha1 = (m: unknown) => createHash('sha1').update(JSON.stringify(m)).digest('base64');
    const store = new CursorStore(config.stateDir);
    await store.save('acme-mde', 'host', { v: 1, lastFullRefresh: new Date(now - 3600_000).toISOString(), digests: Object.fromEntries(machines.map((m) => [m.id, sha1(m)])) });
    machines[2] = { ...machines[2]!, healthStatus: 'Inactive' };
    nockMachines(machines);
    const run = await pollOnce(config, new HostCollector(2), { now });
    assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
    assert.deepEqual(new Set(run.sink.records().map((r) => r.id)), new Set([machines[2]!.id]));
    assert.deepEqual(await store.load('acme-mde', 'host', (v): v is unknown => true), { v: 2, lastFullRefresh: new Date(now - 3600_000).toISOString(), machines: 3 });
    assert.equal((await store.loadDigests('acme-mde'))?.length, 3 * 16);
  });

  it('a version-2 cursor whose digests are missing stops the task with the reset command, rather than deliver every machine as changed', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    await new CursorStore(config.stateDir).save('acme-mde', 'host', { v: 2, lastFullRefresh: new Date(now - 3600_000).toISOString(), machines: 3 });
    nockMachines([machine('a1')]);
    const run = await pollOnce(config, new HostCollector(2), { now });
    assert.equal(run.failed, 1);
    assert.match(run.states[0]!.lastError!.message, /host digests are missing.*--reset-cursor acme-mde:host/);
    assert.equal(run.sink.received.length, 0);
  });

  it('404 on the machine list means no machines, not an error', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    nock(apiOrigin).get('/api/machines').query(true).reply(404, { error: { code: 'NotFound', message: 'No machines', target: 'x' } });
    const run = await pollOnce(config, new HostCollector(), { now });
    assert.equal(run.failed, 0);
    assert.equal(run.sink.received.length, 0);
  });

  it('reads on while slices await their acknowledgement; the digests are saved only after the last ack', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    nockMachines(['a1', 'b2', 'c3', 'd4', 'e5', 'f6'].map((id) => machine(id)));
    const sink = new HeldAcksSink();
    const cursorFile = new CursorStore(config.stateDir).file('acme-mde', 'host');
    const poll = pollOnce(config, new HostCollector(4, 2, 2), { now, sink });
    await sink.waitForPending(2);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(sink.pending.length, 2, 'a second slice was handed over before the first was acknowledged, and no third');
    for (let acked = 0; acked < 3; acked++) {
      await sink.waitForPending(1);
      await new Promise((r) => setTimeout(r, 30)); // room for a premature cursor save to land
      assert.equal(existsSync(cursorFile), false, `no cursor before every slice is acknowledged (${acked} of 3)`);
      sink.ackOldest();
    }
    assert.equal((await poll).failed, 0);
    assert.equal(sink.received.length, 12, 'each machine → a Syslog and an Assets record');
    assert.equal(existsSync(cursorFile), true);
  });

  it('follows @odata.nextLink (on the API host only, never the same link twice)', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    nock(apiOrigin).get('/api/machines').query({ $top: '2', $skip: '0' }).reply(200, { value: [machine('a1'), machine('b2')], '@odata.nextLink': `${apiOrigin}/api/machines?$skiptoken=2` });
    nock(apiOrigin).get('/api/machines').query({ $skiptoken: '2' }).reply(200, { value: [machine('c3')], '@odata.nextLink': `${apiOrigin}/api/machines?$skiptoken=3` });
    nock(apiOrigin).get('/api/machines').query({ $skiptoken: '3' }).reply(200, { value: [machine('d4')] });
    const run = await pollOnce(config, new HostCollector(2), { now });
    assert.equal(run.failed, 0);
    assert.equal(new Set(run.sink.records().map((r) => r.id)).size, 4, 'a linked page without a link is the end');

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    nock(apiOrigin).get('/api/machines').query(true).reply(200, { value: [machine('a1')], '@odata.nextLink': `${apiOrigin}/api/machines?$skiptoken=same` });
    nock(apiOrigin).get('/api/machines').query({ $skiptoken: 'same' }).reply(200, { value: [machine('b2')], '@odata.nextLink': `${apiOrigin}/api/machines?$skiptoken=same` });
    const loop = await pollOnce(testConfig({ contentTypes: ['host'] }), new HostCollector(2), { now });
    assert.equal(loop.failed, 1);
    assert.match(loop.states[0]!.lastError!.message, /nextLink repeats a link already followed/);

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({}))]);
    nock(apiOrigin).get('/api/machines').query(true).reply(200, { value: [machine('a1')], '@odata.nextLink': 'https://attacker.example/api/machines?$skip=1' });
    const offHost = await pollOnce(testConfig({ contentTypes: ['host'] }), new HostCollector(2), { now });
    assert.equal(offHost.failed, 1);
    assert.equal(offHost.states[0]!.lastError!.class, 'paging');
  });

  it('a page shorter than $top is not the end (a server capping pages): $skip steps on by what it held until an empty page', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    const machines = Array.from({ length: 7 }, (_, i) => machine(`m${i}`));
    const served: number[] = [];
    nock(apiOrigin)
      .get('/api/machines')
      .query(true)
      .times(10)
      .reply((uri) => {
        const skip = Number(new URL(uri, apiOrigin).searchParams.get('$skip'));
        served.push(skip);
        return [200, { value: machines.slice(skip, skip + 3) }]; // capped at 3 whatever $top says
      });
    const run = await pollOnce(config, new HostCollector(10), { now });
    assert.equal(run.failed, 0);
    assert.deepEqual(served, [0, 3, 6, 7]);
    assert.equal(new Set(run.sink.records().map((r) => r.id)).size, 7);
  });

  it('a page cut short is asked for again without delivering its first machines twice', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    const body = JSON.stringify({ value: [machine('a1'), machine('b2')] });
    nock(apiOrigin).get('/api/machines').query({ $top: '10', $skip: '0' }).reply(200, body.slice(0, body.indexOf('b2') - 10));
    nock(apiOrigin).get('/api/machines').query({ $top: '10', $skip: '0' }).reply(200, body);
    nock(apiOrigin).get('/api/machines').query({ $top: '10', $skip: '2' }).reply(200, { value: [] });
    const run = await pollOnce(config, new HostCollector(10, 1), { now });
    assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
    assert.deepEqual(
      run.sink.records().map((r) => r.id),
      [machine('a1').id, machine('a1').id, machine('b2').id, machine('b2').id],
      'each machine once (Syslog + Assets)',
    );
  });

  it('a page that repeats machines already read stops the poll', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    nock(apiOrigin).get('/api/machines').query(true).times(2).reply(200, { value: [machine('a1'), machine('b2')] });
    const run = await pollOnce(config, new HostCollector(2), { now });
    assert.equal(run.failed, 1);
    assert.match(run.states[0]!.lastError!.message, /paging loop/);
  });
});
