import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import { parseStdoutLine, StdoutSink } from '../plugin/output/stdout.js';
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
  it('writes one flat JSON line per record (time and tag first), batches in order even when delivered concurrently', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const sink = new StdoutSink(out);
    const a = makeRecords(300, { bytes: 400 }); // > 64 KiB: written in several flushes
    const b = makeRecords(5, { start: 300, tag: 'microsoft_defender.status' });
    await Promise.all([sink.deliver(a), sink.deliver(b)]);
    const lines = text.trimEnd().split('\n');
    assert.deepEqual(lines.map(parseStdoutLine), [...a, ...b]);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(first), ['time', 'tag', ...Object.keys(a[0]!.record)]);
    // what a shipper's time parser reads: ISO 8601 in UTC with milliseconds
    assert.equal(first.time, new Date(a[0]!.time).toISOString());
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('an empty record is still a line with time and tag', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const sink = new StdoutSink(out);
    await sink.deliver([{ tag: 't.x', time: 0, record: {} }]);
    assert.equal(text, '{"time":"1970-01-01T00:00:00.000Z","tag":"t.x"}\n');
  });

  it('bytes through a pipe, read as binary the way Fluentd reads a child: every line valid UTF-8, non-ASCII intact', async () => {
    // The child writes with the real sink on its real stdout; the parent keeps raw bytes and cuts
    // lines at 0x0A, as Ruby's IO#each_line does on a binary stream, then decodes strictly.
    const texts = ['jörg.müller', '日本語のホスト', 'emoji 🛡️ shield', 'lone \ud800 surrogate', 'quote " brace } newline \n tab \t', 'x'.repeat(70_000) + 'é'];
    const script = `
      import { StdoutSink } from ${JSON.stringify(new URL('../plugin/output/stdout.ts', import.meta.url).href)};
      const texts = ${JSON.stringify(texts)};
      const sink = new StdoutSink(process.stdout);
      await sink.deliver(texts.map((text, i) => ({ tag: 'microsoft_defender.syslog.alerts', time: 1764300000001 + i, record: { i, text, nested: [{ text }] } })));
      await sink.close(1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0);
    const bytes = Buffer.concat(chunks);
    const lines: Buffer[] = [];
    for (let start = 0, nl; (nl = bytes.indexOf(0x0a, start)) !== -1; start = nl + 1) lines.push(bytes.subarray(start, nl));
    assert.equal(lines.length, texts.length, 'no line break inside a record');
    const strict = new TextDecoder('utf-8', { fatal: true });
    lines.forEach((line, i) => {
      const r = parseStdoutLine(strict.decode(line));
      assert.equal(r.time, 1764300000001 + i);
      assert.deepEqual(r.record, { i, text: texts[i], nested: [{ text: texts[i] }] });
    });
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
