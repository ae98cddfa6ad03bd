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
 * same keys thousands of times) and an ASCII fast path for short strings.
 *
 * Output is byte-identical to @msgpack/msgpack for JSON values (test/forward-msgpack.test.ts
 * checks this), with JSON semantics for the rest, so forward and stdout carry the same data:
 * `toJSON()` is honoured (Date → ISO string), object members that are undefined / functions /
 * symbols are skipped, NaN and ±Infinity become nil, bigint becomes its decimal string.
 */

const MAX_DEPTH = 100;
const KEY_CACHE_LIMIT = 4096;

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

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
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
    if (n < 256) {
      // ASCII fast path: one byte per char (fixstr or str8 header); bail out on the first
      // non-ASCII char. Cheaper than a native write call for the short strings records are made of.
      this.ensure(2 + n);
      const b = this.buf;
      const start = this.pos;
      let p = start;
      if (n < 32) b[p++] = 0xa0 | n;
      else {
        b[p++] = 0xd9;
        b[p++] = n;
      }
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.stringSlow(s);
        b[p++] = c;
      }
      this.pos = p;
      return;
    }
    this.stringSlow(s);
  }

  private stringSlow(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.header(len, 0xa0, 32, 0xd9, 0xda, 0xdb);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  private key(k: string): void {
    let bytes = this.keyCache.get(k);
    if (bytes === undefined) {
      const start = this.pos;
      this.string(k);
      bytes = Buffer.from(this.buf.subarray(start, this.pos));
      this.pos = start;
      if (this.keyCache.size < KEY_CACHE_LIMIT) this.keyCache.set(k, bytes);
    }
    const n = bytes.length;
    this.ensure(n);
    const b = this.buf;
    for (let i = 0; i < n; i++) b[this.pos++] = bytes[i]!;
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
        const toJSON = (v as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === 'function') return this.value((toJSON as () => unknown).call(v), depth + 1);
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj);
        // Optimistic single pass: members JSON would skip are rare, so write the header for all
        // keys and only on meeting one rewind and write the map again, counting first.
        const start = this.pos;
        const n = keys.length;
        this.header(n, 0x80, 16, 0, 0xde, 0xdf);
        for (let i = 0; i < n; i++) {
          const k = keys[i]!;
          const x = obj[k];
          if (!representable(x)) {
            this.pos = start;
            return this.sparseMap(obj, keys, depth);
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

  private sparseMap(obj: Record<string, unknown>, keys: string[], depth: number): void {
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
