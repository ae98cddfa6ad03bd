import { EventTime } from '@fluent-org/logger';

/**
 * Writes Forward-protocol PackedForward messages (entries `[EventTime, record]`, msgpack) straight
 * into one growing buffer.
 *
 * Why not the library's `packEntry`: it builds a new msgpack Encoder for every record and returns
 * a view of its private buffer, which then has to be copied again into the packet; on ~2 KB alert
 * records that is the bottleneck of the whole sink (measured on this 2-core VM: packEntry 30–45k/s,
 * a reused @msgpack/msgpack Encoder 45–85k/s, this writer 85–150k/s, see bench/forward.ts). The
 * library's PackedForward framing would then copy the entries twice more (Buffer.concat, then
 * the encoder's doubling buffer, which stays referenced at up to 2× maxBatchBytes per chunk until
 * the ack). Tests check that the library decodes our messages to the same thing as its own framing.
 * The gain comes from writing into one buffer, a cache of encoded map keys (records repeat the
 * same keys thousands of times), strings written in place by the native encoder (a JS loop for
 * short ASCII ones) and object members read with for...in. On alert records (~4.5 KB of msgpack,
 * 5 evidence items) that is ~16 µs per record, where the first version of this writer took 17 or
 * 33 µs depending on the process (see value()) and JSON.stringify takes ~15 µs.
 *
 * Output is byte-identical to @msgpack/msgpack for JSON values (test/forward-msgpack.test.ts
 * checks this), with JSON semantics for the rest, so forward and stdout carry the same data:
 * `toJSON()` is honoured (Date → ISO string), object members that are undefined / functions /
 * symbols are skipped, NaN and ±Infinity become nil, bigint becomes its decimal string.
 */

const MAX_DEPTH = 100;
const KEY_CACHE_LIMIT = 4096;
/** Below this many chars a JS loop beats a native write call (~50 ns fixed cost per call). */
const SHORT_STRING = 12;
/** From this many chars on, strings are measured first instead of reserving 3 bytes per char. */
const LONG_STRING = 4096;
const hasOwn = Object.prototype.hasOwnProperty;
const objectProto = Object.prototype as { toJSON?: unknown };

/**
 * Buffer's per-encoding writer behind `write(s, offset, 'utf8')` (undocumented, but present in
 * every Node version): calling it directly skips write()'s argument parsing, ~1 µs per alert.
 */
type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number };

export class RecordEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordEncodeError';
  }
}

export class EntryWriter {
  private buf: Buffer;
  private pos = 0;
  private binStart = 0;
  private readonly spare: ArrayBuffer[] = [];
  private readonly keyCache = new Map<string, Buffer>();

  /** `initialBytes`: the sink passes maxBatchBytes plus room for the one record that overflows a chunk. */
  constructor(private readonly initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.pos;
  }

  reset(): void {
    this.pos = 0;
    // An oversized record can grow the buffer far beyond maxBatchBytes: do not keep that around.
    if (this.buf.length > 2 * this.initialBytes && this.buf.length > 1 << 20) this.buf = Buffer.allocUnsafe(this.initialBytes);
  }

  /** Forgets everything written after `length` (used to roll back the entry that overflowed a chunk). */
  truncate(length: number): void {
    this.pos = length;
  }

