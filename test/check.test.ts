// Units of `defender-fluent test`: JWT roles, permission needs, the lock, and the explanation tables.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connector } from '../plugin/config/load.js';
import { documentedDefenderHosts } from '../plugin/config/endpoints.js';
import { DefenderApiError, TokenError } from '../plugin/defender/errors.js';
import { explainApiError, explainedAadsts, explainNetwork, explainTokenError } from '../plugin/check/explain.js';
import { acquireTestLock, lockFileFor } from '../plugin/check/lock.js';
import { describeNeed, missingNeeds, permissionNeeds, readTokenRoles } from '../plugin/check/permissions.js';
import { probesFor, probeUrl } from '../plugin/check/probes.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

const connector = {
  name: 'prod',
  tenant: 'acme',
  clientId: '0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5',
  directoryId: '7f3c2a10-5b6d-4e8f-9a0b-1c2d3e4f5a6b',
  clientSecret: 'not-used-here',
  functions: ['collect'],
  contentTypes: ['alerts', 'host', 'vulnerabilities'],
  apiEndpoint: 'api-us.securitycenter.microsoft.com',
  authorityHost: 'https://login.microsoftonline.com',
  apiBaseUrl: 'https://api-us.securitycenter.microsoft.com',
  authorityUrl: 'https://login.microsoftonline.com',
  requestTimeoutSeconds: 60,
  allowCustomEndpoint: false,
} as unknown as Connector;

describe('check: token roles', () => {
  it('reads roles from a JWT payload without checking the signature', () => {
    const r = readTokenRoles(`${b64({ alg: 'RS256' })}.${b64({ roles: ['Alert.Read.All', 'Machine.Isolate'], tid: 't' })}.bogus-signature`);
    assert.deepEqual(r, { kind: 'jwt', roles: ['Alert.Read.All', 'Machine.Isolate'], hasRolesClaim: true, tid: 't', aud: undefined });
  });

  it('tells a token without a roles claim apart', () => {
    const r = readTokenRoles(`${b64({ alg: 'none' })}.${b64({ tid: 't' })}.x`);
    assert.equal(r.kind, 'jwt');
    assert.equal(r.kind === 'jwt' && r.hasRolesClaim, false);
  });

  it('says why a token is not a JWT', () => {
    assert.deepEqual(readTokenRoles('opaque'), { kind: 'not-jwt', reason: 'expected 3 dot-separated parts (header.payload.signature), got 1' });
    assert.equal(readTokenRoles('a.b!.c').kind, 'not-jwt');
    assert.equal(readTokenRoles(`${b64({})}.${Buffer.from('[1]').toString('base64url')}.c`).kind, 'not-jwt');
  });
});

