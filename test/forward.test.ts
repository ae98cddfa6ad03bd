import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { ForwardSink, type ForwardSinkOptions } from '../plugin/output/forward.js';
import { SinkClosedError } from '../plugin/output/sink.js';
import { createLogger } from '../plugin/log.js';
import type { ForwardOutputConfig } from '../plugin/generated/config.js';
import { TestForwardServer, RawForwardServer, makeRecords, settledWithin, waitFor } from './forward-helpers.js';
import { freePort } from './helpers/free-port.js';

const sinks: ForwardSink[] = [];
const servers: { stop(): Promise<void> }[] = [];

function sink(port: number, config: Partial<ForwardOutputConfig> = {}, opts: ForwardSinkOptions = {}): ForwardSink {
  const s = new ForwardSink({ type: 'forward', host: '127.0.0.1', port, ...config }, { reconnectMinMs: 100, ...opts });
  sinks.push(s);
  return s;
}

async function fluentServer(opts: ConstructorParameters<typeof TestForwardServer>[0] = {}, port = 0): Promise<TestForwardServer> {
  const s = await new TestForwardServer(opts).start(port);
  servers.push(s);
  return s;
}

async function rawServer(opts: ConstructorParameters<typeof RawForwardServer>[0] = {}): Promise<RawForwardServer> {
  const s = await new RawForwardServer(opts).start();
  servers.push(s);
  return s;
}

function capturedLogger() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { logger: createLogger('info', stream), text: () => text };
}

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close(0)));
  await Promise.all(servers.splice(0).map((s) => s.stop().catch(() => undefined)));
});

