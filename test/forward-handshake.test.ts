import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { FluentClient, FluentError, FluentSocketEvent } from '@fluent-org/logger';
import { ForwardSink } from '../plugin/output/forward.js';
import { createHash } from 'node:crypto';
import { checkPong, decodeServerStreamKeepingBytes, HandshakeAuthError, HandshakeConfigError, parseHelo, pingFor } from '../plugin/output/forward-socket.js';
import { RawForwardServer, makeRecords, waitFor } from './forward-helpers.js';

// Fluent Bit 3.x sends the HELO nonce as a msgpack str holding 16 random bytes; Fluentd sends a bin.
describe('forward handshake with a HELO nonce sent as a msgpack str of random bytes', () => {
  let server: RawForwardServer;
  beforeEach(async () => {
    server = await new RawForwardServer({ strNonce: { sharedKey: 'sk-fluentbit-01', serverHostname: 'fluent-bit' } }).start();
  });
  afterEach(() => server.stop());

  it('ForwardSink computes the digest over the raw nonce bytes and delivers', async () => {
    const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: server.port, sharedKey: 'sk-fluentbit-01' });
    try {
      await sink.deliver(makeRecords(12));
      assert.deepEqual(server.handshakes, [{ ok: true, reason: '' }]);
      assert.equal(server.ids().length, 12);
      assert.deepEqual(sink.state(), { ok: true });
    } finally {
      await sink.close(0);
    }
  });

  it('the same server refuses a wrong key (the check is real)', async () => {
    const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: server.port, sharedKey: 'sk-other-key-01' }, { reconnectMinMs: 200 });
    try {
      void sink.deliver(makeRecords(1)).catch(() => undefined);
      assert.ok(await waitFor(() => /refused the handshake/.test(sink.state().reason ?? '')), sink.state().reason);
      assert.equal(server.handshakes[0]?.ok, false);
    } finally {
      await sink.close(0);
    }
  });

  it('username/password against a str auth salt', async () => {
    const users = await new RawForwardServer({ strNonce: { sharedKey: 'sk-fluentbit-02', serverHostname: 'fluent-bit', users: { defender: 'pw-fluentbit-02' } } }).start();
    const good = new ForwardSink({ type: 'forward', port: users.port, sharedKey: 'sk-fluentbit-02', username: 'defender', password: 'pw-fluentbit-02' });
    const bad = new ForwardSink({ type: 'forward', port: users.port, sharedKey: 'sk-fluentbit-02', username: 'defender', password: 'pw-wrong' }, { reconnectMinMs: 200 });
    try {
      await good.deliver(makeRecords(3));
      void bad.deliver(makeRecords(1)).catch(() => undefined);
      assert.ok(await waitFor(() => /username\/password mismatch/.test(bad.state().reason ?? '')), bad.state().reason);
      assert.ok(users.handshakes.some((h) => h.ok) && users.handshakes.some((h) => h.reason === 'username/password mismatch'));
    } finally {
      await good.close(0);
      await bad.close(0);
      await users.stop();
    }
  });

  it('the unpatched library client is refused by it (why forward-socket.ts decodes server messages itself)', async () => {
    // If this starts failing after a library upgrade, the upstream bug is fixed and the workaround
    // in plugin/output/forward-socket.ts can go.
    const client = new FluentClient('t', { security: { clientHostname: 'plain-lib', sharedKey: 'sk-fluentbit-01' }, socket: { host: '127.0.0.1', port: server.port, disableReconnect: true } });
    const errors: Error[] = [];
    client.socketOn(FluentSocketEvent.ERROR, (e: Error) => errors.push(e));
    await client.connect().catch(() => undefined); // no autoconnect with disableReconnect
    try {
      assert.ok(await waitFor(() => errors.length > 0, 5000));
      assert.equal(server.handshakes[0]?.ok, false, 'digest over U+FFFD-mangled nonce');
      assert.ok(errors[0] instanceof FluentError.AuthError, String(errors[0]));
    } finally {
      await client.shutdown().catch(() => undefined);
    }
  });
});

