// The receiving side of the Forward protocol for the benchmarks' servers: splits a TCP stream into
// PackedForward messages and walks their entries without building JS objects (the stand-in for a
// native receiver such as Fluent Bit; see bench/README.md). Used by bench/proc/fluent.ts.
import { gunzipSync } from 'node:zlib';
import { decode } from '@msgpack/msgpack';

/** A stream or a message that is not what ForwardSink sends: the connection cannot continue. */
export class ForwardFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForwardFrameError';
  }
}

/** One PackedForward message `[tag, entries, option?]` (the only mode ForwardSink sends). */
export interface PackedForward {
  tag: string;
  /** the packed entries as received (gzip members when option.compressed is 'gzip'); valid during onMessage() only */
  entries: Buffer;
  /** the option map decoded whole, unknown keys included; {} when the message has none */
  option: Record<string, unknown>;
}

/** skipValue() result when the value runs past `end`. */
export const NEED_MORE = -1;

const u16 = (b: Uint8Array, p: number) => (b[p]! << 8) | b[p + 1]!;
const u32 = (b: Uint8Array, p: number) => b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);

/**
 * Returns the offset just after the msgpack value at `p`, reading only type bytes and lengths: no
 * string is decoded, no object built. NEED_MORE if the value does not end before `end`. Iterative
 * (a count of values still to skip), so nesting depth costs nothing and every step consumes at
 * least one byte: hostile lengths cannot make it loop past `end`.
 */
export function skipValue(b: Uint8Array, p: number, end: number): number {
  let pending = 1;
  while (pending > 0) {
    if (p >= end) return NEED_MORE;
    const t = b[p]!;
    pending--;
    if (t < 0x80 || t >= 0xe0) p += 1; // positive / negative fixint
    else if (t < 0x90) (pending += 2 * (t & 0x0f)), (p += 1); // fixmap
    else if (t < 0xa0) (pending += t & 0x0f), (p += 1); // fixarray
    else if (t < 0xc0) p += 1 + (t & 0x1f); // fixstr
    else {
      // Every other type has a header of at most 6 bytes: read its length only once it is there.
      if (p + 6 > end && p + headerBytes(t) > end) return NEED_MORE;
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: p += 1; break; // nil, false, true
        case 0xcc: case 0xd0: p += 2; break; // (u)int8
        case 0xcd: case 0xd1: p += 3; break; // (u)int16
        case 0xca: case 0xce: case 0xd2: p += 5; break; // float32, (u)int32
        case 0xcb: case 0xcf: case 0xd3: p += 9; break; // float64, (u)int64
        case 0xd4: p += 3; break; // fixext 1
        case 0xd5: p += 4; break; // fixext 2
        case 0xd6: p += 6; break; // fixext 4
        case 0xd7: p += 10; break; // fixext 8
        case 0xd8: p += 18; break; // fixext 16
        case 0xc4: case 0xd9: p += 2 + b[p + 1]!; break; // bin8, str8
        case 0xc5: case 0xda: p += 3 + u16(b, p + 1); break; // bin16, str16
        case 0xc6: case 0xdb: p += 5 + u32(b, p + 1); break; // bin32, str32
        case 0xc7: p += 3 + b[p + 1]!; break; // ext8 (length, type)
        case 0xc8: p += 4 + u16(b, p + 1); break; // ext16
        case 0xc9: p += 6 + u32(b, p + 1); break; // ext32
        case 0xdc: pending += u16(b, p + 1); p += 3; break; // array16
        case 0xdd: pending += u32(b, p + 1); p += 5; break; // array32
        case 0xde: pending += 2 * u16(b, p + 1); p += 3; break; // map16
        case 0xdf: pending += 2 * u32(b, p + 1); p += 5; break; // map32
        default: throw new ForwardFrameError(`msgpack: byte 0x${t.toString(16)} at offset ${p} is not a type (never used)`);
      }
    }
  }
  return p <= end ? p : NEED_MORE;
}

/** Bytes of type byte + length fields (those that skipValue reads before skipping the payload). */
function headerBytes(t: number): number {
  if (t === 0xc4 || t === 0xd9) return 2;
  if (t === 0xc5 || t === 0xda || t === 0xc7 || t === 0xdc || t === 0xde) return 3;
  if (t === 0xc8) return 4;
  if (t === 0xc6 || t === 0xdb || t === 0xdd || t === 0xdf) return 5;
  if (t === 0xc9) return 6;
  return 1;
}

