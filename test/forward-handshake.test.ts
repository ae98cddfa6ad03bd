import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { FluentClient, FluentError, FluentSocketEvent } from '@fluent-org/logger';
import { ForwardSink } from '../plugin/output/forward.js';
import { decodeServerStreamKeepingBytes } from '../plugin/output/forward-socket.js';
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
