import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { EventTime } from '@fluent-org/logger';
import type * as MsgpackModule from '@msgpack/msgpack';
import type * as ProtocolModule from '@fluent-org/logger/build/src/protocol.js';
import { EntryWriter, RecordEncodeError } from '../plugin/output/forward-msgpack.js';

const require = createRequire(import.meta.url);
const msgpack = createRequire(require.resolve('@fluent-org/logger'))('@msgpack/msgpack') as typeof MsgpackModule;
const protocol = require('@fluent-org/logger/build/src/protocol.js') as typeof ProtocolModule;

const reference = (v: unknown) => Buffer.from(msgpack.encode(v));

describe('EntryWriter (forward msgpack encoder)', () => {
  const values: [string, unknown][] = [
    ['small ints', [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]],
    ['negative ints', [-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER]],
    ['floats', [0.5, -1.25, 1e300, 2 ** 53 + 2, 3.14159]],
    ['strings', ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70000), 'héllo wörld', '日本語のテキスト'.repeat(10), '😀 emoji', 'ascii then é'.repeat(5)]],
    ['containers', { a: [], b: {}, c: Array.from({ length: 20 }, (_, i) => i), d: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])), big: Array.from({ length: 70000 }, () => 1) }],
    ['literals', [true, false, null]],
    ['nested', { microsoft_defender: { id: 'da1', evidence: [{ entityType: 'File', sha1: 'a'.repeat(40) }], score: 75 }, 'ключ': 'значение' }],
  ];
  for (const [name, v] of values) {
    it(`is byte-identical to @msgpack/msgpack for ${name}`, () => {
      assert.deepEqual(EntryWriter.encode(v), reference(v));
    });
  }

  it('uses JSON semantics where msgpack and JSON differ (same data as the stdout sink)', () => {
    const date = new Date('2026-11-28T05:00:00.123Z');
    const v = { d: date, u: undefined, f: () => 1, n: Number.NaN, i: -Infinity, arr: [undefined, () => 1], big: 12345678901234567890n };
    const decoded = msgpack.decode(EntryWriter.encode(v));
    assert.deepEqual(decoded, { d: '2026-11-28T05:00:00.123Z', n: null, i: null, arr: [null, null], big: '12345678901234567890' });
    assert.deepEqual(decoded, { ...JSON.parse(JSON.stringify({ ...v, big: undefined })), big: '12345678901234567890' });
  });

  it('writes entries the library decodes as [EventTime with ms precision, record]', () => {
    const w = new EntryWriter(16); // tiny start: exercises buffer growth
    const recs = Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, n: i, s: 'é'.repeat(i) }));
    recs.forEach((r, i) => w.appendEntry(1_764_300_000_000 + i * 7, r));
    const entries = protocol.decodeEntries(w.bytes());
    assert.equal(entries.length, 50);
    entries.forEach(([time, record], i) => {
      assert.ok(time instanceof EventTime);
      assert.equal(time.epoch * 1000 + time.nano / 1e6, 1_764_300_000_000 + i * 7);
      assert.deepEqual(record, recs[i]);
    });
  });

  it('frames a PackedForward message the library reads like its own framing', () => {
    const w = new EntryWriter();
    const recs = [{ id: 'a' }, { id: 'b', n: 1 }];
    w.beginPacket('microsoft_defender.syslog.alerts');
    recs.forEach((r, i) => w.appendEntry(5000 + i, r));
    const before = w.length;
    const ours = w.finishPacket(2, 'Y2h1bmstaWQtMTIzNDU2Nw==');
    const entryBytes = Buffer.concat(recs.map((r, i) => protocol.packEntry(protocol.generateEntry(EventTime.fromTimestamp(5000 + i), r))));
    const theirs = protocol.encodeMessage(protocol.generatePackedForwardMode('microsoft_defender.syslog.alerts', [entryBytes], entryBytes.length, 'Y2h1bmstaWQtMTIzNDU2Nw=='));
    const a = protocol.decode(ours) as unknown[];
    const b = protocol.decode(theirs) as unknown[];
    assert.ok(protocol.isPackedForwardMode(a as never));
    assert.equal(a[0], b[0]);
    assert.deepEqual(Buffer.from(a[1] as Uint8Array), Buffer.from(b[1] as Uint8Array), 'same entry bytes');
    assert.deepEqual(a[2], { ...(b[2] as object), size: 2 }); // the library counts buffers, not entries
    assert.ok(ours.length > before);
    const t = protocol.parseTransport(a as never);
    assert.deepEqual(t.entries.map(([, r]) => r), recs);
  });

  it('truncate() rolls back the last entry exactly', () => {
    const w = new EntryWriter();
    w.appendEntry(1000, { a: 1 });
    const mark = w.length;
    w.appendEntry(2000, { b: 'x'.repeat(100) });
    w.truncate(mark);
    assert.equal(protocol.decodeEntries(w.bytes()).length, 1);
  });

  it('fails clearly on a circular record instead of overflowing the stack', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    assert.throws(() => EntryWriter.encode(a), RecordEncodeError);
  });
});
