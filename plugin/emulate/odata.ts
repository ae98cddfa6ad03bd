// The slice of OData the Defender list APIs accept: `field op value` clauses joined by `and`,
// $top / $skip. Anything else is a 400 ODataError, as the real API answers an invalid query.
import { compareInstant, parseDateTimeOffset, type CompareOp, type Instant } from './time.js';

export class ODataError extends Error {}

export type Clause = { field: string; op: CompareOp; value: { kind: 'date'; instant: Instant; text: string } | { kind: 'string'; text: string } };

const clauseRe = /^\s*([A-Za-z][A-Za-z0-9]*)\s+(eq|ne|gt|ge|lt|le)\s+('(?:[^']|'')*'|[^\s']+)\s*$/;

/** Splits on `sep` (anchored with ^) outside quotes ('…', "…") and parentheses; the parts trimmed. OData $filter and the emulator's KQL use it. */
export function splitOutside(text: string, sep: RegExp): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (depth === 0) {
      const m = sep.exec(text.slice(i));
      if (m && m.index === 0) {
        parts.push(cur);
        cur = '';
        i += m[0].length - 1;
        continue;
      }
    }
    cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim());
}

const splitAnd = (filter: string): string[] => splitOutside(filter, /^\s+and\s+/i);

/**
 * Parses `$filter`. `fields` maps each filterable field to its type; DateTimeOffset values are
 * unquoted literals (2025-06-10T08:14:24.61Z), strings are quoted ('Pending').
 */
export function parseFilter(filter: string, fields: Record<string, 'date' | 'string'>): Clause[] {
  if (/\bor\b|\bnot\b|\(|\)/i.test(filter.replace(/'(?:[^']|'')*'/g, "''"))) {
    throw new ODataError(`Invalid filter clause: only 'and' of simple comparisons is supported (got "${filter}")`);
  }
  return splitAnd(filter).map((part) => {
    const m = clauseRe.exec(part);
    if (!m) throw new ODataError(`Invalid filter clause "${part.trim()}"`);
    const [, rawField, op, raw] = m as unknown as [string, string, CompareOp, string];
    const field = Object.keys(fields).find((f) => f.toLowerCase() === rawField.toLowerCase());
    if (!field) throw new ODataError(`Could not find a property named '${rawField}' that can be filtered on; filterable: ${Object.keys(fields).join(', ')}`);
    if (fields[field] === 'date') {
      if (raw.startsWith("'")) throw new ODataError(`A binary operator with incompatible types was detected: '${field}' is Edm.DateTimeOffset, the value ${raw} is Edm.String (write it unquoted)`);
      const instant = parseDateTimeOffset(raw);
      if (!instant) throw new ODataError(`The DateTimeOffset text '${raw}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?'`);
      return { field, op, value: { kind: 'date', instant, text: raw } };
    }
    if (!raw.startsWith("'")) throw new ODataError(`'${field}' is Edm.String: quote the value ('${raw}')`);
    if (op !== 'eq' && op !== 'ne') throw new ODataError(`Operator '${op}' is not supported on '${field}'`);
    return { field, op, value: { kind: 'string', text: raw.slice(1, -1).replace(/''/g, "'") } };
  });
}

/** Evaluates clauses against a getter returning ms timestamps for date fields and strings otherwise. */
export function matches(clauses: Clause[], get: (field: string) => number | string | null): boolean {
  for (const c of clauses) {
    const v = get(c.field);
    if (c.value.kind === 'date') {
      if (typeof v !== 'number' || !compareInstant(v, c.op, c.value.instant)) return false;
    } else {
      const eq = typeof v === 'string' && v.toLowerCase() === c.value.text.toLowerCase();
      if (c.op === 'eq' ? !eq : eq) return false;
    }
  }
  return true;
}

export function parseTopSkip(q: URLSearchParams, maxTop: number): { top: number | null; skip: number } {
  const topRaw = q.get('$top');
  const skipRaw = q.get('$skip');
  let top: number | null = null;
  if (topRaw !== null) {
    if (!/^\d+$/.test(topRaw)) throw new ODataError(`Invalid value for $top: '${topRaw}' (expected a non-negative integer)`);
    top = Number(topRaw);
    if (top > maxTop) throw new ODataError(`The limit of '${maxTop}' for Top query has been exceeded. The value from the incoming request is '${top}'.`);
  }
  let skip = 0;
  if (skipRaw !== null) {
    if (!/^\d+$/.test(skipRaw)) throw new ODataError(`Invalid value for $skip: '${skipRaw}' (expected a non-negative integer)`);
    skip = Number(skipRaw);
  }
  return { top, skip };
}
