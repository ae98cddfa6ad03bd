// Runtime helpers the compiled transforms call. They run once per field per record, so they are
// written for speed (no regex on the common paths) and never throw: a value that cannot be
// converted becomes undefined, which makes the rule set nothing (the raw entity keeps the original).
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

const days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function monthDays(y: number, mo: number): number {
  return mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : (days[mo - 1] as number);
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil): integer arithmetic, several times faster than Date.UTC. */
function daysFromCivil(y: number, mo: number, d: number): number {
  const yy = mo <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

/**
 * A conversion: fn for text, with its answers for recent texts remembered, other for any other value.
 * A record repeats its texts across fields (alertCreationTime is timestamp and alert_creation_time;
 * evidence items share creation times; a hash is in the evidence, its list and the file fields; a
 * machine's MAC and name are in all its alerts), so most conversions are answered here. One slot per text, chosen from two of its characters and its
 * length: a lookup is one comparison (a scan of several slots cost as much as it saved). The mix folds
 * high bits down: with `a * 31 + b` alone, 31 ≡ -1 modulo the slot count made the slot a difference of
 * two characters, and an alert's four hashes took turns evicting each other.
 */
function remembered<T>(fn: (s: string) => T, other: (v: unknown) => T): (v: unknown) => T {
  // Every slot starts as the empty text with its answer: the keys are always strings, so comparing
  // one with s is a string comparison, not the generic one for mixed types (~2 % of the alert transform).
  const keys: string[] = new Array<string>(32).fill('');
  const values: T[] = new Array<T>(32).fill(fn(''));
  // the type test and the lookup in one closure: a remembered answer costs one call, not two
  return (s) => {
    if (typeof s !== 'string') return other(s);
    const n = s.length;
    const h = (s.charCodeAt(n - 2) * 31 + s.charCodeAt(n >> 1)) * 31 + n;
    const slot = (h ^ (h >> 5)) & 31;
    if (keys[slot] === s) return values[slot] as T;
    const v = fn(s);
    keys[slot] = s;
    values[slot] = v;
    return v;
  };
}

const notText = (): undefined => undefined;

/** A conversion of text (remembered); anything that is not a string converts to undefined. */
function textConversion(fn: (s: string) => string | undefined): (v: unknown) => string | undefined {
  return remembered(fn, notText);
}

/**
 * ISO-8601 (`2025-06-10T08:14:22.3310452Z`, up to 7+ fractional digits, Z or ±hh:mm, none = UTC)
 * and the export API's `2025-06-10 03:02:19[.fffffff]` (UTC assumed) to epoch milliseconds; a number
 * is taken as epoch milliseconds already. Date.parse is not used: it reads the space form as local time.
 */
export const epochMs = remembered(parseTime, (v) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : undefined));

/** Two decimal digits at i, or -1. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

// Days of the last date converted: an alert's times share their day.
let lastDate = -1;
let lastDays = 0;

/**
 * Defender's own form, `2025-06-10T08:14:22[.fffffff]Z`, read in one pass (parseTime was the biggest
 * helper of the alert transform); undefined for anything else, which parseTime then reads.
 */
