// `defender-fluent test` end to end through testCommand: Entra and Defender are nocked (a real
// HTTPS server on 127.0.0.1 for the TLS case). Every scenario runs in both output formats; each
// output is checked for the secret and the --json one against schemas/check-output.schema.json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import nock from 'nock';
import { testCertificate } from './helpers/local-https.js';
import { testCommand } from '../plugin/check/command.js';
import { lockFileFor } from '../plugin/check/lock.js';
import type { CheckItem, CheckOutput } from '../plugin/generated/check-output.js';
import { checkConfigText } from '../plugin/config/load.js';
import { compileSchema, formatProblem } from '../plugin/schema-check.js';
import { useNock } from './helpers/nock.js';

const tenantId = '7f3c2a10-5b6d-4e8f-9a0b-1c2d3e4f5a6b';
const clientId = '0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5';
const secret = 'Qx8~lit3ral-S3cret.value_for~tests';
const envSecret = 'Zz9~env-S3cret.value_from~environment';
const authority = 'https://login.microsoftonline.com';
const api = 'https://api-us.securitycenter.microsoft.com';
const allRoles = ['Alert.Read.All', 'Machine.Read.All', 'Vulnerability.Read.All', 'Machine.Isolate'];
const validateOutput = compileSchema<CheckOutput>('check-output.schema.json');

function jwt(payload: Record<string, unknown>): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ typ: 'JWT', alg: 'none' })}.${b({ aud: 'https://api.securitycenter.microsoft.com', tid: tenantId, appid: clientId, ...payload })}.c2lnbmF0dXJl`;
}

interface Cfg {
  name?: string;
  functions?: string[];
  contentTypes?: string[];
  extra?: string;
  clientSecret?: string;
  apiEndpoint?: string;
}

let dir: string;

function writeConfig(connectors: Cfg[], top = ''): string {
  const body = connectors
    .map(
      (c) => `  - name: ${c.name ?? 'prod'}
    tenant: acme
    clientId: ${clientId}
    directoryId: ${tenantId}
    clientSecret: "${c.clientSecret ?? secret}"
    apiEndpoint: ${c.apiEndpoint ?? 'api-us.securitycenter.microsoft.com'}
    functions: ${JSON.stringify(c.functions ?? ['collect'])}
    contentTypes: ${JSON.stringify(c.contentTypes ?? ['alerts'])}
${c.extra ?? ''}`,
    )
    .join('\n');
  const file = join(dir, 'defender.yaml');
  writeFileSync(file, `stateDir: ./state\n${top}connectors:\n${body}\n`);
  return file;
}

/** MSAL adds ?client-request-id=… to the token URL; login.microsoftonline.com needs no discovery call. */
function tokenEndpoint() {
  return nock(authority).post(`/${tenantId}/oauth2/v2.0/token`).query(true);
}

function tokenOk(token: string, times = 1): void {
  tokenEndpoint().times(times).reply(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
}

function tokenError(aadsts: string, text: string, status = 400, error = 'invalid_client'): void {
  const n = aadsts.replace('AADSTS', '');
  tokenEndpoint()
    .reply(status, {
      error,
      error_description: `${aadsts}: ${text}\r\nTrace ID: 2f1e0d9c-8b7a-4695-a4b3-c2d1e0f9a8b7\r\nCorrelation ID: 6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d\r\nTimestamp: 2025-06-10 08:00:00Z`,
      error_codes: [Number(n)],
      timestamp: '2025-06-10 08:00:00Z',
      trace_id: '2f1e0d9c-8b7a-4695-a4b3-c2d1e0f9a8b7',
      correlation_id: '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d',
    });
}

/** nock 14 only fails the request for an Error instance (a plain object hangs the request). */
function systemError(code: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { code, ...extra });
}

const page = (value: unknown[] = []) => ({ '@odata.context': `${api}/api/$metadata#Collection`, value });
const envelope = (code: string, message: string, target = '43f4cb08-8fac-4b65-9db1-745c2ae65f3a') => ({ error: { code, message, target } });

interface Run {
  code: number;
  text: string;
  json: CheckOutput;
  jsonCode: number;
}