const isStr = (t: number) => (t & 0xe0) === 0xa0 || (t >= 0xd9 && t <= 0xdb);
const isBin = (t: number) => t >= 0xc4 && t <= 0xc6;

/** [payload start, payload length] of the str or bin at `p` (the caller checked the type); NEED_MORE as start if its header is cut. */
function payload(b: Uint8Array, p: number, end: number): [number, number] {
  const t = b[p]!;
  const hdr = (t & 0xe0) === 0xa0 ? 1 : t === 0xc4 || t === 0xd9 ? 2 : t === 0xc5 || t === 0xda ? 3 : 5;
  if (p + hdr > end) return [NEED_MORE, 0];
  return [p + hdr, hdr === 1 ? t & 0x1f : hdr === 2 ? b[p + 1]! : hdr === 3 ? u16(b, p + 1) : u32(b, p + 1)];
}

/**
 * Splits a byte stream into PackedForward messages. Messages may be cut at any byte across reads,
 * and many may come in one read. The entries are not decoded, and a partial message is not
 * re-copied on every read (the library's stream decoder does both, which makes a 4 MB message cost
 * O(n²) and would measure the server, not the sink): a message that spans reads is copied once,
 * when its last entry has arrived, into a buffer reused from message to message.
 * Throws ForwardFrameError on anything else (Message or Forward mode, a handshake, an option that
 * is not a map); the caller should drop the connection, as the stream cannot be resynchronised.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private length = 0;
  private scratch = Buffer.alloc(0);
  /** the current message once its header is read; `entries` once all of them have arrived */
  private head: { tag: string; items: number; entriesStart: number; entriesEnd: number; entries?: Buffer } | undefined;

  constructor(private readonly onMessage: (m: PackedForward) => void) {}

  push(data: Buffer): void {
    this.parts.push(data);
    this.length += data.length;
    for (;;) {
      if (!this.head && !(this.head = this.readHeader())) return;
      const h = this.head;
      if (!h.entries) {
        if (this.length < h.entriesEnd) return;
        const all = this.joinInScratch(h.entriesEnd);
        h.entries = all.subarray(h.entriesStart, h.entriesEnd);
        this.drop(h.entriesEnd); // the option is read from the (small) rest
      }
      let option: Record<string, unknown> = {};
      let end = 0;
      if (h.items === 3) {
        if (this.length === 0) return;
        const rest = this.flat();
        end = skipValue(rest, 0, rest.length);
        if (end === NEED_MORE) return;
        const o = decode(rest.subarray(0, end));
        if (typeof o !== 'object' || o === null || Array.isArray(o) || o instanceof Uint8Array) throw new ForwardFrameError(`PackedForward option is not a map: ${JSON.stringify(o)}`);
        option = o as Record<string, unknown>;
      }
      this.drop(end);
      this.head = undefined;
      this.onMessage({ tag: h.tag, entries: h.entries, option });
    }
  }

  private flat(): Buffer {
    return this.prefix(this.length);
  }

  /** A buffer that starts at the first byte held and has its first `n` bytes (or all held): joins only the parts they span. */
  private prefix(n: number): Buffer {
    let k = 0;
    let bytes = 0;
    while (bytes < n && k < this.parts.length) bytes += this.parts[k++]!.length;
    if (k > 1) this.parts.splice(0, k, Buffer.concat(this.parts.slice(0, k), bytes));
    return this.parts[0] ?? Buffer.alloc(0);
  }

  /**
   * Like prefix(n), but joins into one buffer reused from message to message: a fresh multi-MB
   * buffer per message costs the page faults of touching it, which took most of the server's CPU.
   */
  private joinInScratch(n: number): Buffer {
    if (this.parts[0]!.length >= n) return this.parts[0]!;
    if (this.scratch.length < this.length) this.scratch = Buffer.allocUnsafe(Math.max(this.length, 2 * this.scratch.length));
    let at = 0;
    for (const part of this.parts) at += part.copy(this.scratch, at);
    const all = this.scratch.subarray(0, this.length);
    this.parts = [all];
    return all;
  }

  private drop(n: number): void {
    let rest = this.flat().subarray(n);
    // The next joinInScratch() overwrites the scratch buffer: keep what follows out of it.
    if (rest.buffer === this.scratch.buffer) rest = Buffer.from(rest);
    this.parts = rest.length ? [rest] : [];
    this.length = rest.length;
  }

  /** Reads `[` tag, entries header (a few bytes); undefined if they have not all arrived. */
  private readHeader(): FrameReader['head'] {
    let b = this.prefix(6); // fixarray, the tag's str header (≤ 5 bytes)
    if (b.length === 0) return undefined;
    const a = b[0]!;
    if (a !== 0x92 && a !== 0x93) throw new ForwardFrameError(`not a PackedForward message: first byte 0x${a.toString(16)} (want an array of 2 or 3)`);
    if (b.length < 2) return undefined;
    if (!isStr(b[1]!)) throw new ForwardFrameError(`not a PackedForward message: the tag is not a string (type byte 0x${b[1]!.toString(16)})`);
    const [tagStart, tagLength] = payload(b, 1, b.length);
    if (tagStart === NEED_MORE) return undefined;
    const p = tagStart + tagLength;
    b = this.prefix(p + 5); // + the entries' bin / str header
    if (b.length <= p) return undefined;
    const e = b[p]!;
    if (!isBin(e) && !isStr(e)) throw new ForwardFrameError(`not a PackedForward message: the entries are not a bin or str (type byte 0x${e.toString(16)}; Forward mode is not supported)`);
    const [entriesStart, entriesLength] = payload(b, p, b.length);
    if (entriesStart === NEED_MORE) return undefined;
    return { tag: b.toString('utf8', tagStart, p), items: a & 0x0f, entriesStart, entriesEnd: entriesStart + entriesLength };
  }
}

