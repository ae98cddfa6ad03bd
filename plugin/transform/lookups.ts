// Lookup tables (transforms/lookups/*.json or a transform's own "lookups"): checked, then turned
// into plain functions the compiled transforms call.
import type { LookupTable, LookupValue } from '../generated/transform.js';
import { toNumber } from './convert.js';
import type { Problem } from '../schema-check.js';
import { jsonType } from './schema-nav.js';

export interface LookupRuntime {
  name: string;
  /** file that defines the table (for messages and docs) */
  file: string;
  kind: 'entries' | 'bands';
  /** every value the table can return (default included) */
  values: LookupValue[];
  fn: (v: unknown) => LookupValue | undefined;
}

/** Semantic checks the JSON schema cannot express; returns the runtime table when there are none. */
/** Object values are shared by every record that looks them up: frozen, so that no rule can change the table. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

export function buildLookup(name: string, file: string, pointer: string, t: LookupTable, problems: Problem[]): LookupRuntime | undefined {
  const hasEntries = t.entries !== undefined;
  const hasBands = t.bands !== undefined;
  if (hasEntries === hasBands) {
    problems.push({ file, pointer, message: 'a lookup table needs exactly one of "entries" or "bands"' });
    return undefined;
  }
  const dflt = deepFreeze(t.default);
  if (hasEntries) {
    const entries = t.entries as Record<string, LookupValue>;
    const ci = t.caseInsensitive === true;
    const map = new Map<string, LookupValue>();
    let ok = true;
    for (const [k, v] of Object.entries(entries)) {
      const key = ci ? k.toLowerCase() : k;
      if (map.has(key)) {
        problems.push({ file, pointer: `${pointer}/entries/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: `duplicate key "${k}" (the table is case-insensitive)` });
        ok = false;
      }
      map.set(key, deepFreeze(v));
    }
    if (!ok) return undefined;
    // Case-insensitive tables also answer the exact spelling directly (the common case) before lowering.
    const exact = new Map<string, LookupValue>(Object.entries(entries));
    const fn = ci
      ? (v: unknown) => {
          if (v === undefined || v === null) return undefined;
          const k = typeof v === 'string' ? v : String(v);
          const r = exact.get(k) ?? map.get(k.toLowerCase());
          return r !== undefined ? r : dflt;
        }
      : (v: unknown) => {
          if (v === undefined || v === null) return undefined;
          const r = map.get(typeof v === 'string' ? v : String(v));
          return r !== undefined ? r : dflt;
        };
    return { name, file, kind: 'entries', values: [...map.values(), ...(dflt !== undefined ? [dflt] : [])], fn };
  }
  if (t.caseInsensitive) problems.push({ file, pointer: `${pointer}/caseInsensitive`, message: 'applies to "entries" tables only' });
  const bands = [...(t.bands ?? [])].sort((a, b) => b.min - a.min);
  const mins = bands.map((b) => b.min);
  const vals = bands.map((b) => deepFreeze(b.value));
  const fn = (v: unknown) => {
    const n = typeof v === 'number' ? v : toNumber(v);
    if (n === undefined) return undefined;
    for (let i = 0; i < mins.length; i++) if (n >= (mins[i] as number)) return vals[i];
    return dflt;
  };
  return { name, file, kind: 'bands', values: [...vals, ...(dflt !== undefined ? [dflt] : [])], fn };
}

export function valueTypes(l: LookupRuntime): Set<string> {
  return new Set(l.values.map(jsonType));
}