describe('check: permission needs', () => {
  it('collect needs one read role per content type; respond adds Machine.Isolate and a machine read role', () => {
    const needs = permissionNeeds({ functions: ['collect', 'respond'], contentTypes: ['alerts', 'vulnerabilities'] });
    assert.deepEqual(needs.map(describeNeed), ['Alert.Read.All or Alert.ReadWrite.All', 'Vulnerability.Read.All', 'Machine.Isolate', 'Machine.Read.All or Machine.ReadWrite.All']);
  });

  it('ReadWrite satisfies Read; roles compare case-insensitively', () => {
    const needs = permissionNeeds({ functions: ['collect'], contentTypes: ['alerts', 'host'] });
    assert.deepEqual(missingNeeds(needs, ['alert.readwrite.all', 'Machine.ReadWrite.All']), []);
    assert.deepEqual(missingNeeds(needs, ['Alert.Read.All']).map(describeNeed), ['Machine.Read.All or Machine.ReadWrite.All']);
  });

  it('probes use the smallest page of each API and the export family for vulnerabilities', () => {
    const probes = probesFor({ functions: ['collect', 'respond'], contentTypes: ['alerts', 'host', 'vulnerabilities'] });
    assert.deepEqual(
      probes.map((p) => [p.checkId, probeUrl('https://h', p), p.family]),
      [
        ['api:alerts', 'https://h/api/alerts?$top=1', 'standard'],
        ['api:host', 'https://h/api/machines?$top=1', 'standard'],
        ['api:vulnerabilities', 'https://h/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=1', 'export'],
        ['api:respond', 'https://h/api/machineactions?$top=1', 'standard'],
      ],
    );
    // the machine-actions call also needs the machine read role the host probe owns
    assert.deepEqual(probes[3]!.needs.map(describeNeed), ['Machine.Read.All or Machine.ReadWrite.All', 'Machine.Isolate']);
  });

  it('respond: the response actions some token may call add their permissions (once each)', () => {
    const needs = permissionNeeds({ functions: ['collect', 'respond'], contentTypes: ['alerts'] }, ['contain', 'scan', 'restrict', 'unrestrict', 'indicators']);
    assert.deepEqual(needs.map(describeNeed), ['Alert.Read.All or Alert.ReadWrite.All', 'Machine.Isolate', 'Machine.Read.All or Machine.ReadWrite.All', 'Machine.Scan', 'Machine.RestrictExecution', 'Ti.ReadWrite or Ti.ReadWrite.All']);
    assert.deepEqual(missingNeeds(needs, ['Alert.Read.All', 'Machine.Isolate', 'Machine.Read.All', 'Machine.Scan', 'Ti.ReadWrite.All']).map(describeNeed), ['Machine.RestrictExecution']);
  });

  it('machine actions: a machine read role (the docs list Machine.Read.All and Machine.ReadWrite.All) and one list call', () => {
    const connector: Parameters<typeof permissionNeeds>[0] = { functions: ['collect'], contentTypes: ['machineActions'] };
    assert.deepEqual(permissionNeeds(connector).map(describeNeed), ['Machine.Read.All or Machine.ReadWrite.All']);
    assert.deepEqual(missingNeeds(permissionNeeds(connector), ['Alert.Read.All']).map(describeNeed), ['Machine.Read.All or Machine.ReadWrite.All']);
    assert.deepEqual(
      probesFor(connector).map((p) => [p.checkId, probeUrl('https://h', p)]),
      [['api:machineActions', 'https://h/api/machineactions?$top=1']],
    );
  });
});

describe('check: lock per connector', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'df-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is exclusive while held and removed on release', async () => {
    const a = await acquireTestLock(dir, 'prod');
    assert.ok(a.ok);
    assert.equal(JSON.parse(readFileSync(lockFileFor(dir, 'prod'), 'utf8')).pid, process.pid);
    const b = await acquireTestLock(dir, 'prod');
    assert.deepEqual(b, { ok: false, file: lockFileFor(dir, 'prod'), pid: process.pid, message: `another test of connector prod is running (pid ${process.pid})` });
    const other = await acquireTestLock(dir, 'other');
    assert.ok(other.ok, 'other connectors are independent');
    await a.release();
    assert.ok(!existsSync(lockFileFor(dir, 'prod')));
    assert.ok((await acquireTestLock(dir, 'prod')).ok);
  });

  it('takes over a lock whose pid is dead, or that holds no pid', async () => {
    mkdirSync(join(dir, 'locks'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(lockFileFor(dir, 'a'), `${dead}\n`);
    writeFileSync(lockFileFor(dir, 'b'), '');
    for (const n of ['a', 'b']) {
      const l = await acquireTestLock(dir, n);
      assert.ok(l.ok, n);
      assert.equal(JSON.parse(readFileSync(lockFileFor(dir, n), 'utf8')).pid, process.pid);
    }
  });

  it('release does not remove a lock someone else took over', async () => {
    const a = await acquireTestLock(dir, 'prod');
    assert.ok(a.ok);
    writeFileSync(lockFileFor(dir, 'prod'), `${process.ppid}\n`);
    await a.release();
    assert.ok(existsSync(lockFileFor(dir, 'prod')));
  });
});