describe('decodeServerStreamKeepingBytes', () => {
  it('keeps a non-UTF-8 str as its exact bytes and valid UTF-8 as a string', async () => {
    const raw = Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x80, 0x41]);
    // ['HELO', {nonce: str(raw), note: 'héllo'}]
    const msg = Buffer.concat([
      Buffer.from([0x92, 0xa4]), Buffer.from('HELO'),
      Buffer.from([0x82, 0xa5]), Buffer.from('nonce'), Buffer.from([0xa0 | raw.length]), raw,
      Buffer.from([0xa4]), Buffer.from('note'), Buffer.from([0xa0 | Buffer.byteLength('héllo')]), Buffer.from('héllo'),
    ]);
    const stream = new PassThrough();
    // split mid-message: the decoder must wait for the rest instead of mis-decoding a partial str
    stream.write(msg.subarray(0, 14));
    setTimeout(() => stream.end(msg.subarray(14)), 20);
    const out: unknown[] = [];
    for await (const m of decodeServerStreamKeepingBytes(stream)) out.push(m);
    const [helo] = out as [[string, { nonce: Buffer; note: string }]];
    assert.equal(helo[0], 'HELO');
    assert.ok(Buffer.isBuffer(helo[1].nonce));
    assert.deepEqual([...helo[1].nonce], [...raw]);
    assert.equal(helo[1].note, 'héllo');
  });
});

describe('forward handshake messages (Forward Protocol Specification v1)', () => {
  const hex = (...parts: (string | Buffer)[]) => parts.reduce((h, p) => h.update(p), createHash('sha512')).digest('hex');
  const security = { clientHostname: 'defender-fluent', sharedKey: 'sk-spec-01', username: 'defender', password: 'pw-spec-01' };
  const nonce = Buffer.from([0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  const auth = Buffer.from('auth-salt-bytes!');
  const salt = 'c0ffee'.repeat(5);

  it('PING: sha512_hex(salt + hostname + nonce + key), and sha512_hex(auth + username + password) only when HELO asks for it', () => {
    const helo = parseHelo(['HELO', { nonce, auth, keepalive: true }])!;
    assert.deepEqual(pingFor(helo, security, salt), ['PING', 'defender-fluent', salt, hex(salt, 'defender-fluent', nonce, 'sk-spec-01'), 'defender', hex(auth, 'defender', 'pw-spec-01')]);
    const noAuth = parseHelo(['HELO', { nonce: 'text-nonce' }])!;
    assert.deepEqual(pingFor(noAuth, security, salt), ['PING', 'defender-fluent', salt, hex(salt, 'defender-fluent', 'text-nonce', 'sk-spec-01'), '', '']);
    assert.equal(parseHelo(['PONG', {}]), undefined);
    assert.equal(parseHelo(['HELO', { nonce: 5 }]), undefined);
  });

  it('PONG: accepted only when the server proves the shared key; refusals and a shared hostname are named', () => {
    const helo = { nonce };
    const proof = (host: string, key = 'sk-spec-01') => hex(salt, host, nonce, key);
    checkPong(['PONG', true, '', 'fluentd-aggregator', proof('fluentd-aggregator')], helo, security, salt);
    assert.throws(() => checkPong(['PONG', false, 'shared_key mismatch', 'fluentd-aggregator', ''], helo, security, salt), (e: Error) => e instanceof HandshakeAuthError && e.message === 'Authentication failed: shared_key mismatch');
    // a server that says yes without knowing the key is not trusted
    assert.throws(() => checkPong(['PONG', true, '', 'fluentd-aggregator', proof('fluentd-aggregator', 'guessed')], helo, security, salt), (e: Error) => e instanceof HandshakeAuthError && e.message === 'shared key mismatch');
    assert.throws(() => checkPong(['PONG', true, '', 'defender-fluent', proof('defender-fluent')], helo, security, salt), HandshakeConfigError);
    assert.throws(() => checkPong(['HELO', {}], helo, security, salt), HandshakeAuthError);
  });
});