/** The entries of a message, gunzipped if the option says so (CompressedPackedForward). */
export function plainEntries(m: PackedForward): Buffer {
  const c = m.option.compressed;
  if (c === undefined || c === 'text') return m.entries;
  if (c === 'gzip') return gunzipSync(m.entries);
  throw new ForwardFrameError(`unsupported option compressed: ${JSON.stringify(c)}`);
}

/**
 * Walks packed entries and checks each is `[time, record]`: a 2-element array whose time is an
 * EventTime (fixext 8, type 0) or an integer, and whose record is a map with string keys. Values
 * inside the record are skipped by length (strings are not UTF-8-checked). Returns the number of
 * entries, or the first problem with its entry index and byte offset.
 */
export function walkEntries(b: Buffer): { count: number; error?: string } {
  let count = 0;
  for (let p = 0; p < b.length; count++) {
    try {
      p = entryEnd(b, p);
    } catch (e) {
      if (!(e instanceof ForwardFrameError)) throw e;
      return { count, error: `entry ${count} (byte ${p} of ${b.length}): ${e.message}` };
    }
  }
  return { count };
}

const bad = (what: string, t?: number): never => {
  throw new ForwardFrameError(t === undefined ? what : `${what} (type byte 0x${t.toString(16)})`);
};

/** The end of the entry at `p`; throws ForwardFrameError if it is not `[time, record]` or is cut. */
function entryEnd(b: Buffer, p: number): number {
  const end = b.length;
  const t = b[p]!;
  if (t === 0x92) p += 1;
  else if (t === 0xdc && p + 3 <= end && u16(b, p + 1) === 2) p += 3;
  else if (t === 0xdd && p + 5 <= end && u32(b, p + 1) === 2) p += 5;
  else bad('not a 2-element array', t);
  if (p >= end) bad('cut after the array header');
  const tt = b[p]!;
  if (tt === 0xd7 && b[p + 1] === 0x00) p += 10;
  else if (tt < 0x80 || tt >= 0xe0 || (tt >= 0xcc && tt <= 0xd3)) p = skipValue(b, p, end);
  else bad('the time is neither an EventTime (fixext 8, type 0) nor an integer', tt);
  if (p === NEED_MORE || p >= end) bad('cut before the record');
  const m = b[p]!;
  let keys = 0;
  if ((m & 0xf0) === 0x80) (keys = m & 0x0f), (p += 1);
  else if (m === 0xde && p + 3 <= end) (keys = u16(b, p + 1)), (p += 3);
  else if (m === 0xdf && p + 5 <= end) (keys = u32(b, p + 1)), (p += 5);
  else bad('the record is not a map', m);
  for (let k = 0; k < keys; k++) {
    if (p >= end) bad('cut inside the record');
    if (!isStr(b[p]!)) bad(`record key ${k} is not a string`, b[p]);
    p = skipValue(b, p, end);
    if (p !== NEED_MORE) p = skipValue(b, p, end);
    if (p === NEED_MORE) bad('cut inside the record');
  }
  return p;
}
