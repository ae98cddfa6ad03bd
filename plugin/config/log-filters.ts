import safeRegex from 'safe-regex2';
import type { FilterCondition, LogFilter } from '../generated/config.js';
import type { ContentType } from './load.js';

// Semantic checks of logFilters the JSON schema cannot express (value shape per operator, regex syntax).
export function checkLogFilters(filters: LogFilter[], base: string): { pointer: string; message: string }[] {
  const out: { pointer: string; message: string }[] = [];
  filters.forEach((f, i) => {
    f.conditions.forEach((c, j) => {
      const ptr = `${base}/${i}/conditions/${j}`;
      switch (c.op) {
        case 'exists':
          if (c.value !== undefined && typeof c.value !== 'boolean') out.push({ pointer: `${ptr}/value`, message: 'for "exists" must be true, false or omitted' });
          break;
        case 'in':
          if (!Array.isArray(c.value) || c.value.length === 0) out.push({ pointer: `${ptr}/value`, message: 'for "in" must be a non-empty list' });
          break;
        case 'regex':
          if (typeof c.value !== 'string') out.push({ pointer: `${ptr}/value`, message: 'for "regex" must be a string' });
          else {
            try {
              new RegExp(c.value);
              // every record of every poll runs through it: a pattern that can backtrack
              // exponentially (nested quantifiers such as (a+)+) would stall collection on one field
              if (!safeRegex(c.value)) out.push({ pointer: `${ptr}/value`, message: 'may take exponential time on some inputs (nested or too many quantifiers, e.g. (a+)+); rewrite it without a repeated group that itself repeats' });
            } catch (e) {
              out.push({ pointer: `${ptr}/value`, message: `must be a valid regular expression (${(e as Error).message})` });
            }
          }
          break;
        case 'lt':
        case 'lte':
        case 'gt':
        case 'gte':
          if (typeof c.value !== 'number' || !Number.isFinite(c.value)) out.push({ pointer: `${ptr}/value`, message: `for "${c.op}" must be a number (severity, fidelity and event_score are 0-100)` });
          break;
        case 'contains':
        case 'startsWith':
          if (typeof c.value !== 'string') out.push({ pointer: `${ptr}/value`, message: `for "${c.op}" must be a string` });
          break;
        default:
          if (c.value === undefined) out.push({ pointer: `${ptr}/value`, message: `is required for "${c.op}"` });
      }
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Runtime: a connector's filters compiled into one predicate. Field paths are dotted paths on the
// output record (e.g. "severity", "xdr_event.tactic.name", "microsoft_defender.detectionSource").
// When the value at a path is an array, eq/in/contains/startsWith/regex hold when any item matches
// and ne holds when no item equals. Comparisons of a number with a string compare the text;
// lt/lte/gt/gte hold only for numbers.
// Built from closures (no code generation): filters come from the config file.


/** Returns the name of the first filter the record matches (the record is dropped), or undefined. */
export type LogFilterPredicate = (content: ContentType, record: Record<string, unknown>) => string | undefined;

type Test = (v: unknown) => boolean;

function getPath(record: Record<string, unknown>, segs: string[]): unknown {
  let cur: unknown = record;
  for (const s of segs) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Object.prototype.hasOwnProperty.call(cur, s) ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return cur;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((typeof a === 'number' && typeof b === 'string') || (typeof a === 'string' && typeof b === 'number')) return String(a) === String(b);
  return false;
}

function anyItem(test: Test): Test {
  return (v) => (Array.isArray(v) ? v.some((x) => test(x)) : test(v));
}

function conditionTest(c: FilterCondition): Test {
  const value = c.value;
  switch (c.op) {
    case 'exists': {
      const want = value === undefined ? true : value === true;
      return (v) => (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) === want;
    }
    case 'eq':
      return anyItem((v) => same(v, value));
    case 'ne':
      return (v) => !(Array.isArray(v) ? v.some((x) => same(x, value)) : same(v, value));
    case 'in': {
      const list = value as unknown[];
      return anyItem((v) => list.some((x) => same(v, x)));
    }
    case 'contains': {
      const s = value as string;
      return anyItem((v) => typeof v === 'string' && v.includes(s));
    }
    case 'startsWith': {
      const s = value as string;
      return anyItem((v) => typeof v === 'string' && v.startsWith(s));
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const n = value as number;
      const cmp = { lt: (x: number) => x < n, lte: (x: number) => x <= n, gt: (x: number) => x > n, gte: (x: number) => x >= n }[c.op];
      // a missing or non-numeric field never matches: a filter on a number must not drop records without one
      return anyItem((v) => typeof v === 'number' && cmp(v));
    }
    case 'regex': {
      const re = new RegExp(value as string);
      return anyItem((v) => (typeof v === 'string' || typeof v === 'number') && re.test(String(v)));
    }
  }
}

/**
 * Compiles a connector's logFilters (already checked by checkLogFilters: the config loader reports
 * invalid ones with a pointer). A filter applies to the content types it lists (all when omitted)
 * and matches when all of its conditions hold.
 */
export function compileLogFilters(filters: LogFilter[]): LogFilterPredicate | undefined {
  if (!filters.length) return undefined;
  const compiled = filters.map((f) => {
    const conds = f.conditions.map((c) => ({ segs: c.field.split('.'), test: conditionTest(c) }));
    return { name: f.name, contents: f.contentTypes ? new Set<string>(f.contentTypes) : undefined, conds };
  });
  return (content, record) => {
    for (const f of compiled) {
      if (f.contents && !f.contents.has(content)) continue;
      let all = true;
      for (const c of f.conds) {
        if (!c.test(getPath(record, c.segs))) {
          all = false;
          break;
        }
      }
      if (all) return f.name;
    }
    return undefined;
  };
}

/**
 * Field paths of filters that no output record of the listed content types can have (a typo keeps a
 * filter from ever matching), and values no record of that field can equal or compare with (a text
 * value on a numeric field, a number bound on a text field). `known` gives, per content type, the
 * dotted output paths the transforms set with their JSON types; paths under microsoft_defender are
 * raw API fields and always accepted.
 */
export function checkLogFilterFields(filters: LogFilter[], base: string, known: Map<ContentType, Map<string, Set<string>>>): { pointer: string; message: string }[] {
  const out: { pointer: string; message: string }[] = [];
  filters.forEach((f, i) => {
    const contents = (f.contentTypes ?? [...known.keys()]) as ContentType[];
    f.conditions.forEach((c, j) => {
      if (c.field === 'microsoft_defender' || c.field.startsWith('microsoft_defender.')) return;
      const ok = contents.some((ct) => {
        const paths = known.get(ct);
        return paths?.has(c.field) || [...(paths?.keys() ?? [])].some((p) => p.startsWith(c.field + '.'));
      });
      if (!ok) {
        const all = new Set(contents.flatMap((ct) => [...(known.get(ct)?.keys() ?? [])]));
        const hint = closest(c.field, all);
        out.push({ pointer: `${base}/${i}/conditions/${j}/field`, message: `no ${contents.join('/')} record has a field "${c.field}"${hint ? `; did you mean "${hint}"?` : ''}` });
        return;
      }
      const types = new Set(contents.flatMap((ct) => [...(known.get(ct)?.get(c.field) ?? [])]));
      const problem = valueProblem(c, types);
      if (problem) out.push({ pointer: `${base}/${i}/conditions/${j}/value`, message: `"${c.field}" holds ${[...types].join(' or ')}: ${problem}` });
    });
  });
  return out;
}

/** Why no value of a field with these JSON types can match the condition, or undefined. */
function valueProblem(c: FilterCondition, types: Set<string>): string | undefined {
  if (types.size === 0) return undefined; // a field the schema leaves open
  const numeric = types.has('number') || types.has('integer');
  const text = types.has('string');
  const matches = (v: unknown) =>
    typeof v === 'string' ? text || (numeric && v.trim() !== '' && Number.isFinite(Number(v))) : typeof v === 'number' ? numeric || text : typeof v === 'boolean' ? types.has('boolean') : false;
  switch (c.op) {
    case 'eq':
    case 'ne':
      return matches(c.value) ? undefined : `${JSON.stringify(c.value)} never equals one${numeric && typeof c.value === 'string' ? ' (the value is a number: compare with lt / gte, or use a band field)' : ''}`;
    case 'in': {
      const bad = (c.value as unknown[]).filter((v) => !matches(v));
      return bad.length ? `${bad.map((v) => JSON.stringify(v)).join(', ')} never equal${bad.length === 1 ? 's' : ''} one` : undefined;
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return numeric ? undefined : `"${c.op}" compares numbers only`;
    case 'contains':
    case 'startsWith':
      return text ? undefined : `"${c.op}" looks into text only`;
    default:
      return undefined;
  }
}

function closest(name: string, candidates: Set<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = lev(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function lev(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length] as number;
}
