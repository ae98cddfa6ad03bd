// Timestamp formats the Defender API uses, and the OData DateTimeOffset literal parser.

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO-8601 UTC with the fraction trimmed the way Defender prints lastUpdateTime ("…:24.61Z", "…:24Z"). */
export function isoTrimmed(ms: number): string {
  const s = new Date(ms).toISOString(); // 2025-06-10T08:14:24.610Z
  const frac = s.slice(20, 23).replace(/0+$/, '');
  return frac ? `${s.slice(0, 19)}.${frac}Z` : `${s.slice(0, 19)}Z`;
}

/** ISO-8601 UTC with 7 fraction digits, as in alertCreationTime ("2025-06-10T08:14:22.3310000Z"). */
export function iso7(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 23)}0000Z`;
}

/** Export-API timestamps: "YYYY-MM-DD HH:MM:SS" (no zone, UTC). */
export function exportTimestamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/**
 * A DateTimeOffset literal split into whole milliseconds and the sub-millisecond rest (in 100 ns
 * ticks), so that `gt`/`ge` against 7-digit client values compare exactly with our ms timestamps.
 */
export interface Instant {
  ms: number;
  subTicks: number;
}

const literal = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})$/;

export function parseDateTimeOffset(text: string): Instant | null {
  const m = literal.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', frac = '', zone] = m;
  const base = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(base)) return null;
  const check = new Date(base);
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const digits = frac.padEnd(7, '0');
  let ms = base + Number(digits.slice(0, 3));
  if (zone !== 'Z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    ms -= sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6))) * 60000;
  }
  return { ms, subTicks: Number(digits.slice(3)) };
}

export type CompareOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';

/** Compares a whole-millisecond timestamp `t` with a literal, exactly. */
export function compareInstant(t: number, op: CompareOp, v: Instant): boolean {
  // t is (ms, 0); v is (ms, sub). t > v  <=>  t.ms > v.ms (a later ms always wins; same ms: 0 > sub never).
  const after = t > v.ms;
  const equal = t === v.ms && v.subTicks === 0;
  const before = t < v.ms || (t === v.ms && v.subTicks > 0);
  switch (op) {
    case 'gt':
      return after;
    case 'ge':
      return after || equal;
    case 'lt':
      return before;
    case 'le':
      return before || equal;
    case 'eq':
      return equal;
    case 'ne':
      return !equal;
  }
}
