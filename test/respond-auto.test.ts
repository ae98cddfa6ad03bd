import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';
import type { Config } from '../plugin/config/load.js';
import { createLogger } from '../plugin/log.js';
import { RespondServer } from '../plugin/respond/server.js';
import { MemorySink } from './helpers/memory-sink.js';
import { acmeOrigin, auditLines, call, FakeDefender, globexOrigin, loadFixture, machineId, nockEntra, respondConfig, tokens, type HttpReply } from './respond-helpers.js';
import { PassThrough } from 'node:stream';
import { useNock } from './helpers/nock.js';

interface Harness {
  config: Config;
  server: RespondServer;
  base: string;
  sink: MemorySink;
  acme: FakeDefender;
  globex: FakeDefender;
}

const servers: RespondServer[] = [];

async function start(auto: Record<string, unknown>, config = respondConfig({ auto })): Promise<Harness> {
  const sink = new MemorySink();
  const server = new RespondServer({ config, sink, logger: createLogger('warn', new PassThrough().resume()) });
  servers.push(server);
  const { url } = await server.listen('127.0.0.1:0');
  return { config, server, base: url, sink, acme: new FakeDefender(acmeOrigin), globex: new FakeDefender(globexOrigin) };
}

/** An alert record as the collector emits it, for connector/tenant and machine n. */
function alert(n: number, over: Record<string, unknown> = {}, connector = 'acme-mde', tenant = 'acme'): Record<string, unknown> {
  const base = loadFixture('alert-record.json') as { microsoft_defender: Record<string, unknown> };
  return {
    ...base,
    tenant_name: tenant,
    engid_name: `microsoft_defender_${connector}`,
    microsoft_defender: { ...base.microsoft_defender, id: `da${n}_alert`, machineId: machineId(n), ...over },
  };
}

function post(h: Harness, records: unknown[] | string, token = tokens.fluent, query = ''): Promise<HttpReply> {
  const raw = typeof records === 'string' ? records : JSON.stringify(records);
  return call(h.base, 'POST', `/v1/fluent/contain${query}`, { token, raw, contentType: typeof records === 'string' ? 'application/x-ndjson' : 'application/json' });
}

const enabled = { enabled: true, dryRun: false, minSeverity: 'High', detectionSources: ['WindowsDefenderAtp'], maxPerHourPerConnector: 10, maxPerHour: 20 };