describe('check: explanations', () => {
  it('every explained AADSTS code names at least one fix and the required four are there', () => {
    for (const code of ['AADSTS7000215', 'AADSTS7000222', 'AADSTS700016', 'AADSTS90002']) assert.ok(explainedAadsts.includes(code), code);
    for (const code of explainedAadsts) {
      const x = explainTokenError(new TokenError('x', { errorClass: 'auth', aadsts: code }), connector);
      assert.match(x.detail, new RegExp(code));
      assert.ok(x.fix.length > 20);
    }
  });

  it('an unknown AADSTS code points to the lookup page', () => {
    const x = explainTokenError(new TokenError('x', { errorClass: 'auth', aadsts: 'AADSTS123456' }), connector);
    assert.match(x.fix, /login\.microsoftonline\.com\/error\?code=123456/);
  });

  it('network failures: DNS, refused, TLS, timeout, and the proxy when one is in use', () => {
    const err = (code: string, message: string) => Object.assign(new Error(message), { code });
    const target = { url: connector.apiBaseUrl, hostKey: 'apiEndpoint' as const };
    assert.deepEqual(explainNetwork(err('ENOTFOUND', 'getaddrinfo ENOTFOUND api-us.securitycenter.microsoft.com'), 'network', connector, target, {})!.keys, ['apiEndpoint', 'proxy']);
    assert.deepEqual(explainNetwork(err('CERT_HAS_EXPIRED', 'certificate has expired'), 'tls', connector, target, {})!.keys, ['caFile', 'apiEndpoint']);
    assert.match(explainNetwork(new Error('The operation was aborted due to timeout'), 'timeout', connector, target, {})!.detail, /requestTimeoutSeconds \(60 s\)/);
    const viaEnv = explainNetwork(err('ECONNREFUSED', 'connect ECONNREFUSED 10.1.1.1:8080'), 'network', connector, target, { HTTPS_PROXY: 'http://user:pw@proxy:8080' })!;
    assert.deepEqual(viaEnv.keys, ['proxy']);
    assert.match(viaEnv.detail, /proxy http:\/\/proxy:8080 could not be used/);
    assert.ok(!viaEnv.detail.includes('pw'), 'proxy credentials are not shown');
    const bypassed = explainNetwork(err('ECONNREFUSED', 'x'), 'network', connector, target, { HTTPS_PROXY: 'http://proxy:8080', NO_PROXY: '.microsoft.com' })!;
    assert.deepEqual(bypassed.keys, ['proxy', 'apiEndpoint'], 'NO_PROXY covers the host: a direct connection failed');
  });

  it('API errors follow the vendor table, made specific', () => {
    const probe = { label: 'alerts', needs: permissionNeeds({ functions: ['collect'], contentTypes: ['alerts'] }) };
    const e = (status: number, code?: string, retryAfterMs?: number) => new DefenderApiError('x', { errorClass: 'bad_request', status, code, retryAfterMs });
    assert.deepEqual(explainApiError(e(400, 'InvalidInput'), connector, probe).keys, ['apiEndpoint']);
    assert.match(explainApiError(e(401), connector, probe).detail, /not licensed/);
    const f = explainApiError(e(403, 'Forbidden'), connector, { ...probe, granted: [] });
    assert.match(f.detail, /lacks the role Alert\.Read\.All or Alert\.ReadWrite\.All/);
    assert.match(f.fix, /grant admin consent again/);
    assert.match(explainApiError(e(403, 'DisabledFeature'), connector, probe).detail, /not enabled/);
    const nf = explainApiError(e(404), connector, probe);
    for (const h of documentedDefenderHosts) assert.ok(nf.fix.includes(h), h);
    assert.match(explainApiError(e(429, 'TooManyRequests', 12_500), connector, probe).fix, /in about 13 s.*retries by itself/);
    assert.deepEqual(explainApiError(e(407), connector, probe).keys, ['proxy']);
    assert.match(explainApiError(e(503), connector, probe).fix, /correlation id/);
  });
});
