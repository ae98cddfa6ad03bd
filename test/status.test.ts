import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connector } from '../plugin/config/load.js';
import { DefenderApiError } from '../plugin/defender/errors.js';
import { registerSecret } from '../plugin/log.js';
import { clientEvents, exposition, polls, registry, trackTokenRenewals, writeMetricsSnapshot } from '../plugin/status/metrics.js';
import { statusRecords } from '../plugin/status/records.js';
import { connectorHealth, readStatusFile, StatusStore } from '../plugin/status/store.js';
import { testConfig } from './helpers/connector.js';

const t0 = Date.parse('2026-03-01T12:00:00Z');
const minute = 60_000;

function clock(start = t0) {
  let now = start;
  return { now: () => now, set: (t: number) => (now = t), advance: (ms: number) => (now += ms) };
}

const subject = { name: 'acme-mde', contentTypes: ['alerts', 'host', 'vulnerabilities'] as const, intervalMinutes: 5 };
const ok = { records: 10, filtered: 2, failed: 1, cursor: '2026-03-01T11:55:00Z' };

describe('connector status store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'df-status-'));
  });

  it('records successes and failures per connector × content type and survives a reload', () => {
    const c = clock();
    const store = new StatusStore(dir, { now: c.now });
    store.recordSuccess('acme-mde', 'alerts', ok);
    store.recordSuccess('acme-mde', 'alerts', { records: 5, filtered: 0, failed: 0, cursor: '2026-03-01T12:00:00Z' });
    c.advance(minute);
    store.recordFailure('acme-mde', 'host', new DefenderApiError('GET /api/machines: HTTP 403 Forbidden', { errorClass: 'permission', status: 403 }));
    store.save();
    const again = new StatusStore(dir).read();
    const alerts = again.connectors['acme-mde']!.contentTypes.alerts!;
    assert.deepEqual(alerts.records, { collected: 15, filtered: 2, failed: 1 });
    assert.equal(alerts.cursor, '2026-03-01T12:00:00Z');
    assert.equal(alerts.lastSuccess, new Date(t0).toISOString());
    const host = again.connectors['acme-mde']!.contentTypes.host!;
    assert.deepEqual(host.lastError, { class: 'permission', message: 'GET /api/machines: HTTP 403 Forbidden', at: new Date(t0 + minute).toISOString() });
    assert.equal(host.consecutiveFailures, 1);
  });

  it('keepOnly: a connector gone from the config leaves status.json, and later entries for it (a replica, a worker, the file) are ignored', () => {
    const before = new StatusStore(dir);
    before.recordSuccess('kept', 'alerts', ok);
    before.recordFailure('gone', 'alerts', new Error('HTTP 500'));
    before.save();
    // a restart on a config without "gone"
    const store = new StatusStore(dir);
    store.keepOnly([{ name: 'kept' }]);
    assert.deepEqual(Object.keys(store.read().connectors), ['kept']);
    const entry = before.read().connectors.gone!.contentTypes.alerts!;
    assert.equal(store.adopt('gone', 'alerts', { ...entry, lastAttempt: new Date(t0 + minute).toISOString() }), false);
    store.merge({ gone: { contentTypes: { alerts: entry } }, kept: { contentTypes: {} } });
    const test = new StatusStore(dir); // a `test` run marks it on disk
    test.clearRed('gone', ['alerts']);
    test.save();
    store.save();
    assert.deepEqual(Object.keys(readStatusFile(dir)!.connectors), ['kept']);
  });

  it('writes status.json atomically (no temp file left, valid JSON, owner-only mode)', () => {
    const store = new StatusStore(dir);
    store.recordSuccess('acme-mde', 'alerts', ok);
    for (let i = 0; i < 5; i++) store.save();
    assert.deepEqual(readdirSync(dir), ['status.json']);
    assert.equal(JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')).version, 1);
    assert.ok(readStatusFile(dir));
    assert.equal(statSync(join(dir, 'status.json')).mode & 0o777, 0o600);
  });

  it('green only when every enabled content type last succeeded within two intervals', () => {
    const c = clock();
    const store = new StatusStore(dir, { now: c.now });
    assert.equal(connectorHealth(subject, store.read(), c.now()).state, 'red');
    assert.deepEqual(connectorHealth(subject, undefined, c.now()).reasons, ['alerts: no poll recorded yet', 'host: no poll recorded yet', 'vulnerabilities: no poll recorded yet']);
    for (const t of subject.contentTypes) store.recordSuccess('acme-mde', t, ok);
    assert.equal(connectorHealth(subject, store.read(), c.now()).state, 'green');
    assert.equal(connectorHealth(subject, store.read(), c.now() + 10 * minute).state, 'green', 'exactly two intervals');
    const stale = connectorHealth(subject, store.read(), c.now() + 10 * minute + 1);
    assert.equal(stale.state, 'red');
    assert.match(stale.reasons[0]!, /^alerts: no successful poll since .* \(more than two intervals: 10 min\)$/);
    c.advance(minute);
    store.recordFailure('acme-mde', 'vulnerabilities', new DefenderApiError('export: HTTP 429', { errorClass: 'throttled', status: 429 }));
    const red = connectorHealth(subject, store.read(), c.now());
    assert.equal(red.state, 'red');
    assert.deepEqual(red.reasons, [`vulnerabilities: last poll failed at ${new Date(c.now()).toISOString()} (throttled): export: HTTP 429`]);
    assert.equal(red.contentTypes.alerts!.state, 'green');
    c.advance(minute);
    store.recordSuccess('acme-mde', 'vulnerabilities', ok);
    assert.equal(connectorHealth(subject, store.read(), c.now()).state, 'green', 'a later success clears the failure');
    // a disabled content type does not count
    assert.equal(connectorHealth({ ...subject, contentTypes: ['alerts'] }, store.read(), c.now()).state, 'green');
  });

  it('clearRed (after a passing test) makes the connector green until two intervals pass without a poll', () => {
    const c = clock();
    const collector = new StatusStore(dir, { now: c.now });
    for (const t of subject.contentTypes) collector.recordFailure('acme-mde', t, new DefenderApiError('token refused AADSTS7000215', { errorClass: 'auth' }));
    collector.save();
    c.advance(minute);
    const test = new StatusStore(dir, { now: c.now });
    test.clearRed('acme-mde');
    test.save();
    assert.equal(connectorHealth(subject, readStatusFile(dir), c.now()).state, 'green');
    // the collector (another process) saves its own view: the clear is kept
    collector.save();
    assert.equal(connectorHealth(subject, readStatusFile(dir), c.now()).state, 'green');
    assert.equal(connectorHealth(subject, readStatusFile(dir), c.now() + 11 * minute).state, 'red', 'no poll since: red again');
    c.advance(minute);
    collector.recordFailure('acme-mde', 'alerts', new Error('still broken'));
    collector.save();
    assert.equal(connectorHealth(subject, readStatusFile(dir), c.now()).state, 'red', 'a failure after the clear is red');
  });

  it('keeps registered secrets out of error messages', () => {
    registerSecret('sekret-value-123456');
    const store = new StatusStore(dir);
    store.recordFailure('acme-mde', 'alerts', new Error('server echoed client_secret=sekret-value-123456'));
    store.save();
    assert.ok(!readFileSync(join(dir, 'status.json'), 'utf8').includes('sekret-value-123456'));
  });

  it('builds one status record per collecting connector with the record contract fields', () => {
    const config = testConfig();
    const connector = config.connectors[0] as Connector;
    const store = new StatusStore(config.stateDir, { now: () => t0 });
    for (const t of connector.contentTypes) store.recordSuccess(connector.name, t, ok);
    const [r, ...rest] = statusRecords(config, store.read(), t0 + minute);
    assert.equal(rest.length, 0);
    assert.equal(r!.tag, 'microsoft_defender.status');
    assert.equal(r!.time, t0 + minute);
    const rec = r!.record as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(rec.msg_class, 'microsoft_defender_status');
    assert.equal(rec.tenant_name, 'acme');
    assert.equal(rec.engid_name, 'microsoft_defender_acme-mde');
    assert.equal(rec.timestamp, t0 + minute);
    assert.equal(rec.write_time, t0 + minute);
    assert.equal(rec.msg_origin.processor.type, 'log_collector');
    assert.equal(rec.microsoft_defender.state, 'green');
    assert.deepEqual(rec.microsoft_defender.reasons, []);
    assert.ok(!('reason' in rec.microsoft_defender.contentTypes.alerts), 'undefined and null fields are dropped');
    assert.equal(rec.microsoft_defender.contentTypes.alerts.records.collected, 10);
    const red = statusRecords(config, undefined, t0)[0]!.record as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(red.microsoft_defender.state, 'red');
    assert.equal(red.microsoft_defender.reasons.length, 3);
  });
});