describe('ForwardSink against the library FluentServer (acks on, 127.0.0.1)', () => {
  it('delivers every record with its tag, millisecond EventTime and record, across tags', async () => {
    const server = await fluentServer();
    const s = sink(server.port, { maxBatchRecords: 40 });
    const batch = [
      ...makeRecords(100, { tag: 'microsoft_defender.syslog.host' }),
      ...makeRecords(100, { tag: 'microsoft_defender.assets.host', start: 100 }),
      ...makeRecords(50, { tag: 'microsoft_defender.syslog.alerts', start: 200 }),
    ].sort(() => Math.random() - 0.5); // tags interleaved, as a host batch is
    await s.deliver(batch);
    assert.equal(server.received.length, batch.length);
    const byId = new Map(server.received.map((r) => [r.record.id, r]));
    for (const r of batch) {
      const got = byId.get(r.record.id);
      assert.ok(got, `record ${String(r.record.id)} arrived`);
      assert.equal(got.tag, r.tag);
      assert.equal(got.time, r.time); // ms precision survives (times end in …123 + k)
      assert.deepEqual(got.record, r.record);
    }
    assert.deepEqual(s.state(), { ok: true });
  });

  it('server down at start: deliver() waits, state() says why, and resolves once the server is up', async () => {
    const port = await freePort();
    const s = sink(port);
    const delivered = s.deliver(makeRecords(20));
    assert.equal(await settledWithin(delivered, 400), 'pending');
    const st = s.state();
    assert.equal(st.ok, false);
    assert.match(st.reason ?? '', /unreachable: ECONNREFUSED; retrying in/);
    const server = await fluentServer({}, port);
    await delivered;
    assert.deepEqual(server.ids().sort(), makeRecords(20).map((r) => String(r.record.id)).sort());
    assert.deepEqual(s.state(), { ok: true });
  });

  it('server killed mid-batch and restarted on the same port: nothing is lost', async () => {
    const first = await fluentServer();
    const port = first.port;
    let killed: Promise<void> | null = null;
    first.onEntry = (n) => {
      if (n >= 120 && !killed) killed = first.kill();
    };
    const s = sink(port, { maxBatchRecords: 50 });
    const batch = makeRecords(1000);
    const delivered = s.deliver(batch);
    assert.ok(await waitFor(() => killed !== null), 'server killed after 120 records');
    await killed;
    assert.equal(await settledWithin(delivered, 300), 'pending');
    assert.equal(s.state().ok, false);
    const second = await fluentServer({}, port);
    await delivered;
    const got = new Set([...first.ids(), ...second.ids()]);
    for (const r of batch) assert.ok(got.has(String(r.record.id)), `record ${String(r.record.id)} lost`);
    assert.ok(second.received.length > 0 && first.received.length < batch.length);
  });

  it('shared_key and username/password: the handshake succeeds with the right secrets', async () => {
    const server = await fluentServer({ security: { serverHostname: 'fluentd-test', sharedKey: 'sk-right-0001', authorize: true, userDict: { alice: 'pw-right-0001' } } });
    const s = sink(server.port, { sharedKey: 'sk-right-0001', username: 'alice', password: 'pw-right-0001' });
    await s.deliver(makeRecords(30));
    assert.equal(server.received.length, 30);
  });

  it('wrong shared key: a clear state and log without the key, backoff instead of a busy loop, deliver() stays pending', async () => {
    const server = await fluentServer({ security: { serverHostname: 'fluentd-test', sharedKey: 'sk-right-0002', authorize: false, userDict: {} } });
    const log = capturedLogger();
    const s = sink(server.port, { sharedKey: 'sk-WRONG-0002', reconnectMaxSeconds: 1 }, { reconnectMinMs: 200, logger: log.logger });
    const delivered = s.deliver(makeRecords(5));
    // 2.5 s of refusals with 200 ms doubling to a 1 s cap is about 4 attempts; a busy loop is hundreds.
    assert.equal(await settledWithin(delivered, 2500), 'pending');
    assert.ok(server.connections >= 2, `retried (${server.connections} connections)`);
    assert.ok(server.connections <= 8, `no busy loop (${server.connections} connections in 2.5 s)`);
    const st = s.state();
    assert.equal(st.ok, false);
    assert.match(st.reason ?? '', /refused the handshake: Authentication failed: shared key mismatch/);
    assert.doesNotMatch(JSON.stringify(st), /sk-WRONG|sk-right/);
    assert.match(log.text(), /"level":"error".*refused the handshake/);
    assert.doesNotMatch(log.text(), /sk-WRONG|sk-right/);
    assert.equal(server.received.length, 0);
    await s.close(0);
    await assert.rejects(delivered, SinkClosedError);
  });

  it('wrong password: refused with the server reason', async () => {
    const server = await fluentServer({ security: { serverHostname: 'fluentd-test', sharedKey: 'sk-right-0003', authorize: true, userDict: { alice: 'pw-right-0003' } } });
    const s = sink(server.port, { sharedKey: 'sk-right-0003', username: 'alice', password: 'pw-WRONG-0003' });
    const delivered = s.deliver(makeRecords(1));
    assert.ok(await waitFor(() => /refused/.test(s.state().reason ?? '')));
    assert.match(s.state().reason!, /username\/password mismatch/);
    assert.doesNotMatch(s.state().reason!, /pw-/);
    await s.close(0);
    await assert.rejects(delivered, SinkClosedError);
  });

  it('clientHostname equal to the server self_hostname: says so', async () => {
    const server = await fluentServer({ security: { serverHostname: 'defender-fluent', sharedKey: 'sk-right-0004', authorize: false, userDict: {} } });
    const s = sink(server.port, { sharedKey: 'sk-right-0004' }); // clientHostname defaults to defender-fluent
    void s.deliver(makeRecords(1)).catch(() => undefined);
    assert.ok(await waitFor(() => /clientHostname/.test(s.state().reason ?? '')), s.state().reason);
  });

  it('a server that requires a handshake, with no sharedKey configured: says so', async () => {
    const server = await fluentServer({ security: { serverHostname: 'fluentd-test', sharedKey: 'sk-right-0005', authorize: false, userDict: {} } });
    const s = sink(server.port);
    void s.deliver(makeRecords(1)).catch(() => undefined);
    assert.ok(await waitFor(() => /set output.sharedKey/.test(s.state().reason ?? '')), s.state().reason);
  });
});