  /** Copy of what has been written (the writer's buffer is reused for the next chunk). */
  bytes(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  /**
   * Starts a PackedForward message `[tag, bin(entries), {size, chunk}]` (Forward protocol v1).
   * The bin header is always bin32 with a placeholder length, patched by finishPacket(): the
   * entries are written in place, so the message is never copied while being built.
   */
  beginPacket(tag: string): void {
    this.reset();
    this.ensure(1);
    this.buf[this.pos++] = 0x93; // fixarray(3)
    this.string(tag);
    this.ensure(5);
    this.buf[this.pos++] = 0xc6; // bin32
    this.binStart = this.pos + 4;
    this.pos += 4;
  }

  /**
   * Closes the message started by beginPacket() and returns it. A big message takes the buffer
   * itself (a fresh one is allocated for the next), which saves copying megabytes per chunk; a
   * small one is copied so that it does not pin a large buffer until its ack.
   */
  finishPacket(count: number, chunkId: string): Buffer {
    this.buf.writeUInt32BE(this.pos - this.binStart, this.binStart - 4);
    this.header(2, 0x80, 16, 0, 0xde, 0xdf);
    this.key('size');
    this.number(count);
    this.key('chunk');
    this.string(chunkId);
    if (this.pos < 1 << 18 || this.pos < this.buf.length / 2) return this.bytes();
    const packet = this.buf.subarray(0, this.pos);
    const spare = this.spare.pop();
    this.buf = spare ? Buffer.from(spare) : Buffer.allocUnsafe(this.initialBytes);
    this.pos = 0;
    return packet;
  }

  /**
   * Takes back the buffer of an acknowledged packet for a later one: fresh multi-megabyte buffers
   * cost page faults on every chunk (bench/forward.ts at 4 MiB chunks: ~70k → ~110k records per
   * CPU-second). Only call this once nothing can still read the packet (see ForwardSink.onAck).
   */
  recycle(packet: Uint8Array): void {
    const ab = packet.buffer;
    if (ab instanceof ArrayBuffer && ab.byteLength === this.initialBytes && packet.byteOffset === 0 && this.spare.length < 8) this.spare.push(ab);
  }

  /** Appends `[EventTime(timeMs), record]`; millisecond precision (the nano part is ms × 10⁶). */
  appendEntry(timeMs: number, record: Record<string, unknown>): void {
    const t = EventTime.fromTimestamp(Math.floor(timeMs));
    this.ensure(11);
    const b = this.buf;
    b[this.pos++] = 0x92; // fixarray(2)
    b[this.pos++] = 0xd7; // fixext 8
    b[this.pos++] = 0x00; // ext type 0 = EventTime
    b.writeUInt32BE(t.epoch, this.pos);
    b.writeUInt32BE(t.nano, this.pos + 4);
    this.pos += 8;
    this.value(record, 0);
  }

  /** Encodes one value on its own (tests compare this with @msgpack/msgpack). */
  static encode(value: unknown): Buffer {
    const w = new EntryWriter(1024);
    w.value(value, 0);
    return w.bytes();
  }

  // ensure() is inlined wherever a value is written: kept small, so that V8's inlining budget
  // for value() also covers string(), key() and header() (see --trace-turbo-inlining).
  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private header(len: number, fix: number, fixMax: number, b8: number, b16: number, b32: number): void {
    this.ensure(5);
    const b = this.buf;
    if (len < fixMax) b[this.pos++] = fix | len;
    else if (b8 && len < 0x100) {
      b[this.pos++] = b8;
      b[this.pos++] = len;
    } else if (len < 0x10000) {
      b[this.pos++] = b16;
      b[this.pos++] = len >> 8;
      b[this.pos++] = len & 0xff;
    } else {
      b[this.pos++] = b32;
      b.writeUInt32BE(len, this.pos);
      this.pos += 4;
    }
  }

  private string(s: string): void {
    const n = s.length;
    if (n >= LONG_STRING) return this.longString(s);
    // UTF-8 takes one to three bytes per UTF-16 unit, so the header for `n` bytes is the smallest
    // the string can need: reserve it, let the encoder write in place, then write the real header,
    // moving the bytes in the rare case non-ASCII chars pushed the length past a header size.
    this.ensure(5 + 3 * n); // 5: header() below checks for that much room, which must not move the bytes
    const b = this.buf as Utf8Buffer;
    const start = this.pos;
    const reserved = n < 32 ? 1 : n < 0x100 ? 2 : 3;
    let len = 0;
    if (n < SHORT_STRING) {
      // ASCII loop; on the first non-ASCII char the native encoder writes the whole string.
      let p = start + 1;
      for (; len < n; len++) {
        const c = s.charCodeAt(len);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (len < n) len = b.utf8Write(s, start + 1);
    } else len = b.utf8Write(s, start + reserved);
    const needed = len < 32 ? 1 : len < 0x100 ? 2 : 3;
    if (needed > reserved) b.copyWithin(start + needed, start + reserved, start + reserved + len);
    this.header(len, 0xa0, 32, 0xd9, 0xda, 0xdb); // at `start`: this.pos has not moved
    this.pos += len;
  }

  private longString(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.header(len, 0xa0, 32, 0xd9, 0xda, 0xdb);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  private key(k: string): void {
    const bytes = this.keyCache.get(k) ?? this.encodeKey(k);
    const n = bytes.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = bytes[i]!;
    this.pos = p;
  }

  private encodeKey(k: string): Buffer {
    const start = this.pos;
    this.string(k);
    const bytes = Buffer.from(this.buf.subarray(start, this.pos));
    this.pos = start;
    if (this.keyCache.size < KEY_CACHE_LIMIT) this.keyCache.set(k, bytes);
    return bytes;
  }

  private number(v: number): void {
    this.ensure(9);
    const b = this.buf;
    if (Number.isSafeInteger(v)) {
      if (v >= 0) {
        if (v < 0x80) b[this.pos++] = v;
        else if (v < 0x100) {
          b[this.pos++] = 0xcc;
          b[this.pos++] = v;
        } else if (v < 0x10000) {
          b[this.pos++] = 0xcd;
          b[this.pos++] = v >> 8;
          b[this.pos++] = v & 0xff;
        } else if (v < 0x100000000) {
          b[this.pos++] = 0xce;
          b.writeUInt32BE(v, this.pos);
          this.pos += 4;
        } else {
          b[this.pos++] = 0xcf;
          b.writeUInt32BE(Math.floor(v / 0x100000000), this.pos);
          b.writeUInt32BE(v >>> 0, this.pos + 4);
          this.pos += 8;
        }
      } else if (v >= -0x20) b[this.pos++] = v & 0xff;
      else if (v >= -0x80) {
        b[this.pos++] = 0xd0;
        b.writeInt8(v, this.pos++);
      } else if (v >= -0x8000) {
        b[this.pos++] = 0xd1;
        b.writeInt16BE(v, this.pos);
        this.pos += 2;
      } else if (v >= -0x80000000) {
        b[this.pos++] = 0xd2;
        b.writeInt32BE(v, this.pos);
        this.pos += 4;
      } else {
        b[this.pos++] = 0xd3;
        b.writeBigInt64BE(BigInt(v), this.pos);
        this.pos += 8;
      }
    } else if (Number.isFinite(v)) {
      b[this.pos++] = 0xcb;
      b.writeDoubleBE(v, this.pos);
      this.pos += 8;
    } else {
      b[this.pos++] = 0xc0; // JSON turns NaN / Infinity into null
    }
  }

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        return this.number(v);
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xc3 : 0xc2;
        return;
      case 'bigint':
        return this.string(v.toString());
      case 'object': {
        if (v === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xc0;
          return;
        }
        if (depth >= MAX_DEPTH) throw new RecordEncodeError(`record nested deeper than ${MAX_DEPTH} levels (circular?)`);
        if (Array.isArray(v)) {
          const n = v.length;
          this.header(n, 0x90, 16, 0, 0xdc, 0xdd);
          for (let i = 0; i < n; i++) {
            const x: unknown = v[i];
            // JSON writes null for array members it cannot represent
            if (x === undefined || typeof x === 'function' || typeof x === 'symbol') this.value(null, depth + 1);
            else this.value(x, depth + 1);
          }
          return;
        }
        const obj = v as Record<string, unknown>;
        // Not `obj.toJSON` on plain objects: that load sees every object shape of the records, and
        // such a megamorphic lookup goes through V8's global stub cache, which in about half of the
        // process starts kept missing (perf: LoadIC_Megamorphic 15% of the time, ~33 instead of
        // ~17 µs per alert). A plain object can only have an own toJSON or Object.prototype's.
        const toJSON = Object.getPrototypeOf(obj) !== Object.prototype || hasOwn.call(obj, 'toJSON') ? obj.toJSON : objectProto.toJSON;
        if (typeof toJSON === 'function') return this.value((toJSON as () => unknown).call(v), depth + 1);
        // for...in rather than Object.keys(): no array per object, and V8 reads `obj[k]` through
        // the enum cache instead of a keyed lookup. It also lists inherited enumerable keys, which
        // JSON (and so this encoder) skips.
        let n = 0;
        for (const k in obj) if (hasOwn.call(obj, k)) n++;
        // Optimistic single pass: members JSON would skip are rare, so write the header for all
        // keys and only on meeting one rewind and write the map again, counting first.
        const start = this.pos;
        this.header(n, 0x80, 16, 0, 0xde, 0xdf);
        for (const k in obj) {
          if (!hasOwn.call(obj, k)) continue;
          const x = obj[k];
          if (!representable(x)) {
            this.pos = start;
            return this.sparseMap(obj, depth);
          }
          this.key(k);
          this.value(x, depth + 1);
        }
        return;
      }
      default:
        // undefined / function / symbol at the top level: nil (never reached for records)
        this.ensure(1);
        this.buf[this.pos++] = 0xc0;
    }
  }

  private sparseMap(obj: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(obj);
    let n = 0;
    for (const k of keys) if (representable(obj[k])) n++;
    this.header(n, 0x80, 16, 0, 0xde, 0xdf);
    for (const k of keys) {
      const x = obj[k];
      if (!representable(x)) continue;
      this.key(k);
      this.value(x, depth + 1);
    }
  }
}

function representable(x: unknown): boolean {
  return x !== undefined && typeof x !== 'function' && typeof x !== 'symbol';
}
