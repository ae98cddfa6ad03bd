// Hostile page items (issue 15 item 13): an alert nested 100 000 levels deep, or an item that is not
// an object, is delivered marked with transform_error and counted, never a reason to fail the page
// (retried, then failed at every interval, it stopped the connector's alerts for good).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import nock from 'nock';
import { AlertsCollector, type AlertsCursor } from '../plugin/collect/alerts.js';
import { HostCollector } from '../plugin/collect/host.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { DigestTable } from '../plugin/state/digest-table.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import { pollOnce } from './helpers/collect.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { useNockedEntra } from './helpers/entra.js';
import { alert } from './helpers/odata-api.js';

describe('hostile page items', () => {
  useNockedEntra();
  const now = Date.parse('2026-03-01T12:00:00Z');
  const at = new Date(now - 3600_000).toISOString();

  it('an alert nested 100 000 deep and a non-object item are delivered marked and counted; the window completes', async () => {
    const config = testConfig({ contentTypes: ['alerts'], lookbackHours: 3 });
    const before = alert(at);
    const after = alert(at);
    const deep = alert(at);
    const n = 100_000;
    const deepText = JSON.stringify(deep).replace(/}$/, `,"extra":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`);
    const page = `{"@odata.context":"x","value":[${JSON.stringify(before)},${deepText},42,null,${JSON.stringify(after)}]}`;
    nock(apiOrigin).get('/api/alerts').query((q) => q.$skip === '0').reply(200, page);
    nock(apiOrigin).get('/api/alerts').query((q) => q.$skip !== '0').times(3).reply(200, { value: [] });
    const loaded = loadMapper();
    assert.ok(loaded.ok);
    const run = await pollOnce(config, new AlertsCollector(), { now, mapper: loaded.mapper });
    assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
    const records = run.sink.records();
    assert.equal(records.length, 5, 'every item delivered');
    const errors = records.map((r) => String(r.transform_error ?? ''));
    assert.match(errors[1]!, /nested deeper than 64 levels/);
    assert.match(errors[2]!, /item 3 of the page is not an object \(number\)/);
    assert.match(errors[3]!, /item 4 of the page is not an object \(null\)/);
    assert.equal((records[1]!.microsoft_defender as Record<string, unknown>).id, deep.id, 'the levels above the cut are kept');
    for (const r of records) assert.doesNotThrow(() => JSON.stringify(r), 'every record serialises (stdout, forward)');
    assert.ok(run.states[0]!.counters.failed >= 3, `counted: ${run.states[0]!.counters.failed}`);
    const cursor = JSON.parse(readFileSync(new CursorStore(config.stateDir).file('acme-mde', 'alerts'), 'utf8')) as AlertsCursor;
    assert.equal(cursor.watermark, new Date(now).toISOString(), 'the window was committed');
  });

  it('machines: an item that is not an object, or a machine without id, is delivered marked; the digests are saved', async () => {
    const config = testConfig({ contentTypes: ['host'] });
    const m = (i: number) => ({ id: `${i}`.padStart(40, 'b'), computerDnsName: `m${i}`, lastSeen: at });
    nock(apiOrigin)
      .get('/api/machines')
      .query((q) => q.$skip === '0')
      .reply(200, `{"value":[${JSON.stringify(m(1))},"oops",{"computerDnsName":"no-id"},${JSON.stringify(m(2))}]}`);
    nock(apiOrigin).get('/api/machines').query((q) => q.$skip !== '0').reply(200, { value: [] });
    const loaded = loadMapper();
    assert.ok(loaded.ok);
    const run = await pollOnce(config, new HostCollector(), { now, mapper: loaded.mapper });
    assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
    const errors = run.sink.records().map((r) => String(r.transform_error ?? ''));
    assert.ok(errors.some((e) => /item 2 of the page is not an object \(string\)/.test(e)), errors.join('\n'));
    assert.equal(run.sink.records().length, 8, 'four machines, each as Syslog and Assets records');
    const saved = DigestTable.fromEntries((await new CursorStore(config.stateDir).loadDigests('acme-mde'))!);
    assert.ok(saved.size === 2 && saved.has(m(1).id) && saved.has(m(2).id), 'a digest for each machine with an id');
  });
});