describe('metrics', () => {
  it('counts 429s and token renewals per connector', async () => {
    clientEvents('metrics-test').onThrottled!('export', 1000);
    const provider = { renewals: 3 };
    trackTokenRenewals('metrics-test', provider);
    let text = await registry.metrics();
    assert.match(text, /defender_fluent_throttled_total\{connector="metrics-test",family="export"\} 1/);
    assert.match(text, /defender_fluent_token_renewals_total\{connector="metrics-test"\} 3/);
    provider.renewals = 5;
    text = await registry.metrics();
    assert.match(text, /defender_fluent_token_renewals_total\{connector="metrics-test"\} 5/);
  });

  it('the collector snapshot (written with the status) is summed into the exposition', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-metrics-'));
    polls.inc({ connector: 'snap-test', content: 'alerts', outcome: 'success' }, 4);
    await writeMetricsSnapshot(dir);
    polls.inc({ connector: 'snap-test', content: 'alerts', outcome: 'success' }, 1);
    const { body, contentType } = await exposition(dir);
    assert.match(contentType, /^text\/plain/);
    // own registry (5) + snapshot (4)
    assert.match(body, /defender_fluent_polls_total\{connector="snap-test",content="alerts",outcome="success"\} 9/);
    const alone = await exposition(join(dir, 'missing'));
    assert.match(alone.body, /defender_fluent_polls_total\{connector="snap-test",content="alerts",outcome="success"\} 5/);
  });
});