describe('ForwardSink acknowledgements, batching and close (hand-made server)', () => {
  it('slow ack beyond the deadline: the chunk is re-sent on the same connection and deliver() resolves (duplicates allowed)', async () => {
    // deadline 0.3 s; messages 0-2 are the three chunks: the first is acked after 1.5 s, the
    // others at once; message 3 (the re-sent first chunk) is acked after 0.25 s, within its deadline
    const server = await rawServer({ ackDelay: (n) => (n === 0 ? 1500 : n === 3 ? 250 : 0) });
    const s = sink(server.port, { ackTimeoutSeconds: 0.3, maxBatchRecords: 10 });
    const batch = makeRecords(30);
    const delivered = s.deliver(batch);
    assert.ok(await waitFor(() => s.stats.ackTimeouts > 0));
    assert.match(s.state().reason ?? '', /1 chunk\(s\) not acknowledged by .* within 0.3s, re-sending/);
    await delivered;
    assert.deepEqual(s.state(), { ok: true }, 'green again once acknowledged');
    const ids = server.ids();
    for (const r of batch) assert.ok(ids.includes(String(r.record.id)));
    const first = server.packets[0]!;
    const again = server.packets.filter((p) => p.chunk === first.chunk);
    assert.ok(again.length >= 2, 're-sent with the same chunk id');
    assert.deepEqual(again[1]!.ids, first.ids, 're-sent whole');
    assert.equal(server.connections, 1, 'other chunks were acked, so the connection was kept');
    assert.ok(s.stats.chunksResent >= 1 && s.stats.ackTimeouts >= 1);
  });

  it('chunks past their ack deadline are re-sent in order, ahead of the chunks queued after them', async () => {
    // the first four messages (the window of 4 in flight) are acked late; ten batches are queued
    const server = await rawServer({ ackDelay: (n) => (n < 4 ? 1500 : 0) });
    const s = sink(server.port, { ackTimeoutSeconds: 0.3, maxBatchRecords: 10 });
    const delivered = Promise.all(Array.from({ length: 10 }, () => s.deliver(makeRecords(10))));
    assert.ok(await waitFor(() => server.packets.length >= 8));
    assert.deepEqual(
      server.packets.slice(4, 8).map((p) => p.chunk),
      server.packets.slice(0, 4).map((p) => p.chunk),
      'the four overdue chunks go out again, in their order, before the six never sent',
    );
    await delivered;
  });

  it('no ack at all on a connection: reconnects and re-sends there', async () => {
    const server = await rawServer({ ackDelay: (n) => (n === 0 ? null : 0) });
    const s = sink(server.port, { ackTimeoutSeconds: 0.3 });
    await s.deliver(makeRecords(5));
    assert.equal(server.connections, 2);
    assert.equal(server.packets.length, 2);
    assert.deepEqual(server.packets[1]!.ids, server.packets[0]!.ids);
  });

  it('splits at maxBatchRecords', async () => {
    const server = await rawServer();
    const s = sink(server.port, { maxBatchRecords: 7 });
    await s.deliver(makeRecords(50));
    assert.deepEqual(server.packets.map((p) => p.count), [7, 7, 7, 7, 7, 7, 7, 1]);
    assert.deepEqual(server.ids(), makeRecords(50).map((r) => String(r.record.id)));
  });

  it('splits at maxBatchBytes (exact encoded size, messages filled up to the limit)', async () => {
    const server = await rawServer();
    // one message in flight at a time, so the server can measure each one's size on the wire
    const s = sink(server.port, { maxBatchBytes: 4096, maxBatchRecords: 1000 }, { maxInFlightChunks: 1 });
    await s.deliver(makeRecords(60, { bytes: 500 }));
    assert.ok(server.packets.length > 1);
    assert.equal(server.packets.reduce((n, p) => n + p.count, 0), 60);
    const recordBytes = server.packets[0]!.wireBytes / server.packets[0]!.count;
    for (const p of server.packets) {
      assert.ok(p.wireBytes <= 4096, `message of ${p.wireBytes} bytes`);
      if (p !== server.packets.at(-1)) assert.ok(p.wireBytes + recordBytes > 4096 - 64, `message of ${p.wireBytes} bytes could have held one more record`);
    }
  });

  it('maxBatchBytes and maxBatchRecords together: whichever is reached first ends the message', async () => {
    const server = await rawServer();
    const s = sink(server.port, { maxBatchBytes: 8192, maxBatchRecords: 5 }, { maxInFlightChunks: 1 });
    await s.deliver([...makeRecords(10, { bytes: 100 }), ...makeRecords(20, { bytes: 3000, start: 10 })]);
    const counts = server.packets.map((p) => p.count);
    assert.deepEqual(counts.slice(0, 2), [5, 5], 'small records: the record limit');
    assert.deepEqual(counts.slice(2), Array(10).fill(2), 'big records: the byte limit (two 3 kB records per 8 kB)');
    assert.ok(server.packets.every((p) => p.wireBytes <= 8192));
  });

  it('a record larger than maxBatchBytes is sent alone, not dropped', async () => {
    const server = await rawServer();
    const s = sink(server.port, { maxBatchBytes: 2048 });
    const batch = [...makeRecords(2), ...makeRecords(1, { bytes: 5000, start: 2 }), ...makeRecords(2, { start: 3 })];
    await s.deliver(batch);
    assert.deepEqual(server.packets.map((p) => p.count), [2, 1, 2]);
  });

  it('large chunks (buffers handed over and reused after acks): every record arrives intact, also across re-sends', async () => {
    // ~300 kB messages take the zero-copy path of EntryWriter; message 1 is acked late, so its
    // chunk is re-sent while later chunks reuse acknowledged buffers.
    const server = await rawServer({ ackDelay: (n) => (n === 1 ? 700 : 0) });
    const s = sink(server.port, { maxBatchBytes: 300_000, maxBatchRecords: 100_000, ackTimeoutSeconds: 0.4 }, { maxInFlightChunks: 2 });
    const batch = makeRecords(3000, { bytes: 1000 });
    await s.deliver(batch);
    assert.ok(server.packets.length >= 10 && s.stats.chunksResent >= 1);
    assert.deepEqual([...new Set(server.ids())].sort(), batch.map((r) => String(r.record.id)).sort());
    for (const p of server.packets) assert.ok(p.ids.every((id) => /^r\d+$/.test(id)), 'no corrupted entries');
    // full content check through the library's decoder on a second, fresh server
    const fluent = await fluentServer();
    const s2 = sink(fluent.port, { maxBatchBytes: 300_000, maxBatchRecords: 100_000 }, { maxInFlightChunks: 2 });
    await s2.deliver(batch);
    await s2.deliver(batch);
    const got = new Map(fluent.received.map((r) => [r.record.id, r]));
    assert.equal(fluent.received.length, 2 * batch.length);
    for (const r of batch) assert.deepEqual(got.get(r.record.id)?.record, r.record);
  });

  it('close() waits for in-flight chunks that get acknowledged in time', async () => {
    const server = await rawServer({ ackDelay: () => 300 });
    const s = sink(server.port);
    const delivered = s.deliver(makeRecords(10));
    assert.ok(await waitFor(() => server.packets.length === 1));
    await s.close(5000);
    await delivered; // resolved, not rejected
    assert.deepEqual(s.state(), { ok: false, reason: 'closed' });
  });

  it('close() with batches in flight and no ack rejects them with SinkClosedError', async () => {
    const server = await rawServer({ ackDelay: () => null });
    const s = sink(server.port, { maxBatchRecords: 10 }, { maxInFlightChunks: 2 });
    const a = s.deliver(makeRecords(30));
    const b = s.deliver(makeRecords(5, { start: 30 }));
    const aRejected = assert.rejects(a, SinkClosedError);
    const bRejected = assert.rejects(b, SinkClosedError);
    assert.ok(await waitFor(() => server.packets.length === 2));
    assert.equal(await settledWithin(a, 100), 'pending');
    await s.close(200);
    await aRejected;
    await bRejected;
    await assert.rejects(s.deliver(makeRecords(1)), SinkClosedError);
  });

  it('close() does not hang on a server that accepts TCP but never answers the handshake', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => silent.listen({ host: '127.0.0.1', port: 0 }, r));
    servers.push({ stop: () => new Promise<void>((r) => (sockets.forEach((x) => x.destroy()), silent.close(() => r()))) });
    const s = sink((silent.address() as { port: number }).port, { sharedKey: 'sk-silent-0001' });
    const delivered = s.deliver(makeRecords(1));
    const rejected = assert.rejects(delivered, SinkClosedError);
    assert.ok(await waitFor(() => sockets.length === 1));
    assert.match(s.state().reason ?? '', /^connecting to forward server/);
    await s.close(100);
    await rejected;
  });

  it('rejects a malformed batch before sending anything, naming the record', async () => {
    const server = await rawServer();
    const s = sink(server.port);
    const batch = makeRecords(3);
    batch[1] = { ...batch[1]!, time: Number.NaN };
    await assert.rejects(s.deliver(batch), /batch\[1\]\.time must be epoch milliseconds/);
    await s.deliver([]);
    await s.deliver(makeRecords(2));
    assert.deepEqual(server.ids(), ['r0', 'r1']);
  });
});