/** Runs the scenario twice (table, then --json), with fresh interceptors each time. */
async function runBoth(file: string, setup: () => void, opts: { connector?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const once = async (json: boolean) => {
    nock.cleanAll();
    setup();
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const code = await testCommand({ config: file, json, out, connector: opts.connector, env: opts.env ?? {} });
    assert.deepEqual(nock.pendingMocks(), [], `every expected call was made (${json ? 'json' : 'table'})`);
    for (const s of [secret, envSecret]) assert.ok(!text.includes(s), `the secret must not appear in the ${json ? '--json' : 'table'} output:\n${text}`);
    return { code, text };
  };
  const table = await once(false);
  const js = await once(true);
  const json = JSON.parse(js.text) as CheckOutput;
  assert.ok(validateOutput(json), `--json output matches its schema: ${JSON.stringify(validateOutput.errors)}`);
  assert.equal(json.exitCode, js.code);
  assert.equal(table.code, js.code, 'both formats give the same exit code');
  return { code: table.code, text: table.text, json, jsonCode: js.code };
}

function check(r: Run, id: CheckItem['id'], connector = 0): CheckItem {
  const c = r.json.connectors[connector]!.checks.find((x) => x.id === id);
  assert.ok(c, `check ${id} present`);
  return c;
}

describe('defender-fluent test (testCommand)', () => {
  useNock();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'df-check-'));
    nock.disableNetConnect();
  });
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every check for a collect + respond connector, says what it does not cover, and clears the red status', async () => {
    const file = writeConfig([{ functions: ['collect', 'respond'], contentTypes: ['alerts', 'host', 'vulnerabilities'] }]);
    const r = await runBoth(file, () => {
      tokenOk(jwt({ roles: allRoles }));
      nock(api).get('/api/alerts').query({ $top: '1' }).reply(200, page([{ id: 'da1' }]));
      nock(api).get('/api/machines').query({ $top: '1' }).reply(200, page([{ id: 'm1' }]));
      nock(api).get('/api/machines/SoftwareVulnerabilitiesByMachine').query({ pageSize: '1' }).reply(200, page([]));
      nock(api).get('/api/machineactions').query({ $top: '1' }).reply(200, page([]));
    });
    assert.equal(r.code, 0);
    assert.equal(r.json.ok, true);
    assert.deepEqual(
      r.json.connectors[0]!.checks.map((c) => [c.id, c.result]),
      [
        ['config', 'warn'], // literal secret in the file
        ['lock', 'pass'],
        ['token', 'pass'],
        ['permissions', 'pass'],
        ['api:alerts', 'pass'],
        ['api:host', 'pass'],
        ['api:vulnerabilities', 'pass'],
        ['api:respond', 'pass'],
      ],
    );
    assert.match(r.text, /connector prod \(https:\/\/api-us\.securitycenter\.microsoft\.com\): PASSED/);
    assert.match(r.text, /authentication and connectivity only/);
    assert.match(r.json.scope, /does not collect/);
    assert.equal(r.json.connectors[0]!.statusCleared, true);
    const status = JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as { connectors: Record<string, { contentTypes: Record<string, { clearedAt?: string }> }> };
    for (const t of ['alerts', 'host', 'vulnerabilities']) assert.ok(status.connectors.prod!.contentTypes[t]!.clearedAt, `${t} cleared`);
    assert.ok(!existsSync(lockFileFor(join(dir, 'state'), 'prod')), 'the lock is released');
  });

  describe('token errors name the key to fix', () => {
    const cases: [string, string, RegExp, string[]][] = [
      ['AADSTS7000215', 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value', /Set clientSecret to the secret's Value/, ['clientSecret']],
      ['AADSTS7000222', 'The provided client secret keys for app are expired.', /Create a new client secret.*clientSecret/, ['clientSecret']],
      ['AADSTS700016', `Application with identifier '${clientId}' was not found in the directory.`, /Set clientId to the "Application \(client\) ID"/, ['clientId', 'directoryId']],
      ['AADSTS90002', `Tenant '${tenantId}' not found.`, /Set directoryId to the "Directory \(tenant\) ID"/, ['directoryId', 'authorityHost']],
    ];
    for (const [aadsts, text, fix, keys] of cases) {
      it(`${aadsts}`, async () => {
        const file = writeConfig([{}]);
        const r = await runBoth(file, () => tokenError(aadsts, text, aadsts === 'AADSTS90002' ? 400 : 401));
        assert.equal(r.code, 1);
        const t = check(r, 'token');
        assert.equal(t.result, 'fail');
        assert.match(t.fix!, fix);
        assert.equal(t.entraError?.aadsts, aadsts);
        assert.deepEqual(t.configKeys, keys.map((k) => `/connectors/0/${k}`));
        assert.equal(check(r, 'permissions').result, 'skip');
        assert.equal(check(r, 'api:alerts').result, 'skip');
        assert.match(r.text, new RegExp(`token +FAIL`));
        assert.match(r.text, new RegExp(aadsts));
      });
    }

    it('redacts the secret when Entra quotes it back', async () => {
      const file = writeConfig([{}]);
      const r = await runBoth(file, () => tokenError('AADSTS7000215', `Invalid client secret provided: '${secret}'.`, 401));
      assert.equal(r.code, 1);
      assert.match(check(r, 'token').entraError!.message!, /\[REDACTED\]/);
    });

    it('DNS failure of the authority → authorityHost', async () => {
      const file = writeConfig([{}]);
      const r = await runBoth(file, () => {
        tokenEndpoint().replyWithError(systemError('ENOTFOUND', 'getaddrinfo ENOTFOUND login.microsoftonline.com', { hostname: 'login.microsoftonline.com' }));
      });
      const t = check(r, 'token');
      assert.equal(t.result, 'fail');
      assert.match(t.detail, /DNS lookup of login\.microsoftonline\.com failed \(ENOTFOUND\)/);
      assert.match(t.fix!, /Check authorityHost/);
      assert.ok(t.configKeys!.includes('/connectors/0/authorityHost'));
    });

    it('a proxy that refuses the connection → proxy', async () => {
      const file = writeConfig([{ extra: '    proxy: http://proxy.corp.example:3128\n' }]);
      const r = await runBoth(file, () => {
        tokenEndpoint().replyWithError(systemError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:3128'));
      });
      const t = check(r, 'token');
      assert.equal(t.result, 'fail');
      assert.match(t.detail, /proxy http:\/\/proxy\.corp\.example:3128 could not be used \(ECONNREFUSED\)/);
      assert.deepEqual(t.configKeys, ['/connectors/0/proxy']);
    });

    it('a timeout → requestTimeoutSeconds, firewall, proxy', async () => {
      const file = writeConfig([{ extra: '    requestTimeoutSeconds: 1\n' }]);
      const r = await runBoth(file, () => {
        tokenEndpoint().delay(3000).reply(200, {});
      });
      const t = check(r, 'token');
      assert.equal(t.result, 'fail');
      assert.equal(t.entraError!.errorClass, 'timeout');
      assert.match(t.detail, /did not answer within requestTimeoutSeconds \(1 s\)/);
      assert.ok(t.configKeys!.includes('/connectors/0/requestTimeoutSeconds'));
    });
  });

  describe('permissions from the token roles', () => {
    it('a token without any roles names every missing permission and makes no data call', async () => {
      const file = writeConfig([{ functions: ['collect', 'respond'], contentTypes: ['alerts', 'host', 'vulnerabilities'] }]);
      const r = await runBoth(file, () => tokenOk(jwt({})));
      assert.equal(r.code, 1);
      const p = check(r, 'permissions');
      assert.equal(p.result, 'fail');
      assert.deepEqual(p.permissions!.missing, ['Alert.Read.All or Alert.ReadWrite.All', 'Machine.Read.All or Machine.ReadWrite.All', 'Vulnerability.Read.All', 'Machine.Isolate']);
      assert.match(p.detail, /no application permissions/);
      assert.match(p.fix!, /Grant admin consent" again/);
      for (const id of ['api:alerts', 'api:host', 'api:vulnerabilities', 'api:respond'] as const) assert.equal(check(r, id).result, 'skip');
      // no Defender interceptor was set: any data call would have failed the probes instead of skipping them
    });

    it('a respond connector missing just Machine.Isolate', async () => {
      const file = writeConfig([{ functions: ['collect', 'respond'], contentTypes: ['alerts', 'host'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: ['Alert.Read.All', 'Machine.ReadWrite.All'] }));
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(200, page());
        nock(api).get('/api/machines').query({ $top: '1' }).reply(200, page());
      });
      assert.equal(r.code, 1);
      const p = check(r, 'permissions');
      assert.equal(p.result, 'fail');
      assert.deepEqual(p.permissions!.missing, ['Machine.Isolate']);
      assert.match(p.detail, /missing Machine\.Isolate \(needed for respond: isolate \/ release\)/);
      assert.match(p.fix!, /admin consent/);
      assert.equal(check(r, 'api:alerts').result, 'pass');
      assert.equal(check(r, 'api:host').result, 'pass');
      assert.equal(check(r, 'api:respond').result, 'skip');
      assert.match(r.text, /permissions +FAIL +missing Machine\.Isolate/);
      assert.equal(r.json.connectors[0]!.statusCleared, undefined, 'a failing test does not clear the status');
    });

    it('a token that is not a JWT is reported, and the API calls decide', async () => {
      const file = writeConfig([{}]);
      const r = await runBoth(file, () => {
        tokenOk('opaque-emulator-token-0123456789');
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(200, page());
      });
      assert.equal(r.code, 0);
      const p = check(r, 'permissions');
      assert.equal(p.result, 'warn');
      assert.match(p.detail, /not a JWT \(expected 3 dot-separated parts/);
    });
  });

  describe('API calls, explained per status', () => {
    it('wrong region: 404 lists the valid hosts', async () => {
      const file = writeConfig([{ contentTypes: ['alerts', 'host'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: allRoles }));
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(404, 'Not Found');
        nock(api).get('/api/machines').query({ $top: '1' }).reply(404, 'Not Found');
      });
      assert.equal(r.code, 1);
      const a = check(r, 'api:alerts');
      assert.equal(a.result, 'fail');
      assert.match(a.fix!, /Is the region right\? Set apiEndpoint/);
      assert.match(a.fix!, /eu\.api\.security\.microsoft\.com/);
      assert.deepEqual(a.configKeys, ['/connectors/0/apiEndpoint']);
      assert.equal(a.request!.status, 404);
      assert.equal(check(r, 'api:host').result, 'fail', 'a bare 404 on machines is the wrong host too');
    });

    it('404 with Defender\'s envelope on /api/machines means no machines: pass', async () => {
      const file = writeConfig([{ contentTypes: ['host'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: ['Machine.Read.All'] }));
        nock(api).get('/api/machines').query({ $top: '1' }).reply(404, envelope('ResourceNotFound', 'No machines found'));
      });
      assert.equal(r.code, 0);
      assert.match(check(r, 'api:host').detail, /reachable and reports no machines/);
    });

    it('429 with Retry-After: the quota recovers, the collector retries; exactly one call', async () => {
      const file = writeConfig([{ contentTypes: ['vulnerabilities'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: ['Vulnerability.Read.All'] }));
        nock(api)
          .get('/api/machines/SoftwareVulnerabilitiesByMachine')
          .query({ pageSize: '1' })
          .reply(429, envelope('TooManyRequests', 'Too many requests.', '5e0b1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4'), { 'Retry-After': '30' });
      });
      assert.equal(r.code, 1);
      const v = check(r, 'api:vulnerabilities');
      assert.equal(v.result, 'fail');
      assert.equal(v.retryAfterSeconds, 30);
      assert.match(v.fix!, /quota recovers in about 30 s, and the collector waits and retries by itself/);
      assert.deepEqual(v.defenderError, { code: 'TooManyRequests', message: 'Too many requests.', target: '5e0b1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4' });
      assert.match(r.text, /correlation id 5e0b1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4/);
      assert.match(r.text, /Retry-After: 30 s/);
    });

    it('403 names the missing role; the server message is quoted with the secret redacted', async () => {
      const file = writeConfig([{ contentTypes: ['alerts'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: ['Alert.Read.All'] }));
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(403, envelope('Forbidden', `Insufficient permission for client_secret=${secret}`, 'aa11bb22-0000-4000-8000-000000000001'));
      });
      const a = check(r, 'api:alerts');
      assert.equal(a.result, 'fail');
      assert.match(a.detail, /lacks the role Alert\.Read\.All or Alert\.ReadWrite\.All/);
      assert.match(a.fix!, /already carries/); // the token had it: consent delay or RBAC
      assert.equal(a.defenderError!.message, 'Insufficient permission for client_secret=[REDACTED]');
      assert.equal(a.defenderError!.target, 'aa11bb22-0000-4000-8000-000000000001');
    });

    it('401: credentials wrong or expired, or not licensed', async () => {
      const file = writeConfig([{ contentTypes: ['alerts'] }]);
      const r = await runBoth(file, () => {
        // the client re-acquires the token once on 401
        tokenOk(jwt({ roles: ['Alert.Read.All'] }), 2);
        nock(api).get('/api/alerts').query({ $top: '1' }).times(2).reply(401, envelope('Unauthorized', 'invalid or expired authorization header', '0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f'));
      });
      const a = check(r, 'api:alerts');
      assert.equal(a.result, 'fail');
      assert.match(a.detail, /credentials are wrong or expired, or the tenant is not licensed/);
      assert.match(a.fix!, /directoryId/);
    });

    it('400: the config value behind the request (apiEndpoint)', async () => {
      const file = writeConfig([{ contentTypes: ['alerts'] }]);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: ['Alert.Read.All'] }));
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(400, envelope('ODataError', 'Invalid OData query'));
      });
      const a = check(r, 'api:alerts');
      assert.equal(a.result, 'fail');
      assert.deepEqual(a.configKeys, ['/connectors/0/apiEndpoint']);
      assert.equal(a.defenderError!.code, 'ODataError');
    });

    it('TLS failure against a real HTTPS server with an untrusted certificate → caFile', async () => {
      const { key, cert } = await testCertificate();
      const server: Server = createServer({ key, cert }, (_req, res) => res.end('{}'));
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      try {
        const port = (server.address() as AddressInfo).port;
        const file = writeConfig([{ apiEndpoint: `https://127.0.0.1:${port}`, extra: '    allowCustomEndpoint: true\n' }]);
        nock.enableNetConnect('127.0.0.1');
        const r = await runBoth(file, () => tokenOk(jwt({ roles: allRoles })));
        const a = check(r, 'api:alerts');
        assert.equal(a.result, 'fail');
        assert.match(a.detail, /TLS handshake with 127\.0\.0\.1 failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\)/);
        assert.ok(a.configKeys!.includes('/connectors/0/caFile'));
      } finally {
        server.close();
      }
    });
  });

  describe('configuration', () => {
    it('an invalid config exits 2 with the same messages as validate and calls nothing', async () => {
      const file = writeConfig([{ extra: '    intervalMinutes: 0\n' }]);
      const r = await runBoth(file, () => undefined);
      assert.equal(r.code, 2);
      const c = check(r, 'config');
      assert.equal(c.result, 'fail');
      assert.equal(c.problems![0]!.pointer, '/connectors/0/intervalMinutes');
      assert.equal(c.problems![0]!.text, `${file}:11: /connectors/0/intervalMinutes: must be >= 1`);
      // the same problems, word for word, as the config loader behind `validate` reports
      const expected = checkConfigText(file, readFileSync(file, 'utf8'), {}).problems.map(formatProblem);
      assert.deepEqual(c.problems!.map((p) => p.text), expected);
      for (const line of expected) assert.ok(r.text.includes(line), `table shows ${line}`);
      assert.equal(check(r, 'token').result, 'skip');
    });

    it('an unknown --connector exits 2 naming the known ones', async () => {
      const file = writeConfig([{ name: 'a' }, { name: 'b' }]);
      const r = await runBoth(file, () => undefined, { connector: 'c' });
      assert.equal(r.code, 2);
      assert.match(r.json.problems[0]!.message, /no connector named "c" \(known: a, b\)/);
    });

    it('--connector tests only that connector; a ${env:} secret is redacted too', async () => {
      const file = writeConfig([{ name: 'a' }, { name: 'b', clientSecret: '${env:B_SECRET}' }]);
      const r = await runBoth(
        file,
        () => {
          tokenEndpoint()
            .reply(401, (_uri, body) => ({ error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided (got ${new URLSearchParams(String(body)).get('client_secret')}).`, error_codes: [7000215] }));
        },
        { connector: 'b', env: { B_SECRET: envSecret } },
      );
      assert.equal(r.code, 1);
      assert.deepEqual(r.json.connectors.map((c) => c.name), ['b']);
      assert.equal(check(r, 'config').result, 'pass', 'a ${env:} secret gives no literal-secret warning');
      assert.match(check(r, 'token').entraError!.message!, /got \[REDACTED\]/);
    });
  });

  describe('one test per connector', () => {
    it('a live lock is reported with its pid', async () => {
      const file = writeConfig([{}]);
      const lock = lockFileFor(join(dir, 'state'), 'prod');
      mkdirSync(join(dir, 'state', 'locks'), { recursive: true });
      writeFileSync(lock, `${process.ppid}\n`); // our parent: certainly alive
      const r = await runBoth(file, () => undefined);
      assert.equal(r.code, 1);
      const l = check(r, 'lock');
      assert.equal(l.result, 'fail');
      assert.equal(l.detail, `another test of connector prod is running (pid ${process.ppid})`);
      assert.equal(check(r, 'token').result, 'skip');
      assert.equal(readFileSync(lock, 'utf8'), `${process.ppid}\n`, 'someone else\'s lock is left alone');
    });

    it('a stale lock (dead pid) is taken over', async () => {
      const file = writeConfig([{}]);
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      const lock = lockFileFor(join(dir, 'state'), 'prod');
      mkdirSync(join(dir, 'state', 'locks'), { recursive: true });
      writeFileSync(lock, `${dead}\n`);
      const r = await runBoth(file, () => {
        tokenOk(jwt({ roles: allRoles }));
        nock(api).get('/api/alerts').query({ $top: '1' }).reply(200, page());
      });
      assert.equal(r.code, 0);
      assert.equal(check(r, 'lock').result, 'pass');
      assert.ok(!existsSync(lock));
    });
  });
});
