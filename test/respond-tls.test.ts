import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { testCertificate } from './helpers/local-https.js';
import { stringify } from 'yaml';
import { createLogger } from '../plugin/log.js';
import { respondCommand } from '../plugin/respond/command.js';
import { RespondServer } from '../plugin/respond/server.js';
import { MemorySink } from './helpers/memory-sink.js';
import { clientId, tenantId } from './helpers/entra.js';
import { respondConfig, tokens } from './respond-helpers.js';

function get(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, checkServerIdentity: () => undefined, headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('response sidecar: TLS and the command', () => {
  it('serves HTTPS when respond.tls is configured (cert and key files)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-tls-'));
    const pems = await testCertificate();
    writeFileSync(join(dir, 'cert.pem'), pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.key);
    const config = respondConfig({ tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    const server = new RespondServer({ config, sink: new MemorySink(), logger: createLogger('warn', new PassThrough().resume()) });
    const { url } = await server.listen('127.0.0.1:0');
    try {
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal((await get(`${url}/healthz`, pems.cert)).status, 200);
      const status = await get(`${url}/v1/status`, pems.cert, tokens.soar);
      assert.equal(status.status, 200);
      assert.equal((await get(`${url}/v1/status`, pems.cert)).status, 401);
    } finally {
      await server.close();
    }
  });

  it('respondCommand exits 2 when no connector has functions: respond', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-cmd-'));
    const file = join(dir, 'defender.yaml');
    writeFileSync(file, stringify({ stateDir: dir, connectors: [{ name: 'c', tenant: 't', clientId, directoryId: tenantId, clientSecret: 'literal-secret-for-test' }] }));
    const write = process.stderr.write.bind(process.stderr);
    let err = '';
    process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
    try {
      assert.equal(await respondCommand({ config: file }), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(err, /no connector has "respond" in functions/);
  });
});
