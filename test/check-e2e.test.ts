// `defender-fluent test` against real HTTPS servers on 127.0.0.1 (no nock): one server plays the
// Entra authority (discovery + token) and the Defender API, trusted through caFile. Also run as a
// separate process, to see that it writes its table to stdout and exits on its own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { testCertificate } from './helpers/local-https.js';
import { testCommand } from '../plugin/check/command.js';
import type { CheckOutput } from '../plugin/generated/check-output.js';
import { packageRoot } from '../plugin/paths.js';
import { compileSchema } from '../plugin/schema-check.js';

const tenantId = '7f3c2a10-5b6d-4e8f-9a0b-1c2d3e4f5a6b';
const clientId = '0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5';
const secret = 'e2e~S3cret.value-that-must-not-leak';

function jwt(roles: string[]): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ typ: 'JWT', alg: 'none' })}.${b({ aud: 'https://api.securitycenter.microsoft.com', tid: tenantId, roles })}.c2ln`;
}

describe('defender-fluent test against local HTTPS servers', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let seen: string[];
  let roles: string[];

  before(async () => {
    const pems = await testCertificate();
    dir = mkdtempSync(join(tmpdir(), 'df-check-e2e-'));
    writeFileSync(join(dir, 'ca.pem'), pems.cert);
    server = createServer({ key: pems.key, cert: pems.cert }, (req, res) => {
      const url = new URL(req.url!, base);
      seen.push(`${req.method} ${url.pathname}`);
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const json = (status: number, o: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(o));
        };
        if (url.pathname === `/${tenantId}/v2.0/.well-known/openid-configuration`) {
          return json(200, {
            issuer: `${base}/${tenantId}/v2.0`,
            token_endpoint: `${base}/${tenantId}/oauth2/v2.0/token`,
            authorization_endpoint: `${base}/${tenantId}/oauth2/v2.0/authorize`,
            end_session_endpoint: `${base}/${tenantId}/oauth2/v2.0/logout`,
            jwks_uri: `${base}/${tenantId}/discovery/v2.0/keys`,
          });
        }
        if (url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
          const form = new URLSearchParams(body);
          if (form.get('client_secret') !== secret) {
            return json(401, { error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided.`, error_codes: [7000215] });
          }
          return json(200, { token_type: 'Bearer', expires_in: 3599, access_token: jwt(roles) });
        }
        if (req.headers.authorization !== `Bearer ${jwt(roles)}`) return json(401, { error: { code: 'Unauthorized', message: 'no token', target: 't' } });
        if (url.pathname === '/api/alerts' && url.searchParams.get('$top') === '1') return json(200, { value: [] });
        if (url.pathname === '/api/machines') return json(404, { error: { code: 'ResourceNotFound', message: 'No machines', target: 't2' } });
        return json(404, { error: { code: 'NotFound', message: 'unknown path', target: 't3' } });
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    seen = [];
    roles = ['Alert.Read.All', 'Machine.Read.All'];
  });

  function config(contentTypes: string[]): string {
    const file = join(dir, 'defender.yaml');
    writeFileSync(
      file,
      `stateDir: ./state
connectors:
  - name: lab
    tenant: acme
    clientId: ${clientId}
    directoryId: ${tenantId}
    clientSecret: \${env:LAB_SECRET}
    apiEndpoint: ${base}
    authorityHost: ${base}
    allowCustomEndpoint: true
    caFile: ./ca.pem
    contentTypes: ${JSON.stringify(contentTypes)}
`,
    );
    return file;
  }

  it('passes with MSAL discovery, a real token and real API calls; the JSON matches the schema', async () => {
    const file = config(['alerts', 'host']);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const code = await testCommand({ config: file, json: true, out, env: { LAB_SECRET: secret } });
    const json = JSON.parse(text) as CheckOutput;
    const validate = compileSchema<CheckOutput>('check-output.schema.json');
    assert.ok(validate(json), JSON.stringify(validate.errors));
    assert.equal(code, 0, text);
    assert.deepEqual(
      json.connectors[0]!.checks.map((c) => `${c.id}:${c.result}`),
      ['config:warn', 'lock:pass', 'token:pass', 'permissions:pass', 'api:alerts:pass', 'api:host:pass'],
    );
    assert.match(json.connectors[0]!.checks[0]!.problems![0]!.message, /custom host 127\.0\.0\.1 in use/);
    assert.ok(seen.includes(`GET /${tenantId}/v2.0/.well-known/openid-configuration`), 'MSAL discovered the custom authority');
    assert.ok(seen.includes('GET /api/alerts') && seen.includes('GET /api/machines'));
    assert.equal(seen.filter((s) => s.startsWith('GET /api/')).length, 2, 'one call per content type');
    assert.ok(!text.includes(secret));
  });

  it('as a separate process: table on stdout, exit code 0 / 1, and the process ends by itself', async () => {
    const file = config(['alerts']);
    const script = `const { testCommand } = await import(${JSON.stringify(join(packageRoot, 'plugin/check/command.ts'))}); process.exitCode = await testCommand({ config: process.argv[1] });`;
    const run = (secretValue: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], {
        cwd: packageRoot,
        env: { ...process.env, LAB_SECRET: secretValue },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
    // keep-alive sockets to the API must not keep the process running after a pass
    const ok = await run(secret);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /connector lab \(https:\/\/127\.0\.0\.1:\d+\): PASSED/);
    assert.ok(!ok.stdout.includes(secret));
    const bad = await run('wrong-secret-value');
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /token +FAIL +Entra rejected the client secret \(AADSTS7000215/);
    assert.ok(!bad.stdout.includes('wrong-secret-value'));
  });
});