function parseUtc(s: string): number | undefined {
  const n = s.length;
  if (n < 20 || s.charCodeAt(n - 1) !== 90 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return undefined;
  const y1 = two(s, 0);
  const y2 = two(s, 2);
  const mo = two(s, 5);
  const d = two(s, 8);
  const h = two(s, 11);
  const mi = two(s, 14);
  const sec = two(s, 17);
  if (y1 < 0 || y2 < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 24 || mi < 0 || mi > 59 || sec < 0 || sec > 60) return undefined;
  let ms = 0;
  if (n > 20) {
    if (s.charCodeAt(19) !== 46 || n === 21) return undefined;
    for (let i = 20; i < n - 1; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return undefined;
      if (i < 23) ms = ms * 10 + c; // milliseconds: the first three digits, the rest truncated
    }
    if (n === 22) ms *= 100;
    else if (n === 23) ms *= 10;
  }
  const y = y1 * 100 + y2;
  const date = (y * 16 + mo) * 32 + d;
  if (date !== lastDate) {
    if (d > monthDays(y, mo)) return undefined;
    lastDays = daysFromCivil(y, mo, d);
    lastDate = date;
  }
  return ((lastDays * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms;
}

function parseTime(v: string): number | undefined {
  const utc = parseUtc(v);
  if (utc !== undefined) return utc;
  const s = v.length > 0 && (v.charCodeAt(0) === 32 || v.charCodeAt(v.length - 1) === 32) ? v.trim() : v;
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return undefined;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 7);
  const d = digits(s, 8, 10);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > monthDays(y, mo)) return undefined;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  let off = 0;
  let i = 10;
  if (i < n) {
    const sep = s.charCodeAt(i);
    if (sep !== 84 && sep !== 116 && sep !== 32) return undefined; // T t space
    if (n < 16 || s.charCodeAt(13) !== 58) return undefined;
    h = digits(s, 11, 13);
    mi = digits(s, 14, 16);
    if (h < 0 || h > 24 || mi < 0 || mi > 59) return undefined;
    i = 16;
    if (i < n && s.charCodeAt(i) === 58) {
      if (n < 19) return undefined;
      sec = digits(s, 17, 19);
      if (sec < 0 || sec > 60) return undefined;
      i = 19;
      const dot = i < n ? s.charCodeAt(i) : 0;
      if (dot === 46 || dot === 44) {
        i++;
        const start = i;
        while (i < n) {
          const c = s.charCodeAt(i) - 48;
          if (c < 0 || c > 9) break;
          // milliseconds: the first three digits, the rest truncated
          if (i - start < 3) ms = ms * 10 + c;
          i++;
        }
        if (i === start) return undefined;
        if (i - start === 1) ms *= 100;
        else if (i - start === 2) ms *= 10;
      }
    }
    if (i < n) {
      const z = s.charCodeAt(i);
      if ((z === 90 || z === 122) && i === n - 1) i++;
      else if (z === 43 || z === 45) {
        const rest = s.slice(i + 1);
        let oh: number;
        let om: number;
        if (rest.length === 5 && rest.charCodeAt(2) === 58) {
          oh = digits(rest, 0, 2);
          om = digits(rest, 3, 5);
        } else if (rest.length === 4) {
          oh = digits(rest, 0, 2);
          om = digits(rest, 2, 4);
        } else if (rest.length === 2) {
          oh = digits(rest, 0, 2);
          om = 0;
        } else return undefined;
        if (oh < 0 || om < 0 || oh > 23 || om > 59) return undefined;
        off = (oh * 60 + om) * 60000 * (z === 43 ? 1 : -1);
        i = n;
      } else return undefined;
    }
  }
  return ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms - off;
}

export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function toStr(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

export const lower = remembered(
  (s: string): string | undefined => s.toLowerCase(),
  (v) => toStr(v)?.toLowerCase(),
);

export function upper(v: unknown): string | undefined {
  const s = toStr(v);
  return s === undefined ? undefined : s.toUpperCase();
}

// An address from the API is already in canonical form: it is returned as it is (building the text
// part by part made a rope of seven pieces, for each address of each alert).
function ipv4(s: string): string | undefined {
  let part = 0;
  let len = 0;
  let parts = 0;
  let canonical = true;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (len === 0 || len > 3 || part > 255) return undefined;
      parts++;
      part = 0;
      len = 0;
    } else if (c >= 48 && c <= 57) {
      if (len === 1 && part === 0) canonical = false; // a leading zero
      part = part * 10 + (c - 48);
      len++;
    } else return undefined;
  }
  if (parts !== 4) return undefined;
  return canonical ? s : s.split('.').map(Number).join('.');
}

/** Normalised IP text: IPv4 without leading zeros, IPv6 in RFC 5952 form (lower case, compressed), IPv4-mapped IPv6 as IPv4, zone and brackets removed. */
export const ip = textConversion((v: string): string | undefined => {
  let s = v.trim();
  if (s.length === 0) return undefined;
  const v4 = ipv4(s);
  if (v4 !== undefined) return v4;
  if (s.charCodeAt(0) === 91 && s.charCodeAt(s.length - 1) === 93) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  s = s.toLowerCase();
  if (s.startsWith('::ffff:')) {
    const m = ipv4(s.slice(7));
    if (m !== undefined) return m;
  }
  if (!isIPv6(s)) return undefined;
  // The WHATWG URL parser serialises IPv6 hosts canonically (RFC 5952); IPv6 is rare enough here.
  return new URL(`http://[${s}]/`).hostname.slice(1, -1);
});

const hex = '0123456789abcdef';
/** aa:bb:cc:dd:ee:ff from any of 00155D0A1B2C, 00-15-5D-0A-1B-2C, 00:15:5d:0a:1b:2c, 0015.5d0a.1b2c; the all-zero MAC (loopback) is dropped. */
export const mac = textConversion((v: string): string | undefined => {
  let out = '';
  let n = 0;
  let zero = true;
  for (let i = 0; i < v.length; i++) {
    let c = v.charCodeAt(i);
    if (c === 58 || c === 45 || c === 46 || c === 32) continue;
    if (c >= 65 && c <= 70) c += 32;
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else return undefined;
    if (d !== 0) zero = false;
    if (n > 0 && n % 2 === 0) out += ':';
    out += hex[d];
    n++;
    if (n > 12) return undefined;
  }
  return n === 12 && !zero ? out : undefined;
});

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  // A "__proto__" key from JSON.parse is an ordinary field: keep it as one instead of changing o's prototype.
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Deep copy without nulls and empty strings (objects and arrays kept, even when they end up empty). */
export function clean(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x === null || x === undefined || x === '') continue;
      out.push(typeof x === 'object' ? clean(x) : x);
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    if (x === null || x === undefined || x === '') continue;
    if (k === '__proto__') setKey(out, k, typeof x === 'object' ? clean(x) : x);
    else out[k] = typeof x === 'object' ? clean(x) : x;
  }
  return out;
}

/** A copied array value (from a path whose schema type is array): nulls and empty strings dropped; undefined when empty. */
export function cleanArray(v: unknown): unknown[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out = clean(v) as unknown[];
  return out.length ? out : undefined;
}

