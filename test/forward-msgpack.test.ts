import assert from 'node:assert/strict';
import * as msgpack from '@msgpack/msgpack';
import { EntryWriter, RecordEncodeError } from '../plugin/output/forward-msgpack.js';
import { decodeEntries } from './forward-helpers.js';

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

  // A string of exactly `bytes` UTF-8 bytes made of `unit` (padded with ASCII).
  const sized = (bytes: number, unit: string) => {
    const size = Buffer.byteLength(unit);
    return unit.repeat(Math.floor(bytes / size)) + 'a'.repeat(bytes % size);
  };
  // Header sizes change at 32, 256 and 65536 bytes. The writer reserves the header for one byte
  // per char and widens it afterwards, so multi-byte strings cross a boundary the char count
  // does not (e.g. 16 × 'é' = 32 bytes); 4096+ chars take the measured long-string path.
  for (const [name, unit] of [['ASCII', 'x'], ['Latin-1', 'é'], ['3-byte', '日'], ['astral', '😀']] as const) {
    it(`is byte-identical to @msgpack/msgpack for ${name} strings at every header-size boundary`, () => {
      for (const bytes of [0, 1, 11, 12, 31, 32, 33, 255, 256, 257, 12287, 12288, 65535, 65536, 65537]) {
        const s = sized(bytes, unit);
        assert.equal(Buffer.byteLength(s), bytes);
        const ours = EntryWriter.encode(s);
        assert.deepEqual(ours, reference(s), `${bytes} bytes`);
        assert.equal(msgpack.decode(ours), s);
      }
    });
  }

  it('is byte-identical to @msgpack/msgpack for short strings that turn non-ASCII midway', () => {
    for (const s of ['abcdefghij日', 'abc日日日日日日日日', '日'.repeat(11), 'ascii-then-é', 'ø', 'søren.kierkegaard']) {
      assert.deepEqual(EntryWriter.encode(s), reference(s), s);
      assert.deepEqual(EntryWriter.encode({ [s]: s }), reference({ [s]: s }), `key ${s}`);
    }
  });

  it("writes lone surrogates as Buffer's UTF-8 encoder does (U+FFFD)", () => {
    for (const s of ['\ud800', 'a\udc00b', 'x'.repeat(20) + '\ud83d', '\ude00'.repeat(100), 'y'.repeat(5000) + '\udfff']) {
      const ours = EntryWriter.encode(s);
      assert.deepEqual(ours.subarray(ours.length - Buffer.byteLength(s)), Buffer.from(s, 'utf8'));
      assert.equal(msgpack.decode(ours), Buffer.from(s, 'utf8').toString('utf8'));
    }
  });

  it('writes long strings correctly while the buffer grows', () => {
    const w = new EntryWriter(16);
    const recs = [1, 40, 300, 5000, 70000].map((n) => ({ a: 'é'.repeat(n), b: '日'.repeat(n >> 1), c: 'x'.repeat(n) }));
    recs.forEach((r, i) => w.appendEntry(1000 + i, r));
    assert.deepEqual(decodeEntries(w.bytes()).map(([, r]) => r), recs);
  });

  it('never cuts a multi-byte string short at the end of the buffer, whatever room is left', () => {
    for (let fill = 0; fill < 80; fill++) {
      const w = new EntryWriter(64);
      const rec = { p: 'x'.repeat(fill), s: '日'.repeat(12), t: '😀'.repeat(5), u: 'é'.repeat(20) };
      w.appendEntry(1, rec);
      assert.deepEqual(decodeEntries(w.bytes()).map(([, r]) => r), [rec], `after ${fill} bytes`);
    }
  });

  it('encodes own enumerable members only, in Object.keys order, like JSON', () => {
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const inheriting = (own: Record<string, unknown>) => Object.assign(Object.create({ inherited: 1 }) as Record<string, unknown>, own);
    const inherited = inheriting({ own: 2 });
    const sparse = inheriting({ own: 2, skip: undefined }); // rewritten without the skipped member
    const hidden = Object.defineProperty({ shown: 1 }, 'hidden', { value: 2, enumerable: false });
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const v = { numbered: { b: 1, 2: 'x', a: 2, 1: 'y' }, point: new Point(3, 4), inherited, sparse, hidden, bare, data: { toJSON: 'not a function' } };
    const json = JSON.parse(JSON.stringify(v)) as unknown;
    assert.deepEqual(msgpack.decode(EntryWriter.encode(v)), json);
    assert.deepEqual(EntryWriter.encode(v), reference(json));
  });

  it('honours toJSON wherever JSON.stringify finds it', () => {
    const own = { a: 1, toJSON: () => 'own' };
    const hiddenOwn = Object.defineProperty({ a: 1 }, 'toJSON', { value: () => 'hidden own', enumerable: false });
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { toJSON: () => 'bare' });
    class Money {
      constructor(private readonly cents: number) {}
      toJSON(): string {
        return `${this.cents / 100} EUR`;
      }
    }
    const v = { own, hiddenOwn, bare, money: new Money(1250), date: new Date(0) };
    assert.deepEqual(msgpack.decode(EntryWriter.encode(v)), JSON.parse(JSON.stringify(v)));
    const proto = Object.prototype as { toJSON?: () => string };
    proto.toJSON = () => 'inherited';
    try {
      assert.equal(msgpack.decode(EntryWriter.encode({ plain: 1 })), JSON.parse(JSON.stringify({ plain: 1 })));
    } finally {
      delete proto.toJSON;
    }
  });

  it('uses JSON semantics where msgpack and JSON differ (same data as the stdout sink)', () => {
    const date = new Date('2026-11-28T05:00:00.123Z');
    const v = { d: date, u: undefined, f: () => 1, n: Number.NaN, i: -Infinity, arr: [undefined, () => 1], big: 12345678901234567890n };
    const decoded = msgpack.decode(EntryWriter.encode(v));
    assert.deepEqual(decoded, { d: '2026-11-28T05:00:00.123Z', n: null, i: null, arr: [null, null], big: '12345678901234567890' });
    assert.deepEqual(decoded, { ...JSON.parse(JSON.stringify({ ...v, big: undefined })), big: '12345678901234567890' });
  });

  it('writes entries [EventTime (ext 0: seconds, nanoseconds) with ms precision, record]', () => {
    const w = new EntryWriter(16); // tiny start: exercises buffer growth
    const recs = Array.from({ length: 50 }, (_, i) => ({ id: `r${i}`, n: i, s: 'é'.repeat(i) }));
    recs.forEach((r, i) => w.appendEntry(1_764_300_000_000 + i * 7, r));
    const entries = decodeEntries(w.bytes());
    assert.equal(entries.length, 50);
    entries.forEach(([time, record], i) => {
      assert.equal(time.seconds * 1000 + time.nanoseconds / 1e6, 1_764_300_000_000 + i * 7);
      assert.deepEqual(record, recs[i]);
    });
  });

  it('frames a PackedForward message as the spec says: [tag, bin of entries, {chunk, size}]', () => {
    const w = new EntryWriter();
    const recs = [{ id: 'a' }, { id: 'b', n: 1 }];
    w.beginPacket('microsoft_defender.syslog.alerts');
    recs.forEach((r, i) => w.appendEntry(5000 + i, r));
    const before = w.length;
    const ours = w.finishPacket(2, 'Y2h1bmstaWQtMTIzNDU2Nw==');
    assert.ok(ours.length > before);
    const [tag, entries, option, ...rest] = msgpack.decode(ours) as unknown[];
    assert.equal(tag, 'microsoft_defender.syslog.alerts');
    assert.ok(entries instanceof Uint8Array, 'PackedForward: the entries are one bin');
    assert.deepEqual(option, { chunk: 'Y2h1bmstaWQtMTIzNDU2Nw==', size: 2 });
    assert.deepEqual(rest, []);
    assert.deepEqual(
      decodeEntries(entries).map(([t, r]) => [t.seconds * 1000 + t.nanoseconds / 1e6, r]),
      recs.map((r, i) => [5000 + i, r]),
    );
  });

  it('truncate() rolls back the last entry exactly', () => {
    const w = new EntryWriter();
    w.appendEntry(1000, { a: 1 });
    const mark = w.length;
    w.appendEntry(2000, { b: 'x'.repeat(100) });
    w.truncate(mark);
    assert.equal(decodeEntries(w.bytes()).length, 1);
  });

  it('fails clearly on a circular record instead of overflowing the stack', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    assert.throws(() => EntryWriter.encode(a), RecordEncodeError);
  });
});