describe('response sidecar: automated response (POST /v1/fluent/contain)', function () {
  useNock();
  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    nockEntra();
  });
  afterEach(async () => {
    while (servers.length) await servers.pop()!.close();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('is refused per record while respond.auto.enabled is false (the default), and audited', async () => {
    const h = await start({});
    const r = await post(h, [alert(1)]);
    assert.equal(r.status, 200);
    assert.equal(r.json.results[0].status, 'refused');
    assert.equal(r.json.results[0].code, 'auto_disabled');
    assert.equal(h.acme.posts.length + h.acme.machineGets.length, 0);
    const [a] = auditLines(h.config.stateDir);
    assert.equal(a!.microsoft_defender.event, 'auto_contain');
    assert.equal(a!.microsoft_defender.outcome, 'refused');
    assert.equal(a!.microsoft_defender.alertId, 'da1_alert');
    assert.equal(a!.microsoft_defender.requester, 'fluentd');
  });

  it('accepts NDJSON and JSON arrays (Fluentd out_http) and applies severity, detection source and category filters', async () => {
    const h = await start({ ...enabled, categories: ['CredentialAccess'] });
    const ndjson = [alert(1), alert(2, { severity: 'Medium' }), alert(3, { detectionSource: 'WindowsDefenderAv' }), alert(4, { category: 'Execution' })].map((r) => JSON.stringify(r)).join('\n') + '\n';
    const r = await post(h, ndjson);
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.results.map((x: { status: string }) => x.status),
      ['accepted', 'skipped', 'skipped', 'skipped'],
    );
    assert.match(r.json.results[1].reason, /severity Medium is below minSeverity High/);
    assert.match(r.json.results[2].reason, /detectionSource "WindowsDefenderAv"/);
    assert.match(r.json.results[3].reason, /category "Execution"/);
    assert.equal(r.json.results[0].action.status, 'Pending');
    assert.deepEqual(h.acme.posts.map((p) => p.path), [`/api/machines/${machineId(1)}/isolate`]);
    assert.equal(h.acme.posts[0]!.body.IsolationType, 'Full');
    const arr = await post(h, [alert(5)]);
    assert.equal(arr.json.results[0].status, 'accepted');
    assert.equal(auditLines(h.config.stateDir).length, 5);
  });

  it('malformed NDJSON refuses the payload (400, line number); a record without the fields is rejected alone', async () => {
    const h = await start(enabled);
    const bad = await post(h, `${JSON.stringify(alert(1))}\n{"msg_class": \n`);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /NDJSON line 2 is not valid JSON/);
    const r = await post(h, [alert(1), { msg_class: 'microsoft_defender_alerts', tenant_name: 'acme', engid_name: 'microsoft_defender_acme-mde', microsoft_defender: { id: 'x', severity: 'High' } }, alert(2, { machineId: 'c81d4fae-7dec-41d0-a765-00a0c91e6bf6' })]);
    assert.deepEqual(
      r.json.results.map((x: { status: string }) => x.status),
      ['accepted', 'rejected', 'rejected'],
    );
    assert.match(r.json.results[1].reason, /\/microsoft_defender\/machineId: is required/);
    assert.equal(h.acme.posts.length, 1);
  });

  it('checks scope and tenant per record', async () => {
    const h = await start(enabled);
    const r = await post(h, [alert(1, {}, 'globex-mde', 'globex'), alert(2, {}, 'acme-mde', 'globex')], tokens.acmeOnly);
    assert.deepEqual(
      r.json.results.map((x: { code: string }) => x.code),
      ['forbidden_connector', 'tenant_mismatch'],
    );
    assert.equal(h.acme.posts.length + h.globex.posts.length, 0);
  });

  it('dryRun reports what it would do and isolates nothing', async () => {
    const h = await start({ ...enabled, dryRun: true });
    const r = await post(h, [alert(1), alert(2)]);
    assert.deepEqual(
      r.json.results.map((x: { status: string }) => x.status),
      ['dry_run', 'dry_run'],
    );
    assert.equal(r.json.dryRun, true);
    assert.equal(h.acme.posts.length, 0);
    assert.ok(auditLines(h.config.stateDir).every((a) => a.microsoft_defender.dryRun === true));
  });

  it('never isolates a machine carrying the exclusion tag, looked up by machine id only', async () => {
    const h = await start(enabled);
    h.acme.machineTags.set(machineId(1), ['VIP', 'no-auto-isolate']);
    const r = await post(h, [alert(1), alert(2)]);
    assert.equal(r.json.results[0].status, 'skipped');
    assert.equal(r.json.results[0].code, 'excluded');
    assert.equal(r.json.results[1].status, 'accepted');
    assert.deepEqual(h.acme.machineGets, [machineId(1), machineId(2)]);
    assert.deepEqual(h.acme.posts.map((p) => p.path), [`/api/machines/${machineId(2)}/isolate`]);
    // tags on the record itself are used without a lookup
    const tagged = await post(h, [alert(3, { machineTags: ['no-auto-isolate'] })]);
    assert.equal(tagged.json.results[0].code, 'excluded');
    assert.equal(h.acme.machineGets.length, 2);
  });

  it('200 concurrent requests for 50 machines isolate exactly maxPerHourPerConnector machines, none twice; the rest are refused per record with 200 (a decision, not a delivery failure)', async () => {
    const h = await start(enabled);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => post(h, [alert(i % 50)])));
    const isolated = h.acme.posts.map((p) => p.path.split('/')[3]);
    assert.equal(isolated.length, 10);
    assert.equal(new Set(isolated).size, 10, 'no machine twice');
    assert.ok(replies.every((r) => r.status === 200), 'out_http must neither retry a refusal nor treat it as unrecoverable');
    const capped = replies.filter((r) => r.json.results[0].code === 'cap_exceeded');
    assert.ok(capped.length > 0);
    assert.ok(capped.every((r) => r.json.results[0].status === 'refused' && r.json.results[0].httpStatus === 429));
    const accepted = replies.filter((r) => r.json.results[0].status === 'accepted');
    assert.equal(accepted.length, 10);
    const audit = auditLines(h.config.stateDir);
    assert.equal(audit.length, 200);
    assert.equal(audit.filter((a) => a.microsoft_defender.outcome === 'accepted').length, 10);
    assert.ok(audit.filter((a) => a.microsoft_defender.outcome === 'refused').every((a) => a.microsoft_defender.httpStatus === 429));
  });

  it('the total cap holds across connectors under concurrency', async () => {
    const h = await start({ ...enabled, maxPerHourPerConnector: 8, maxPerHour: 12 });
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const n = i % 50;
        return n < 25 ? post(h, [alert(n)]) : post(h, [alert(n, {}, 'globex-mde', 'globex')]);
      }),
    );
    const acme = h.acme.posts.map((p) => p.path.split('/')[3]);
    const globex = h.globex.posts.map((p) => p.path.split('/')[3]);
    assert.equal(acme.length + globex.length, 12);
    assert.ok(acme.length <= 8 && globex.length <= 8, `${acme.length} + ${globex.length}`);
    assert.equal(new Set(acme).size, acme.length);
    assert.equal(new Set(globex).size, globex.length);
    assert.ok(replies.some((r) => r.status === 200 && /maxPerHour \(12\)/.test(JSON.stringify(r.json))));
  });

  /** Stops `h` and starts a sidecar on the same config and state; `between` runs while it is down. */
  async function restart(h: Harness, between?: (stateDir: string) => void): Promise<Harness> {
    await h.server.close();
    between?.(h.config.stateDir);
    nock.cleanAll();
    nockEntra();
    return start({}, h.config);
  }

  for (const rotated of [false, true]) {
    it(`a restart${rotated ? ' after audit.log was rotated' : ''} keeps the caps and the per-machine dedupe`, async () => {
      const h1 = await start({ ...enabled, maxPerHourPerConnector: 2 });
      await post(h1, [alert(1), alert(2)]);
      assert.equal(h1.acme.posts.length, 2);
      const h2 = await restart(h1, (dir) => rotated && renameSync(join(dir, 'audit.log'), join(dir, 'audit.log.1')));
      const r = await post(h2, [alert(1), alert(3)]);
      assert.equal(r.json.results[0].status, 'duplicate');
      assert.equal(r.json.results[1].status, 'refused');
      assert.equal(r.status, 200);
      assert.equal(h2.acme.posts.length, 0);
    });
  }

  it('state from before the caps file: restored from audit.log once, then kept in the file', async () => {
    const h1 = await start({ ...enabled, maxPerHourPerConnector: 2 });
    await post(h1, [alert(1), alert(2)]);
    const h2 = await restart(h1, (dir) => rmSync(join(dir, 'respond-caps.json')));
    const h3 = await restart(h2, (dir) => rmSync(join(dir, 'audit.log')));
    assert.equal((await post(h3, [alert(3)])).json.results[0].status, 'refused');
    assert.equal(h3.acme.posts.length, 0);
  });

  it('a damaged caps file stops the sidecar from starting rather than starting with empty caps', async () => {
    const config = respondConfig({ auto: enabled });
    writeFileSync(join(config.stateDir, 'respond-caps.json'), '{"v":1,"entries":[');
    const server = new RespondServer({ config, sink: new MemorySink(), logger: createLogger('warn', new PassThrough().resume()) });
    await assert.rejects(server.listen('127.0.0.1:0'), /respond-caps\.json: not valid JSON/);
    await server.close();
  });

  it('an isolation that cannot be recorded in the caps file is not made', async () => {
    const config = respondConfig({ auto: enabled });
    const h = await start(enabled, config);
    mkdirSync(join(config.stateDir, 'respond-caps.json'), { recursive: true });
    const r = await post(h, [alert(1)]);
    assert.equal(r.json.results[0].status, 'error');
    assert.equal(r.json.results[0].code, 'cap_state_unwritable');
    assert.equal(h.acme.posts.length, 0);
  });

  it('dry runs restored after a restart do not stop real isolation once dryRun is turned off', async () => {
    const h1 = await start({ ...enabled, dryRun: true, maxPerHourPerConnector: 1 });
    assert.equal((await post(h1, [alert(1)])).json.results[0].status, 'dry_run');
    await h1.server.close();
    nock.cleanAll();
    nockEntra();
    const live = { ...h1.config, respond: { ...h1.config.respond, auto: { ...h1.config.respond!.auto, dryRun: false } } };
    const h2 = await start({}, live);
    const r = await post(h2, [alert(1)]);
    assert.equal(r.json.results[0].status, 'accepted', 'the dry run neither counts as a containment nor uses the cap');
    assert.equal(h2.acme.posts.length, 1);
  });

  it('a failed exclusion lookup isolates nothing (fail closed) and gives the slot back', async () => {
    const h = await start({ ...enabled, maxPerHourPerConnector: 1 });
    nock.cleanAll();
    nockEntra();
    nock(acmeOrigin).get(`/api/machines/${machineId(1)}`).reply(403, { error: { code: 'Forbidden', message: 'no', target: 't' } });
    const fake = new FakeDefender(acmeOrigin);
    const r = await post(h, [alert(1)]);
    assert.equal(r.json.results[0].status, 'error');
    assert.equal(r.status, 503, 'out_http must not take a failed record as delivered');
    assert.ok(Number(r.headers['retry-after']) > 0);
    assert.match(r.json.results[0].reason, /Machine\.Read\.All/);
    assert.equal(fake.posts.length, 0);
    const next = await post(h, [alert(2)]);
    assert.equal(next.json.results[0].status, 'accepted', 'the cap slot was not used up');
  });
});