/** Lower-case ASCII words joined by "-" (a stable name from a title), at most 80 characters. */
export function slug(v: unknown): string | undefined {
  const s = toStr(v);
  if (s === undefined) return undefined;
  const out = s.normalize('NFKD').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80).replace(/-+$/, '');
  return out || undefined;
}

/** The host of a URL, lower case (a bare "host/path" is read as http); undefined when it does not parse. */
export const urlHost = textConversion((v: string): string | undefined => {
  if (!v.trim()) return undefined;
  const s = v.trim();
  const plain = plainHttpHost(s);
  if (plain !== undefined) return plain;
  try {
    const host = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`).hostname;
    return host ? host.replace(/^\[|\]$/g, '').toLowerCase() : undefined;
  } catch {
    return undefined;
  }
});

// new URL() was a fifth of the alert transform: the common case, an http(s) URL (or a bare
// "host/path") whose host is a plain DNS name, is read here with the URL parser's result. Anything
// else (userinfo, port, IP address, punycode, percent-encoding, other schemes) goes to the parser.
/** The lower-case host of `http(s)://host…` or a scheme-less `host…` when host is letters, digits, hyphens and non-empty dot-separated labels, the last one starting with a letter; otherwise undefined. */
function plainHttpHost(s: string): string | undefined {
  const n = s.length;
  let i = 0;
  if (n > 7 && (s.charCodeAt(0) | 32) === 104 && (s.charCodeAt(1) | 32) === 116 && (s.charCodeAt(2) | 32) === 116 && (s.charCodeAt(3) | 32) === 112) {
    i = (s.charCodeAt(4) | 32) === 115 ? 5 : 4; // https / http
    if (s.charCodeAt(i) !== 58 || s.charCodeAt(i + 1) !== 47 || s.charCodeAt(i + 2) !== 47) return undefined;
    i += 3;
  }
  const start = i;
  let label = i;
  let upper = false;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35 || c === 92) break; // / ? # \ end the host
    if (c === 46) {
      if (i === label) return undefined; // empty label
      label = i + 1;
    } else if (c >= 65 && c <= 90) upper = true;
    else if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45)) return undefined;
  }
  // a last label starting with a digit may be an IPv4 number; a host without a scheme may be "scheme:…" (":" already sent it back)
  const first = s.charCodeAt(label) | 32;
  if (label >= i || first < 97 || first > 122) return undefined;
  const host = s.slice(start, i);
  const lowerHost = upper ? host.toLowerCase() : host;
  return lowerHost.includes('xn--') ? undefined : lowerHost;
}

/** First label of a host name, lower case (TESTSERVER4.contoso.local → testserver4). */
export const hostLabel = textConversion((v: string): string | undefined => {
  const s = v.trim().toLowerCase();
  const dot = s.indexOf('.');
  return (dot < 0 ? s : s.slice(0, dot)) || undefined;
});

/** DNS domain of a host name: what follows the first label, lower case; undefined for a bare name. */
export const dnsDomain = textConversion((v: string): string | undefined => {
  const t = v.trim().toLowerCase();
  const s = t.endsWith('.') ? t.slice(0, -1) : t; // one trailing dot (a fully qualified name)
  const dot = s.indexOf('.');
  return dot < 0 ? undefined : s.slice(dot + 1) || undefined;
});

export function integer(v: unknown): number | undefined {
  const n = toNumber(v);
  return n === undefined ? undefined : Math.round(n);
}

// ipaddr.js parses an address into objects on every call; the same few addresses recur across a
// tenant's hosts and alerts, so classes are remembered (bounded: the map starts afresh when full).
const ipClassCache = new Map<string, string | null>();
const ipClassCacheMax = 10_000;

// An address is classed several times per record (item preferences, conditions, flags): a slot compare is cheaper than hashing a new text for the map.
/** The ipaddr.js range of an address, "public" for global unicast; undefined when v is not an IP address. */
export const ipClass = textConversion((v: string): string | undefined => {
  const known = ipClassCache.get(v);
  if (known !== undefined) return known ?? undefined;
  const r = classify(v);
  if (ipClassCache.size >= ipClassCacheMax) ipClassCache.clear();
  ipClassCache.set(v, r ?? null);
  return r;
});

function classify(v: string): string | undefined {
  let s = v.trim();
  if (s.charCodeAt(0) === 91 && s.charCodeAt(s.length - 1) === 93) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (!ipaddr.isValid(s)) return undefined;
  let a = ipaddr.parse(s);
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
  const r = a.range();
  return r === 'unicast' ? 'public' : r;
}

/** Whether v is an IP address of one of the classes ("private" includes IPv6 unique-local addresses). */
export function inIpClasses(v: unknown, classes: Set<string>): boolean {
  const r = ipClass(v);
  return r !== undefined && (classes.has(r) || (r === 'uniqueLocal' && classes.has('private')));
}

export const conversions = { epochMs, number: toNumber, string: toStr, lower, upper, ip, mac, slug, urlHost, hostLabel, dnsDomain, integer } as const;
export type ConversionName = keyof typeof conversions;
