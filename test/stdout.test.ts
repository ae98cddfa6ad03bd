import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { StdoutSink } from '../plugin/output/stdout.js';
import { SinkClosedError } from '../plugin/output/sink.js';
import { makeRecords, settledWithin } from './forward-helpers.js';

/** A writable whose writes complete only when the test says so (a reader that is slow or stuck). */
function heldWritable() {
  const held: (() => void)[] = [];
  let text = '';
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      held.push(() => cb());
    },
  });
  return { stream, release: () => held.splice(0).forEach((f) => f()), held: () => held.length, text: () => text };
}

describe('StdoutSink (NDJSON for in_exec / exec)', () => {
  it('writes one {"tag","time","record"} line per record, batches in order even when delivered concurrently', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const sink = new StdoutSink(out);
    const a = makeRecords(300, { bytes: 400 }); // > 64 KiB: written in several flushes
    const b = makeRecords(5, { start: 300, tag: 'microsoft_defender.status' });
    await Promise.all([sink.deliver(a), sink.deliver(b)]);
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { tag: string; time: number; record: unknown });
    assert.deepEqual(lines, [...a, ...b].map((r) => ({ tag: r.tag, time: r.time, record: r.record })));
    assert.deepEqual(Object.keys(lines[0]!), ['tag', 'time', 'record']);
  });

  it('resolves only once the stream has flushed the batch (pipe backpressure)', async () => {
    const w = heldWritable();
    const sink = new StdoutSink(w.stream);
    const delivered = sink.deliver(makeRecords(10));
    assert.equal(await settledWithin(delivered, 100), 'pending');
    assert.ok(w.held() > 0);
    w.release();
    await delivered;
  });

  it('close() fails batches a stuck reader never took with SinkClosedError (no endless wait)', async () => {
    const w = heldWritable();
    const sink = new StdoutSink(w.stream);
    const first = sink.deliver(makeRecords(10));
    const second = sink.deliver(makeRecords(10, { start: 10 }));
    const firstRejected = assert.rejects(first, SinkClosedError);
    const secondRejected = assert.rejects(second, SinkClosedError);
    await sink.close(100);
    await firstRejected;
    await secondRejected;
    w.release();
    assert.doesNotMatch(w.text(), /"r10"/, 'the queued batch was not written after close');
    await assert.rejects(sink.deliver(makeRecords(1)), SinkClosedError);
    assert.deepEqual(sink.state(), { ok: false, reason: 'closed' });
  });

  it('close() waits for batches that get flushed in time', async () => {
    const w = heldWritable();
    const sink = new StdoutSink(w.stream);
    const delivered = sink.deliver(makeRecords(3));
    setTimeout(() => w.release(), 50);
    await sink.close(5000);
    await delivered;
  });

  it('a stream error (EPIPE: the reader went away) rejects deliver() instead of hanging', async () => {
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    stream.on('error', () => undefined);
    const sink = new StdoutSink(stream);
    await assert.rejects(sink.deliver(makeRecords(2)), /EPIPE/);
  });
});
