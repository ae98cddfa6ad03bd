// A small seeded PRNG (sfc32) plus helpers. Every generated entity derives its own stream from
// (seed, kind, index) so entities can be regenerated on demand in any order and still be identical:
// that is what lets the emulator serve a million vulnerability records without holding them.

/** 32-bit integer mix (murmur3 finaliser): spreads nearby inputs across the whole range. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Combines a seed with a stream name and indexes into one 32-bit seed. */
export function deriveSeed(seed: number, stream: string, ...indexes: number[]): number {
  let h = mix32(seed ^ 0x9e3779b9);
  for (let i = 0; i < stream.length; i++) h = mix32(h ^ stream.charCodeAt(i));
  for (const n of indexes) {
    h = mix32(h ^ (n >>> 0));
    h = mix32(h ^ Math.floor(n / 0x100000000));
  }
  return h;
}

const hex16: string[] = Array.from({ length: 0x10000 }, (_, i) => i.toString(16).padStart(4, '0'));

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 12; i++) this.next();
  }

  static for(seed: number, stream: string, ...indexes: number[]): Rng {
    return new Rng(deriveSeed(seed, stream, ...indexes));
  }

  /** uniform in [0, 2^32) */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** uniform in [0, 1) */
  float(): number {
    return this.next() / 4294967296;
  }

  /** integer in [min, max] */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)] as T;
  }

  hex(length: number): string {
    let s = '';
    for (let i = 0; i < length; i += 4) {
      const n = this.next();
      s += hex16[n & 0xffff]!;
    }
    return s.length === length ? s : s.slice(0, length);
  }

  digits(length: number): string {
    let s = '';
    while (s.length < length) s += String(this.next() % 1000000000).padStart(9, '0');
    return s.slice(0, length);
  }

  guid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[this.next() % 4]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }
}
