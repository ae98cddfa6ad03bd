// The response actions beside contain / release (scan, quarantine, restrict, unrestrict,
// collect-package), over HTTP against the sidecar, which talks to the emulator over HTTPS.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { createLogger } from '../plugin/log.js';
import { RespondServer } from '../plugin/respond/server.js';
import { MemorySink } from './helpers/memory-sink.js';
import { auditLines, call } from './respond-helpers.js';

const all = 'all-actions-token-0123456789abcdef';
const containOnly = 'contain-only-token-0123456789abcdef';
const forever = 'indicators-forever-token-0123456789';
const sha1 = 'A0C659857CCBE457FDAF5FE21D54EFDCBF6F6508';

describe('response actions: scan, quarantine, restrict, unrestrict, collect-package (sidecar → emulator)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let server: RespondServer;
  let base: string;
  let config: Config;
  let machine: string;

  beforeEach(async () => {
    emu = await startEmulator({ seed: 9, alerts: 3, machines: 4, vulnerabilities: 0, freezeClock: true, actionPendingMs: 60_000, actionInProgressMs: 60_000 });
    machine = emu.machineIds()[1]!;
    const stateDir = mkdtempSync(join(tmpdir(), 'df-ra-'));
    const text = stringify({
      stateDir,
      connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', functions: ['collect', 'respond'] }],
      respond: {
        listen: '127.0.0.1:0',
        tokens: [
          { name: 'soar', token: all, connectors: ['*'], actions: ['contain', 'release', 'scan', 'quarantine', 'restrict', 'unrestrict', 'collect-package', 'update-alert', 'tag', 'indicators'] },
          { name: 'ti-forever', token: forever, connectors: ['*'], actions: ['indicators'], indicatorsWithoutExpiration: true },
          { name: 'legacy', token: containOnly, connectors: ['*'] },
        ],
      },
    });
    const checked = checkConfigText(join(stateDir, 'defender.yaml'), text, { EMU_SECRET: emu.clientSecret });
    if (!checked.config) throw new Error(JSON.stringify(checked.problems));
    config = checked.config;
    server = new RespondServer({ config, sink: new MemorySink(), logger: createLogger('warn', new PassThrough().resume()), watchIntervalMs: 0 });
    base = (await server.listen('127.0.0.1:0')).url;
  });
  afterEach(async () => {
    await server.close();
    await emu.close();
  });

  it('each action asks Defender for its machine action; 202 with the Pending action, never an early success; final status on GET', async () => {
    const cases: Array<[string, Record<string, unknown>, string, string | null]> = [
      ['scan', { scanType: 'Full' }, 'RunAntiVirusScan', 'Full'],
      ['quarantine', { sha1 }, 'StopAndQuarantineFile', null],
      ['restrict', {}, 'RestrictCodeExecution', null],
      ['unrestrict', {}, 'UnrestrictCodeExecution', null],
      ['collect-package', {}, 'CollectInvestigationPackage', null],
    ];
    const ids: string[] = [];
    for (const [action, extra, type, scope] of cases) {
      const r = await call(base, 'POST', `/v1/actions/${action}`, { token: all, body: { connector: 'emu', machineId: machine, comment: `test ${action}`, ...extra } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.json.action.type, type);
      assert.equal(r.json.action.status, 'Pending');
      assert.equal(r.json.action.succeeded, false);
      assert.equal(r.json.created, true);
      if (scope) assert.equal(r.json.action.scope, scope);
      ids.push(r.json.action.id);
    }
    emu.advanceTime(121_000);
    for (const id of ids) {
      const r = await call(base, 'GET', `/v1/actions/${id}?connector=emu`, { token: all });
      assert.equal(r.json.action.status, 'Succeeded');
      assert.equal(r.json.action.final, true);
    }
    const audited = auditLines(config.stateDir).map((l) => l.microsoft_defender.event as string);
    for (const [action] of cases) assert.ok(audited.includes(action), `${action} audited`);
    assert.equal(audited.filter((e) => e === 'action_outcome').length, cases.length, 'each final outcome audited once');
  });

  it('one pending action per machine and type: a second scan returns the first; another type is its own action', async () => {
    const body = { connector: 'emu', machineId: machine, comment: 'scan it' };
    const first = await call(base, 'POST', '/v1/actions/scan', { token: all, body });
    const again = await call(base, 'POST', '/v1/actions/scan', { token: all, body });
    assert.equal(again.status, 202);
    assert.equal(again.json.created, false);
    assert.equal(again.json.action.id, first.json.action.id);
    assert.equal(first.json.action.scope, 'Quick', 'Quick by default');
    const restrict = await call(base, 'POST', '/v1/actions/restrict', { token: all, body: { ...body, comment: 'restrict' } });
    assert.equal(restrict.json.created, true);
    assert.notEqual(restrict.json.action.id, first.json.action.id);
  });

  it('the investigation package link once the collection succeeded (404 before)', async () => {
    const r = await call(base, 'POST', '/v1/actions/collect-package', { token: all, body: { connector: 'emu', machineId: machine, comment: 'forensics' } });
    const id = r.json.action.id as string;
    const early = await call(base, 'GET', `/v1/actions/${id}/package?connector=emu`, { token: all });
    assert.equal(early.status, 404);
    emu.advanceTime(121_000);
    const ready = await call(base, 'GET', `/v1/actions/${id}/package?connector=emu`, { token: all });
    assert.equal(ready.status, 200, ready.text);
    assert.match(ready.json.uri, new RegExp(`/packages/${id}\\.zip`));
  });

  it('pointed 400s: a SHA-1 that is not 40 hex, a quarantine without sha1, a field of another action; 403 for a token without the action', async () => {
    const body = { connector: 'emu', machineId: machine, comment: 'x' };
    const badSha = await call(base, 'POST', '/v1/actions/quarantine', { token: all, body: { ...body, sha1: 'abc' } });
    assert.equal(badSha.status, 400);
    assert.deepEqual(badSha.json.error.details, [{ pointer: '/sha1', message: 'must match ^[0-9a-fA-F]{40}$' }]);
    const noSha = await call(base, 'POST', '/v1/actions/quarantine', { token: all, body });
    assert.equal(noSha.status, 400);
    assert.match(noSha.json.error.message, /\/sha1: is required/);
    const misplaced = await call(base, 'POST', '/v1/actions/restrict', { token: all, body: { ...body, scanType: 'Full' } });
    assert.equal(misplaced.status, 400);
    assert.match(misplaced.json.error.message, /\/scanType: only a scan request takes scanType/);
    const badScan = await call(base, 'POST', '/v1/actions/scan', { token: all, body: { ...body, scanType: 'Deep' } });
    assert.equal(badScan.status, 400);
    const forbidden = await call(base, 'POST', '/v1/actions/scan', { token: containOnly, body });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json.error.code, 'forbidden_action');
    // contain stays allowed for a token without an actions list
    const contain = await call(base, 'POST', '/v1/actions/contain', { token: containOnly, body });
    assert.equal(contain.status, 202, contain.text);
    assert.equal(emu.served.requests.filter((q) => q.method === 'POST' && /runAntiVirusScan|StopAndQuarantineFile|restrictCodeExecution/.test(q.path)).length, 0, 'nothing refused reached Defender');
  });

  it('update-alert: status, classification, determination, assignee and a comment; a new alert version; refused for another connector, pointed 400s', async () => {
    const before = emu.alertVersions()[0]!;
    const r = await call(base, 'POST', '/v1/actions/update-alert', {
      token: all,
      body: { connector: 'emu', alertId: before.id, status: 'Resolved', assignedTo: 'secop2@contoso.com', classification: 'TruePositive', determination: 'Malware', comment: 'closed by the SOC' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.alert.status, 'Resolved');
    assert.equal(r.json.alert.classification, 'TruePositive');
    assert.equal(r.json.alert.determination, 'Malware');
    assert.equal(r.json.alert.assignedTo, 'secop2@contoso.com');
    const after = emu.alertVersions().find((v) => v.id === before.id)!;
    assert.equal(after.status, 'Resolved');
    assert.notEqual(after.lastUpdateTime, before.lastUpdateTime, 'a new version the collector will deliver');
    const audit = auditLines(config.stateDir).find((l) => l.microsoft_defender.event === 'update_alert')!;
    assert.equal(audit.microsoft_defender.alertId, before.id);

    // an alert record collected by another connector is refused before Defender is called
    const record = { msg_class: 'microsoft_defender_alerts', tenant_name: 'Emulated tenant', engid_name: 'microsoft_defender_other', microsoft_defender: { id: before.id } };
    const other = await call(base, 'POST', '/v1/actions/update-alert', { token: all, body: { connector: 'emu', record, status: 'New' } });
    assert.equal(other.status, 403);
    assert.equal(other.json.error.code, 'connector_mismatch');
    const nothing = await call(base, 'POST', '/v1/actions/update-alert', { token: all, body: { connector: 'emu', alertId: before.id } });
    assert.equal(nothing.status, 400);
    assert.match(nothing.json.error.message, /nothing to update/);
    const badValue = await call(base, 'POST', '/v1/actions/update-alert', { token: all, body: { connector: 'emu', alertId: before.id, classification: 'Benign' } });
    assert.equal(badValue.status, 400);
    assert.equal(badValue.json.error.details[0].pointer, '/classification');
    const unknown = await call(base, 'POST', '/v1/actions/update-alert', { token: all, body: { connector: 'emu', alertId: 'da-unknown_1', status: 'New' } });
    assert.equal(unknown.status, 404);
    const forbidden = await call(base, 'POST', '/v1/actions/update-alert', { token: containOnly, body: { connector: 'emu', alertId: before.id, status: 'New' } });
    assert.equal(forbidden.status, 403);
    assert.equal(emu.served.requests.filter((q) => q.method === 'PATCH').length, 2, 'only the update and the unknown alert reached Defender');
  });

  it('POST /v1/fluent/update-alert: the JSON array Fluentd out_http sends (the SOC closed these alerts); each one answered, refusals not retried, a Defender failure retried', async () => {
    const [a, b, c] = emu.alertVersions();
    const post = (items: unknown, token = all, query = '') => call(base, 'POST', `/v1/fluent/update-alert${query}`, { token, raw: JSON.stringify(items), contentType: 'application/json' });
    // what out_http sends after fluent.conf.example's record_transformer added status Resolved
    const closed = [
      { connector: 'emu', alertId: a!.id, classification: 'TruePositive', determination: 'Malware', comment: 'case 17 closed', status: 'Resolved' },
      // the collector's own alert record names its connector (engid_name)
      { record: { msg_class: 'microsoft_defender_alerts', tenant_name: 'Emulated tenant', engid_name: 'microsoft_defender_emu', microsoft_defender: { id: b!.id } }, classification: 'FalsePositive', status: 'Resolved' },
      { connector: 'emu', alertId: c!.id, classification: 'Benign', status: 'Resolved' },
      { record: { msg_class: 'microsoft_defender_alerts', tenant_name: 'Emulated tenant', engid_name: 'microsoft_defender_other', microsoft_defender: { id: c!.id } }, status: 'Resolved' },
    ];
    const r = await post(closed);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.summary, { accepted: 2, rejected: 2 });
    assert.deepEqual(r.json.results.map((x: { status: string; httpStatus: number }) => [x.status, x.httpStatus]), [['accepted', 200], ['accepted', 200], ['rejected', 400], ['rejected', 404]]);
    assert.match(r.json.results[2].reason, /\/classification/);
    assert.match(r.json.results[3].reason, /^unknown_connector: no connector named "other"/);
    for (const alert of [a!, b!]) assert.equal(emu.alertVersions().find((v) => v.id === alert.id)!.status, 'Resolved');
    assert.notEqual(emu.alertVersions().find((v) => v.id === c!.id)!.status, 'Resolved', 'a refused body changes nothing');
    const audited = auditLines(config.stateDir).filter((l) => l.microsoft_defender.event === 'update_alert').map((l) => l.microsoft_defender.outcome);
    assert.deepEqual(audited.sort(), ['accepted', 'accepted', 'refused', 'refused']);

    // ?connector= for bodies without one; NDJSON too
    const ndjson = await call(base, 'POST', '/v1/fluent/update-alert?connector=emu', { token: all, raw: `${JSON.stringify({ alertId: c!.id, status: 'Resolved', classification: 'TruePositive' })}\n`, contentType: 'application/x-ndjson' });
    assert.equal(ndjson.status, 200, ndjson.text);
    assert.equal(emu.alertVersions().find((v) => v.id === c!.id)!.status, 'Resolved');

    // Defender failing: 503 so out_http sends the chunk again
    emu.setFaults('500:count=0:on=actions');
    const failing = await post([{ connector: 'emu', alertId: a!.id, status: 'InProgress' }]);
    assert.equal(failing.status, 503, failing.text);
    assert.equal(failing.json.results[0].status, 'error');
    emu.setFaults([]);
    // a token without update-alert: the whole payload refused
    const forbidden = await post(closed, containOnly);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json.error.code, 'forbidden_action');
  });

  it("GET /v1/hosts/{id}/isolation: from Defender's machine actions for the machine, whoever took them (the portal, another tool), not only this sidecar's", async () => {
    const state = async () => {
      const r = await call(base, 'GET', `/v1/hosts/${machine}/isolation?connector=emu`, { token: all });
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    assert.equal((await state()).isolation, 'not_isolated');
    const portal = emu.addMachineAction('Isolate', machine, 'analyst@contoso.com');
    const pending = await state();
    assert.equal(pending.isolation, 'pending');
    assert.equal(pending.pending.id, portal);
    emu.advanceTime(121_000);
    const isolated = await state();
    assert.equal(isolated.isolation, 'isolated');
    assert.equal(isolated.basis.id, portal);
    assert.equal(isolated.basis.requestor, 'analyst@contoso.com');
    assert.equal(emu.isIsolated(machine), true);
    // released by another tool: the sidecar's answer follows
    const released = emu.addMachineAction('Unisolate', machine, 'other-soar@contoso.com');
    emu.advanceTime(121_000);
    const after = await state();
    assert.equal(after.isolation, 'not_isolated');
    assert.equal(after.basis.id, released);
    assert.equal(after.lastIsolate.id, portal);
    assert.equal(emu.isIsolated(machine), false);
  });

  it('tag: add and remove a machine tag, idempotently; a tag of blanks is a 400', async () => {
    const tag = (action: string, value = 'contained-by-soc') => call(base, 'POST', '/v1/actions/tag', { token: all, body: { connector: 'emu', machineId: machine, tag: value, action } });
    const added = await tag('add');
    assert.equal(added.status, 200, added.text);
    assert.ok(added.json.tags.includes('contained-by-soc'));
    const again = await tag('add');
    assert.deepEqual(again.json.tags, added.json.tags, 'adding twice keeps one');
    const removed = await tag('remove');
    assert.ok(!removed.json.tags.includes('contained-by-soc'));
    assert.equal((await tag('remove')).status, 200, 'removing an absent tag is not an error');
    const blank = await tag('add', '   ');
    assert.equal(blank.status, 400);
    assert.equal(blank.json.error.details[0].pointer, '/tag');
    assert.equal(auditLines(config.stateDir).filter((l) => l.microsoft_defender.event === 'tag' && l.microsoft_defender.outcome === 'accepted').length, 4, 'each change audited (the refusal too, as refused)');
  });

  it('indicators: submit with an expiration, list ours, delete; a value that does not parse, a past or missing expiration are pointed 400s', async () => {
    const expiration = new Date(emu.now() + 7 * 24 * 3600_000).toISOString();
    const submit = (body: Record<string, unknown>, token = all) => call(base, 'POST', '/v1/indicators', { token, body: { connector: 'emu', title: 'bad domain', action: 'Block', ...body } });
    const ok = await submit({ type: 'domain', value: 'bad.example.com', severity: 'High', expiration });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.indicator.indicatorType, 'DomainName');
    assert.equal(ok.json.indicator.application, 'defender-fluent');
    const audit = await submit({ type: 'sha256', value: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', action: 'Audit', expiration });
    assert.equal(audit.status, 200, audit.text);
    assert.equal(audit.json.indicator.generateAlert, true, 'Audit comes with an alert');
    const listed = await call(base, 'GET', '/v1/indicators?connector=emu', { token: all });
    assert.deepEqual(listed.json.indicators.map((i: { indicatorValue: string }) => i.indicatorValue).sort(), ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'bad.example.com']);
    const deleted = await call(base, 'DELETE', `/v1/indicators/${ok.json.indicator.id}?connector=emu`, { token: all });
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal((await call(base, 'GET', '/v1/indicators?connector=emu', { token: all })).json.indicators.length, 1);

    const problems: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ type: 'ip', value: '10.0.0.0/8', expiration }, '/value', /ranges and CIDR are not supported/],
      [{ type: 'sha1', value: 'abc', expiration }, '/value', /40 hex characters/],
      [{ type: 'url', value: 'ftp://x.example', expiration }, '/value', /http/],
      [{ type: 'domain', value: 'bad.example.com', expiration: new Date(emu.now() - 1000).toISOString() }, '/expiration', /in the past/],
      [{ type: 'domain', value: 'bad.example.com' }, '/expiration', /is required/],
      [{ type: 'domain', value: 'bad.example.com', action: 'Audit', generateAlert: false, expiration }, '/generateAlert', /must be true/],
      [{ type: 'hash', value: 'x', expiration }, '/type', /must be one of/],
    ];
    for (const [body, pointer, message] of problems) {
      const r = await submit(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.details[0].pointer, pointer);
      assert.match(r.json.error.details[0].message, message);
    }
    // a token allowed to submit indicators that never expire
    const kept = await submit({ type: 'ip', value: '203.0.113.7' }, forever);
    assert.equal(kept.status, 200, kept.text);
    assert.equal(kept.json.indicator.expirationTime, null);
    assert.equal((await submit({ type: 'ip', value: '203.0.113.8', expiration }, containOnly)).status, 403);
    assert.equal(emu.served.requests.filter((q) => q.method === 'POST' && q.path === '/api/indicators').length, 3, 'refused bodies never reached Defender');
  });

  it("indicators: another tool's indicator is neither listed nor deleted (pointed 403), ours still is", async () => {
    const foreign = emu.addForeignIndicator({ indicatorValue: 'portal.example.com', indicatorType: 'DomainName', action: 'Block', createdBy: 'analyst@emulated.test' });
    const otherApp = emu.addForeignIndicator({ indicatorValue: '198.51.100.9', indicatorType: 'IpAddress', action: 'Alert', application: 'other-soar', createdBy: 'soar@emulated.test' });
    const expiration = new Date(emu.now() + 24 * 3600_000).toISOString();
    const ours = await call(base, 'POST', '/v1/indicators', { token: all, body: { connector: 'emu', title: 't', action: 'Block', type: 'domain', value: 'ours.example.com', expiration } });
    assert.equal(ours.status, 200, ours.text);
    const listed = await call(base, 'GET', '/v1/indicators?connector=emu', { token: all });
    assert.deepEqual(listed.json.indicators.map((i: { indicatorValue: string }) => i.indicatorValue), ['ours.example.com']);
    for (const id of [foreign, otherApp, '99999']) {
      const r = await call(base, 'DELETE', `/v1/indicators/${id}?connector=emu`, { token: all });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.error.code, 'not_ours');
      assert.match(r.json.error.message, new RegExp(`indicator ${id} was not submitted by defender-fluent`));
    }
    assert.equal(emu.served.requests.filter((q) => q.method === 'DELETE').length, 0, 'no delete reached Defender');
    assert.ok(auditLines(config.stateDir).some((l) => l.microsoft_defender.event === 'indicator_delete' && l.microsoft_defender.outcome === 'refused' && /not_ours/.test(String(l.microsoft_defender.reason))));
    assert.equal((await call(base, 'DELETE', `/v1/indicators/${ours.json.indicator.id}?connector=emu`, { token: all })).status, 200);
  });
});
