// The emulator through real HTTPS (node-fetch + an agent trusting its certificate) and real MSAL
// tokens: Entra, alerts, machines, vulnerability exports, machine actions, determinism.
import assert from 'node:assert/strict';
import type https from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { call, msalFor, msalToken, trustingAgent } from '../plugin/emulate/testing.js';

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
const START = Date.parse('2026-03-02T10:00:00Z');

describe('emulator: Entra token endpoint with @azure/msal-node', () => {
  let emu: Emulator;
  let agent: https.Agent;
  before(async () => {
    emu = await startEmulator({ seed: 3, alerts: 5, machines: 2, tokenLifetimeSeconds: 600, startTime: START, freezeClock: true });
    agent = trustingAgent(emu);
  });
  after(() => emu.close());

  it('serves a self-signed certificate for 127.0.0.1 and localhost, written to caFile', () => {
    assert.ok(existsSync(emu.caFile));
    const x = new X509Certificate(readFileSync(emu.caFile));
    assert.match(x.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(x.subjectAltName ?? '', /DNS:localhost/);
    assert.equal(emu.url, `https://127.0.0.1:${emu.port}`);
  });

  it('keeps its certificate in stateDir across restarts; without one, uses a private folder removed on close', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join, dirname } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'emu-state-'));
    try {
      const a = await startEmulator({ stateDir: dir, alerts: 0, machines: 0 });
      await a.close();
      const b = await startEmulator({ stateDir: dir, alerts: 0, machines: 0 });
      await b.close();
      assert.equal(a.caFile, join(dir, 'emulator-cert.pem'));
      assert.equal(a.caPem, b.caPem);
      assert.ok(existsSync(a.caFile), 'a given stateDir is kept');
      const c = await startEmulator({ alerts: 0, machines: 0 });
      assert.notEqual(c.caPem, a.caPem);
      await c.close();
      assert.equal(existsSync(dirname(c.caFile)), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('issues a token to a ConfidentialClientApplication (knownAuthorities + custom networkClient)', async () => {
    const token = await msalToken(msalFor(emu, agent));
    const c = claimsOf(token);
    assert.equal(c.aud, 'https://api.securitycenter.microsoft.com');
    assert.equal(c.tid, emu.tenantId);
    assert.deepEqual(c.roles, ['Alert.Read.All', 'Machine.Read.All', 'Vulnerability.Read.All', 'Machine.Isolate', 'Machine.Scan', 'Machine.StopAndQuarantine', 'Machine.RestrictExecution', 'Machine.CollectForensics', 'Alert.ReadWrite.All', 'Machine.ReadWrite.All', 'Ti.ReadWrite']);
    assert.equal((c.exp as number) - (c.iat as number), 600);
    const paths = emu.served.requests.filter((r) => r.api === 'token').map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(paths, [`GET /${emu.tenantId}/v2.0/.well-known/openid-configuration`, `POST /${emu.tenantId}/oauth2/v2.0/token`]);
    const r = await call(emu, agent, token, '/api/alerts?$top=1');
    assert.equal(r.status, 200);
  });

  it('refuses a wrong client secret with AADSTS7000215 (MSAL ServerError invalid_client)', async () => {
    await assert.rejects(msalToken(msalFor(emu, agent, { clientSecret: 'not-the-secret' })), (e: { errorCode?: string; errorMessage?: string }) => {
      assert.equal(e.errorCode, 'invalid_client');
      assert.match(e.errorMessage ?? '', /AADSTS7000215/);
      return true;
    });
    assert.ok(!emu.served.requests.some((r) => JSON.stringify(r).includes('not-the-secret')));
  });

  it('answers an unknown tenant with AADSTS90002 (MSAL reports endpoints_resolution_error)', async () => {
    const other = '00000000-0000-4000-8000-000000000000';
    await assert.rejects(msalToken(msalFor(emu, agent, { authority: `${emu.authorityUrl}/${other}` })), (e: { errorCode?: string }) => {
      assert.equal(e.errorCode, 'endpoints_resolution_error');
      return true;
    });
    const meta = await call(emu, agent, null, `/${other}/v2.0/.well-known/openid-configuration`);
    assert.equal(meta.status, 400);
    assert.equal(meta.json().error, 'invalid_tenant');
    assert.deepEqual(meta.json().error_codes, [90002]);
  });

  it('refuses an unknown client id and a scope other than /.default', async () => {
    await assert.rejects(msalToken(msalFor(emu, agent, { clientId: '11111111-1111-4111-8111-111111111111' })), /AADSTS700016/);
    const bad = await import('node-fetch').then(({ default: fetch }) =>
      fetch(`${emu.url}/${emu.tenantId}/oauth2/v2.0/token`, {
        method: 'POST',
        agent,
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret, scope: 'https://graph.microsoft.com/User.Read' }),
      }),
    );
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_scope');
  });

  it('raw token endpoint: unknown tenant AADSTS90002, v1 endpoint with resource=, client_secret_basic', async () => {
    const { default: fetch } = await import('node-fetch');
    const form = { grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret, scope: 'https://api.securitycenter.microsoft.com/.default' };
    const unknown = await fetch(`${emu.url}/00000000-0000-4000-8000-000000000000/oauth2/v2.0/token`, { method: 'POST', agent, body: new URLSearchParams(form) });
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { error_description: string }).error_description, /^AADSTS90002: /);
    const v1 = await fetch(`${emu.url}/${emu.tenantId}/oauth2/token`, { method: 'POST', agent, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret, resource: 'https://api.securitycenter.microsoft.com' }) });
    const v1Body = (await v1.json()) as { access_token: string; expires_in: string };
    assert.equal(v1.status, 200);
    assert.equal(typeof v1Body.expires_in, 'string', 'v1 answers numbers as strings');
    assert.equal((await call(emu, agent, v1Body.access_token, '/api/machines')).status, 200);
    const basic = Buffer.from(`${emu.clientId}:${emu.clientSecret}`).toString('base64');
    const viaBasic = await fetch(`${emu.url}/${emu.tenantId}/oauth2/v2.0/token`, { method: 'POST', agent, headers: { Authorization: `Basic ${basic}` }, body: new URLSearchParams({ grant_type: 'client_credentials', scope: form.scope }) });
    assert.equal(viaBasic.status, 200);
  });

  it('401s without a token, with a forged one, and once the token expired; a fresh token works', async () => {
    const app = msalFor(emu, agent);
    const token = await msalToken(app);
    assert.equal((await call(emu, agent, null, '/api/alerts')).status, 401);
    const [h, p] = token.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...claimsOf(token), exp: 9999999999 })).toString('base64url');
    const forged = await call(emu, agent, `${h}.${forgedPayload}.${token.split('.')[2]}`, '/api/alerts');
    assert.equal(forged.status, 401);
    assert.equal(forged.json().error.code, 'Unauthorized');
    assert.match(forged.json().error.target, /^[0-9a-f-]{36}$/);
    assert.ok(p);
    emu.advanceTime(601_000);
    const expired = await call(emu, agent, token, '/api/alerts');
    assert.equal(expired.status, 401);
    assert.match(expired.json().error.message, /expired/);
    const fresh = await msalToken(app, true);
    assert.equal((await call(emu, agent, fresh, '/api/alerts?$top=1')).status, 200);
  });

  it('403s when the token lacks the role an API needs', async () => {
    const limited = await startEmulator({ seed: 3, alerts: 1, machines: 1, roles: ['Machine.Read.All'] });
    try {
      const a = trustingAgent(limited);
      const token = await msalToken(msalFor(limited, a));
      assert.equal((await call(limited, a, token, '/api/machines')).status, 200);
      const r = await call(limited, a, token, '/api/alerts');
      assert.equal(r.status, 403);
      assert.equal(r.json().error.code, 'Forbidden');
      const iso = await call(limited, a, token, `/api/machines/${limited.machineIds()[0]}/isolate`, { method: 'POST', body: { Comment: 'x', IsolationType: 'Full' } });
      assert.equal(iso.status, 403);
    } finally {
      await limited.close();
    }
  });
});

