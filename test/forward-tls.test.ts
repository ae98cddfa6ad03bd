import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';
import { ForwardSink } from '../plugin/output/forward.js';
import { TestForwardServer, makeRecords, waitFor } from './forward-helpers.js';

describe('ForwardSink over TLS (FluentServer with a self-signed certificate for 127.0.0.1)', function () {
  this.timeout(30000);
  let dir: string;
  let server: TestForwardServer;
  let serverKey: string;
  const sinks: ForwardSink[] = [];

  before(async () => {
    // A self-signed server certificate that also signs a client certificate (for mutual TLS).
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'fluentd-test' }], {
      keySize: 2048,
      algorithm: 'sha256',
      clientCertificate: { algorithm: 'sha256' },
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
      ],
    });
    serverKey = pems.private;
    dir = mkdtempSync(join(tmpdir(), 'forward-tls-'));
    writeFileSync(join(dir, 'ca.pem'), pems.cert);
    writeFileSync(join(dir, 'client.pem'), pems.clientcert!);
    writeFileSync(join(dir, 'client.key'), pems.clientprivate!);
    server = await new TestForwardServer({
      tlsOptions: { key: pems.private, cert: pems.cert },
      security: { serverHostname: 'fluentd-test', sharedKey: 'sk-tls-0001', authorize: false, userDict: {} },
    }).start();
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close(0)));
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the server against tls.ca (relative to baseDir) and delivers with shared_key', async () => {
    const s = new ForwardSink({ type: 'forward', port: server.port, tls: { ca: 'ca.pem' }, sharedKey: 'sk-tls-0001' }, { baseDir: dir });
    sinks.push(s);
    const before = server.received.length;
    await s.deliver(makeRecords(25));
    assert.equal(server.received.length - before, 25);
  });

  it('refuses an unverifiable certificate and says so in state()', async () => {
    const s = new ForwardSink({ type: 'forward', port: server.port, tls: {}, sharedKey: 'sk-tls-0001' }, { reconnectMinMs: 200 });
    sinks.push(s);
    void s.deliver(makeRecords(1)).catch(() => undefined);
    assert.ok(await waitFor(() => /TLS handshake .* failed/.test(s.state().reason ?? '')), s.state().reason);
  });

  it('mutual TLS: tls.cert / tls.key present a client certificate the server verifies', async () => {
    const pems = { ca: readFileSync(join(dir, 'ca.pem')) };
    const mtls = await new TestForwardServer({
      tlsOptions: { key: serverKey, cert: pems.ca, ca: [pems.ca], requestCert: true, rejectUnauthorized: true },
    }).start();
    try {
      const withCert = new ForwardSink({ type: 'forward', port: mtls.port, tls: { ca: 'ca.pem', cert: 'client.pem', key: 'client.key' } }, { baseDir: dir });
      const without = new ForwardSink({ type: 'forward', port: mtls.port, tls: { ca: 'ca.pem' } }, { baseDir: dir, reconnectMinMs: 200 });
      sinks.push(withCert, without);
      await withCert.deliver(makeRecords(4));
      assert.equal(mtls.received.length, 4);
      void without.deliver(makeRecords(1)).catch(() => undefined);
      assert.ok(await waitFor(() => !without.state().ok && !/^connecting/.test(without.state().reason ?? ''), 5000), without.state().reason);
      assert.equal(mtls.received.length, 4, 'nothing accepted without a client certificate');
    } finally {
      await Promise.all(sinks.splice(0).map((s) => s.close(0)));
      await mtls.stop();
    }
  });

  it('unusable TLS material (a key file that is not a key): a clear state and retries, no hang', async () => {
    writeFileSync(join(dir, 'garbage.key'), 'not a key\n');
    const s = new ForwardSink({ type: 'forward', port: server.port, tls: { ca: 'ca.pem', cert: 'client.pem', key: 'garbage.key' }, sharedKey: 'sk-tls-0001' }, { baseDir: dir, reconnectMinMs: 100 });
    sinks.push(s);
    void s.deliver(makeRecords(1)).catch(() => undefined);
    assert.ok(await waitFor(() => /TLS setup .* failed, check output.tls/.test(s.state().reason ?? '') && s.stats.connectAttempts >= 2, 5000), `${s.state().reason} after ${s.stats.connectAttempts} attempts`);
  });

  it('tls.insecure skips verification (testing only)', async () => {
    const s = new ForwardSink({ type: 'forward', port: server.port, tls: { insecure: true }, sharedKey: 'sk-tls-0001' });
    sinks.push(s);
    await s.deliver(makeRecords(3));
  });
});