interface Alert {
  id: string;
  lastUpdateTime: string;
  status: string;
  computerDnsName: string;
  relatedUser: { userName: string } | null;
  evidence: Array<{ entityType: string }>;
  mitreTechniques: string[];
  machineId: string;
}

describe('emulator: /api/alerts', () => {
  let emu: Emulator;
  let agent: https.Agent;
  let token: string;
  let all: Alert[];
  before(async () => {
    emu = await startEmulator({ seed: 11, alerts: 300, machines: 40, startTime: START, freezeClock: true, rateLimits: false });
    agent = trustingAgent(emu);
    token = await msalToken(msalFor(emu, agent));
    all = (await call(emu, agent, token, '/api/alerts?$expand=evidence')).json().value;
  });
  after(() => emu.close());
  const get = (path: string) => call(emu, agent, token, path);

  it('lists every alert, shaped like the fixtures, in an order that is not by lastUpdateTime', () => {
    assert.equal(all.length, 300);
    assert.equal(new Set(all.map((a) => a.id)).size, 300);
    const ids = all.map((a) => a.id);
    assert.deepEqual(ids, [...ids].sort(), 'stable order (by id)');
    const times = all.map((a) => Date.parse(a.lastUpdateTime));
    assert.ok(times.some((t, i) => i > 0 && t < times[i - 1]!), 'not sorted by lastUpdateTime');
    for (const a of all) {
      assert.match(a.id, /^da\d{18}_-?\d+$/);
      assert.match(a.lastUpdateTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/);
      assert.match(a.machineId, /^[0-9a-f]{40}$/);
      assert.ok(['New', 'InProgress', 'Resolved'].includes(a.status));
      for (const e of a.evidence) assert.ok(['User', 'Process', 'File', 'Ip', 'Url', 'Registry'].includes(e.entityType), e.entityType);
      assert.ok(a.evidence.length <= 5);
    }
  });

  it('has ties on lastUpdateTime, non-ASCII host and user names, empty and full evidence, MITRE techniques', () => {
    assert.ok(new Set(all.map((a) => a.lastUpdateTime)).size < all.length - 20, 'many alerts share a lastUpdateTime');
    assert.ok(all.some((a) => /[^\x00-\x7f]/.test(a.computerDnsName)));
    assert.ok(all.some((a) => a.relatedUser && /[^\x00-\x7f]/.test(a.relatedUser.userName)));
    assert.ok(all.some((a) => a.evidence.length === 0));
    assert.ok(all.some((a) => a.evidence.length >= 3));
    assert.ok(all.some((a) => a.mitreTechniques.length > 0));
  });

  it('returns evidence only with $expand=evidence', async () => {
    const plain: Alert[] = (await get('/api/alerts')).json().value;
    assert.equal(plain.length, all.length);
    assert.ok(plain.every((a) => Array.isArray(a.evidence) && a.evidence.length === 0));
    const bad = await get('/api/alerts?$expand=machine');
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.code, 'ODataError');
  });

  it('pages with $top and $skip: every alert exactly once, no nextLink when $top is given', async () => {
    const seen: string[] = [];
    for (let skip = 0; ; skip += 70) {
      const page = (await get(`/api/alerts?$top=70&$skip=${skip}`)).json();
      assert.equal(page['@odata.nextLink'], undefined);
      seen.push(...page.value.map((a: Alert) => a.id));
      if (page.value.length < 70) break;
    }
    assert.deepEqual(seen, all.map((a) => a.id));
  });

  it('filters lastUpdateTime with ge / gt / lt / le / and, exactly at a tie', async () => {
    const counts = new Map<string, number>();
    for (const a of all) counts.set(a.lastUpdateTime, (counts.get(a.lastUpdateTime) ?? 0) + 1);
    const tie = [...counts].find(([, n]) => n >= 2)![0];
    const t = Date.parse(tie);
    const expect = (pred: (x: number) => boolean) => all.filter((a) => pred(Date.parse(a.lastUpdateTime))).map((a) => a.id);
    const ids = async (filter: string) => ((await get(`/api/alerts?$filter=${encodeURIComponent(filter)}`)).json().value as Alert[]).map((a) => a.id);
    assert.deepEqual(await ids(`lastUpdateTime ge ${tie}`), expect((x) => x >= t));
    assert.deepEqual(await ids(`lastUpdateTime gt ${tie}`), expect((x) => x > t));
    assert.deepEqual(await ids(`lastUpdateTime lt ${tie}`), expect((x) => x < t));
    assert.deepEqual(await ids(`lastUpdateTime le ${tie}`), expect((x) => x <= t));
    assert.ok((await ids(`lastUpdateTime ge ${tie}`)).length - (await ids(`lastUpdateTime gt ${tie}`)).length >= 2);
    const lo = all.map((a) => Date.parse(a.lastUpdateTime)).sort((a, b) => a - b)[50]!;
    const hi = lo + 20 * 60_000;
    const window = `lastUpdateTime ge ${new Date(lo).toISOString()} and lastUpdateTime lt ${new Date(hi).toISOString()}`;
    assert.deepEqual(await ids(window), expect((x) => x >= lo && x < hi));
    // Seven fraction digits (as .NET prints them) compare exactly: 1 tick after t excludes t for ge.
    const sevenDigits = `${new Date(t).toISOString().slice(0, 23)}0001Z`;
    assert.deepEqual(await ids(`lastUpdateTime ge ${sevenDigits}`), expect((x) => x > t));
    // '+' for spaces, as form-encoded clients send it
    const plus = await get(`/api/alerts?$filter=lastUpdateTime+ge+${tie}`);
    assert.equal(plus.json().value.length, expect((x) => x >= t).length);
  });

  it('rejects bad OData with 400 ODataError: quoted dates, unknown fields, or, $top > 10000', async () => {
    for (const q of [`$filter=lastUpdateTime ge '2026-01-01T00:00:00Z'`, '$filter=colour eq 1', '$filter=lastUpdateTime ge 2026-01-01T00:00:00Z or status eq \'New\'', '$filter=lastUpdateTime ge yesterday', '$top=10001', '$top=-1', '$skip=x']) {
      const r = await get(`/api/alerts?${q.replace(/ /g, '%20')}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.json().error.code, 'ODataError', q);
      assert.ok(r.json().error.message.length > 0);
    }
    assert.equal((await get('/api/alerts?$top=10000')).status, 200);
  });

  it('GET /api/alerts/{id} and 404 for an unknown alert', async () => {
    const one = await get(`/api/alerts/${all[7]!.id}?$expand=evidence`);
    assert.equal(one.status, 200);
    assert.equal(one.json().id, all[7]!.id);
    const missing = await get('/api/alerts/da000000000000000000_1');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().error.code, 'ResourceNotFound');
  });

  it('new and changed alerts appear with a later lastUpdateTime; served records every version', async () => {
    const before = Math.max(...all.map((a) => Date.parse(a.lastUpdateTime)));
    emu.advanceTime(60_000);
    const added = emu.addAlerts(3);
    assert.equal(new Set(added.map((a) => a.lastUpdateTime)).size, 1, 'added together, stamped together');
    // follow one alert through its life: New → InProgress → Resolved
    const target = all.find((a) => a.status === 'New')!;
    const states: string[] = [];
    for (let i = 0; i < 300 && !states.includes('Resolved'); i++) {
      emu.advanceTime(1000);
      emu.updateAlerts(25);
      const now: Alert = (await get(`/api/alerts/${target.id}`)).json();
      if (now.status !== 'New' && states.at(-1) !== now.status) states.push(now.status);
    }
    assert.deepEqual(states, ['InProgress', 'Resolved'], 'each change moves the status forward');
    const since = new Date(before).toISOString();
    const fresh: Alert[] = (await get(`/api/alerts?$filter=lastUpdateTime gt ${since}`)).json().value;
    for (const a of added) assert.ok(fresh.some((f) => f.id === a.id), 'a new alert is seen after the watermark');
    const current = new Map(emu.alertVersions().map((v) => [v.id, v.lastUpdateTime]));
    for (const f of fresh) assert.equal(current.get(f.id), f.lastUpdateTime);
    const versions = emu.served.alertVersions.get(target.id)!;
    assert.ok(versions.has(target.lastUpdateTime), 'first version recorded');
    assert.ok(versions.size >= 2, 'later versions recorded too');
    assert.ok(emu.served.alertRecords >= emu.served.alertVersionCount);
  });
});

describe('emulator: live updates', () => {
  it('--updates-per-minute keeps alerts arriving and changing while it runs', async function () {
    this.timeout(15_000);
    const emu = await startEmulator({ seed: 2, alerts: 50, machines: 5, updatesPerMinute: 6000 });
    try {
      const before = new Map(emu.alertVersions().map((v) => [v.id, v.lastUpdateTime]));
      // wait for the ticker (condition, not a timing assertion)
      let after = emu.alertVersions();
      for (let i = 0; i < 100 && (after.length === before.size || after.every((v) => before.get(v.id) === v.lastUpdateTime || !before.has(v.id))); i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = emu.alertVersions();
      }
      assert.ok(after.length > before.size, 'new alerts arrived');
      assert.ok(after.some((v) => before.has(v.id) && before.get(v.id) !== v.lastUpdateTime), 'existing alerts changed');
      for (const v of after) if (before.has(v.id)) assert.ok(Date.parse(v.lastUpdateTime) >= Date.parse(before.get(v.id)!), 'lastUpdateTime never goes back');
    } finally {
      await emu.close();
    }
  });

  it('late arrival: new versions may carry a lastUpdateTime up to lateArrivalMs in the past', async () => {
    const emu = await startEmulator({ seed: 2, alerts: 5, machines: 5, startTime: START, freezeClock: true, lateArrivalMs: 600_000 });
    try {
      emu.advanceTime(3600_000);
      const now = emu.now();
      const added = emu.addAlerts(40);
      const lags = added.map((a) => now - Date.parse(a.lastUpdateTime));
      assert.ok(lags.every((l) => l >= 0 && l <= 600_000));
      assert.ok(lags.some((l) => l > 60_000), 'some versions arrive late');
    } finally {
      await emu.close();
    }
  });
});

describe('emulator: /api/machines', () => {
  let emu: Emulator;
  let agent: https.Agent;
  let token: string;
  before(async () => {
    emu = await startEmulator({ seed: 5, alerts: 10, machines: 25, startTime: START, rateLimits: false });
    agent = trustingAgent(emu);
    token = await msalToken(msalFor(emu, agent));
  });
  after(() => emu.close());

  it('lists machines with ipAddresses, pages with $top/$skip, filters lastSeen, gets one by id', async () => {
    const all = (await call(emu, agent, token, '/api/machines')).json().value as Array<Record<string, any>>;
    assert.equal(all.length, 25);
    assert.deepEqual(all.map((m) => m.id), emu.machineIds());
    for (const m of all) {
      assert.ok(m.ipAddresses.length >= 1);
      assert.match(m.lastSeen, /Z$/);
    }
    assert.ok(all.some((m) => m.aadDeviceId === null), 'some machines are not AAD joined');
    assert.ok(all.some((m) => /[^\x00-\x7f]/.test(m.computerDnsName)));
    const p2 = (await call(emu, agent, token, '/api/machines?$top=10&$skip=10')).json().value;
    assert.deepEqual(p2.map((m: { id: string }) => m.id), all.slice(10, 20).map((m) => m.id));
    const median = all.map((m) => m.lastSeen as string).sort()[12]!;
    const recent = (await call(emu, agent, token, `/api/machines?$filter=lastSeen gt ${median}`)).json().value;
    assert.deepEqual(recent.map((m: { id: string }) => m.id).sort(), all.filter((m) => Date.parse(m.lastSeen) > Date.parse(median)).map((m) => m.id).sort());
    const one = await call(emu, agent, token, `/api/machines/${all[3]!.id}`);
    assert.equal(one.json().computerDnsName, all[3]!.computerDnsName);
    const missing = await call(emu, agent, token, '/api/machines/0000000000000000000000000000000000000000');
    assert.equal(missing.status, 404);
    assert.equal(missing.json().error.code, 'ResourceNotFound');
    assert.equal(emu.served.machines.size, 25);
  });

  it('answers 404 ResourceNotFound when the tenant has no machines', async () => {
    const empty = await startEmulator({ seed: 5, alerts: 3, machines: 0 });
    try {
      const a = trustingAgent(empty);
      const t = await msalToken(msalFor(empty, a));
      const r = await call(empty, a, t, '/api/machines');
      assert.equal(r.status, 404);
      assert.equal(r.json().error.code, 'ResourceNotFound');
      // alerts still name a machine
      assert.match((await call(empty, a, t, '/api/alerts')).json().value[0].machineId, /^[0-9a-f]{40}$/);
    } finally {
      await empty.close();
    }
  });
});

describe('emulator: vulnerability export APIs', () => {
  let emu: Emulator;
  let agent: https.Agent;
  let token: string;
  before(async () => {
    emu = await startEmulator({ seed: 9, alerts: 1, machines: 7, vulnerabilities: 25, vulnerabilityChangesPerBatch: 4, startTime: START, rateLimits: false });
    agent = trustingAgent(emu);
    token = await msalToken(msalFor(emu, agent));
  });
  after(() => emu.close());

  it('pages the full snapshot through @odata.nextLink with $skiptoken; ~1 KB records with export timestamps', async () => {
    const ids: string[] = [];
    let url: string | undefined = '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=10';
    let pages = 0;
    while (url) {
      const r = await call(emu, agent, token, url);
      assert.equal(r.status, 200);
      const body = r.json();
      pages++;
      for (const v of body.value) {
        ids.push(v.id);
        assert.match(v.firstSeenTimestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        assert.match(v.lastSeenTimestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        assert.ok(emu.machineIds().includes(v.deviceId));
        const size = Buffer.byteLength(JSON.stringify(v));
        assert.ok(size > 600 && size < 1600, `record size ${size}`);
      }
      url = body['@odata.nextLink'];
      if (url) assert.match(url, /\$skiptoken=/);
    }
    assert.equal(pages, 3);
    assert.equal(ids.length, 25);
    assert.equal(new Set(ids).size, 25);
    assert.deepEqual([...emu.served.vulnerabilityIds!].sort(), [...ids].sort());
  });

  it('$top returns one page without nextLink; pageSize over 200 000 is a 400', async () => {
    const top = (await call(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine?$top=5')).json();
    assert.equal(top.value.length, 5);
    assert.equal(top['@odata.nextLink'], undefined);
    const big = await call(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=200001');
    assert.equal(big.status, 400);
    assert.ok(big.json().error.code);
  });

  it('delta: 400 without sinceTime or older than 14 days; New/Fixed/Updated records after sinceTime, paged', async () => {
    const missing = await call(emu, agent, token, '/api/machines/SoftwareVulnerabilityChangesByMachine');
    assert.equal(missing.status, 400);
    const old = new Date(emu.now() - 15 * 24 * 3600_000).toISOString();
    assert.equal((await call(emu, agent, token, `/api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime=${old}`)).status, 400);
    const since = emu.now() - 2 * 24 * 3600_000;
    let url: string | undefined = `/api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime=${new Date(since).toISOString()}&pageSize=7`;
    const records: Array<Record<string, string>> = [];
    while (url) {
      const body = (await call(emu, agent, token, url)).json();
      records.push(...body.value);
      url = body['@odata.nextLink'];
    }
    // 2 days = 8 six-hour batches (boundaries after sinceTime, up to now) × 4 changes
    assert.equal(records.length, 8 * 4);
    for (const r of records) {
      assert.ok(['New', 'Fixed', 'Updated'].includes(r.status!));
      assert.match(r.eventTimestamp!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.0000000$/);
      assert.ok(Date.parse(`${r.eventTimestamp!.slice(0, 19).replace(' ', 'T')}Z`) > since);
    }
    assert.equal(emu.served.vulnerabilityChangeRecords, 32);
  });

  it('delta sinceTime is inclusive: passing back the last eventTimestamp returns that batch again', async () => {
    const frozen = await startEmulator({ seed: 9, alerts: 0, machines: 3, vulnerabilities: 10, vulnerabilityChangesPerBatch: 2, startTime: '2026-03-02T13:00:00Z', freezeClock: true });
    try {
      const a = trustingAgent(frozen);
      const t = await msalToken(msalFor(frozen, a));
      const get = async (since: string) => (await call(frozen, a, t, `/api/machines/SoftwareVulnerabilityChangesByMachine?sinceTime=${since}`)).json().value as Array<{ eventTimestamp: string }>;
      // batches at 2026-03-02 06:00 and 12:00 are at or after 06:00; 00:00 is not
      assert.deepEqual([...new Set((await get('2026-03-02T06:00:00Z')).map((r) => r.eventTimestamp))], ['2026-03-02 06:00:00.0000000', '2026-03-02 12:00:00.0000000']);
      assert.deepEqual([...new Set((await get('2026-03-02T06:00:00.001Z')).map((r) => r.eventTimestamp))], ['2026-03-02 12:00:00.0000000']);
    } finally {
      await frozen.close();
    }
  });

  it('export page links can expire (exportLinkTtlMs): the next page is a 400 and a fresh export works', async () => {
    const frozen = await startEmulator({ seed: 9, alerts: 0, machines: 3, vulnerabilities: 10, startTime: START, freezeClock: true, exportLinkTtlMs: 60_000 });
    try {
      const a = trustingAgent(frozen);
      const t = await msalToken(msalFor(frozen, a));
      const first = (await call(frozen, a, t, '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=4')).json();
      frozen.advanceTime(30_000);
      const second = await call(frozen, a, t, first['@odata.nextLink']);
      assert.equal(second.status, 200);
      frozen.advanceTime(31_000);
      const third = await call(frozen, a, t, second.json()['@odata.nextLink']);
      assert.equal(third.status, 400);
      assert.match(third.json().error.message, /expired/);
      assert.equal((await call(frozen, a, t, '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=4')).status, 200);
    } finally {
      await frozen.close();
    }
  });

  it('streams a large page in chunks (no Content-Length)', async () => {
    const big = await startEmulator({ seed: 9, alerts: 0, machines: 50, vulnerabilities: 3000, rateLimits: false });
    try {
      const a = trustingAgent(big);
      const t = await msalToken(msalFor(big, a));
      const { default: fetch } = await import('node-fetch');
      const res = await fetch(`${big.url}/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=3000`, { agent: a, headers: { Authorization: `Bearer ${t}` } });
      assert.equal(res.headers.get('content-length'), null);
      assert.equal(res.headers.get('transfer-encoding'), 'chunked');
      let chunks = 0;
      let text = '';
      for await (const c of res.body!) {
        chunks++;
        text += c.toString();
      }
      assert.ok(chunks > 1);
      assert.equal(JSON.parse(text).value.length, 3000);
    } finally {
      await big.close();
    }
  });
});

describe('emulator: isolate / unisolate / machine actions', () => {
  let emu: Emulator;
  let agent: https.Agent;
  let token: string;
  let machine: string;
  before(async () => {
    emu = await startEmulator({ seed: 21, alerts: 1, machines: 4, startTime: START, freezeClock: true, actionPendingMs: 2000, actionInProgressMs: 3000, rateLimits: false });
    agent = trustingAgent(emu);
    token = await msalToken(msalFor(emu, agent));
    machine = emu.machineIds()[0]!;
  });
  after(() => emu.close());
  const post = (path: string, body: unknown) => call(emu, agent, token, path, { method: 'POST', body });

  it('isolate: 201 Pending → InProgress → Succeeded; a repeat while pending is 400 ActiveRequestAlreadyExists', async () => {
    const r = await post(`/api/machines/${machine}/isolate`, { Comment: 'contain: alert da1', IsolationType: 'Full' });
    assert.equal(r.status, 201);
    const action = r.json();
    assert.equal(action.type, 'Isolate');
    assert.equal(action.status, 'Pending');
    assert.equal(action.scope, 'Full');
    assert.equal(action.machineId, machine);
    assert.equal(action.requestor, emu.clientId);
    assert.equal(action.requestorComment, 'contain: alert da1');
    const again = await post(`/api/machines/${machine}/isolate`, { Comment: 'again', IsolationType: 'Full' });
    assert.equal(again.status, 400);
    assert.equal(again.json().error.code, 'ActiveRequestAlreadyExists');
    assert.equal(again.json().error.message, 'Action is already in progress');
    const un = await post(`/api/machines/${machine}/unisolate`, { Comment: 'release' });
    assert.equal(un.status, 400, 'unisolate conflicts with a pending isolate too');
    const pending = await call(emu, agent, token, `/api/machineactions?$filter=machineId eq '${machine}' and status eq 'Pending'`);
    assert.deepEqual(pending.json().value.map((a: { id: string }) => a.id), [action.id]);
    emu.advanceTime(2000);
    assert.equal((await call(emu, agent, token, `/api/machineactions/${action.id}`)).json().status, 'InProgress');
    assert.equal(emu.isIsolated(machine), false);
    emu.advanceTime(3000);
    const done = (await call(emu, agent, token, `/api/machineactions/${action.id}`)).json();
    assert.equal(done.status, 'Succeeded');
    assert.notEqual(done.lastUpdateDateTimeUtc, done.creationDateTimeUtc);
    assert.equal(emu.isIsolated(machine), true);
    const unisolate = await post(`/api/machines/${machine}/unisolate`, { Comment: 'release' });
    assert.equal(unisolate.status, 201);
    assert.equal(unisolate.json().type, 'Unisolate');
    emu.advanceTime(5000);
    assert.equal(emu.isIsolated(machine), false);
    const list = (await call(emu, agent, token, `/api/machineactions?$filter=machineId eq '${machine}' and type eq 'Unisolate'`)).json().value;
    assert.equal(list.length, 1);
    assert.equal(list[0].status, 'Succeeded');
  });

  it('a queued Failed outcome leaves the machine as it was', async () => {
    const m = emu.machineIds()[1]!;
    emu.queueActionOutcomes('Failed');
    const r = await post(`/api/machines/${m}/isolate`, { Comment: 'contain', IsolationType: 'Full' });
    emu.advanceTime(5000);
    const done = (await call(emu, agent, token, `/api/machineactions/${r.json().id}`)).json();
    assert.equal(done.status, 'Failed');
    assert.equal(emu.isIsolated(m), false);
  });

  it('cancel moves a pending action to Cancelled; cancelling a finished one is a 400', async () => {
    const m = emu.machineIds()[2]!;
    const r = await post(`/api/machines/${m}/isolate`, { Comment: 'contain', IsolationType: 'Full' });
    const c = await post(`/api/machineactions/${r.json().id}/cancel`, { Comment: 'mistake' });
    assert.equal(c.status, 200);
    assert.equal(c.json().status, 'Cancelled');
    assert.equal((await post(`/api/machines/${m}/isolate`, { Comment: 'now for real', IsolationType: 'Full' })).status, 201, 'cancelled action no longer blocks');
    assert.equal((await post(`/api/machineactions/${r.json().id}/cancel`, { Comment: 'again' })).status, 400);
  });

  it('validates: unknown machine 404, missing or wrongly cased Comment 400, bad IsolationType 400', async () => {
    const m = emu.machineIds()[3]!;
    const unknown = await post('/api/machines/ffffffffffffffffffffffffffffffffffffffff/isolate', { Comment: 'x', IsolationType: 'Full' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, 'ResourceNotFound');
    assert.equal((await post(`/api/machines/${m}/isolate`, { comment: 'lower-case key', IsolationType: 'Full' })).json().error.code, 'MissingRequiredParameter');
    assert.equal((await post(`/api/machines/${m}/isolate`, { Comment: 'x', IsolationType: 'Partial' })).json().error.code, 'InvalidRequestBody');
    const notJson = await call(emu, agent, token, `/api/machines/${m}/isolate`, { method: 'POST', body: 'just a string' });
    assert.equal(notJson.status, 400);
    assert.equal((await call(emu, agent, token, '/api/machineactions/00000000-0000-4000-8000-000000000000')).status, 404);
  });
});

describe('emulator: determinism from the seed', () => {
  const run = async (seed: number) => {
    const emu = await startEmulator({ seed, alerts: 40, machines: 6, vulnerabilities: 12, startTime: START, freezeClock: true });
    try {
      const agent = trustingAgent(emu);
      const token = await msalToken(msalFor(emu, agent));
      const strip = (t: string) => t.replaceAll(emu.url, 'ORIGIN');
      emu.advanceTime(1000);
      emu.tick(10);
      return {
        identity: [emu.tenantId, emu.clientId, emu.clientSecret],
        alerts: strip((await call(emu, agent, token, '/api/alerts?$expand=evidence')).text),
        machines: strip((await call(emu, agent, token, '/api/machines')).text),
        vulns: strip((await call(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine')).text),
      };
    } finally {
      await emu.close();
    }
  };

  it('the same seed gives byte-identical data (after the same updates); another seed differs', async () => {
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    assert.deepEqual(a, b);
    assert.notEqual(a.alerts, c.alerts);
    assert.notEqual(a.vulns, c.vulns);
    assert.notDeepEqual(a.identity, c.identity);
  });
});
