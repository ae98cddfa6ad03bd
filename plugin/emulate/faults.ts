// Faults on demand. A fault list is comma-separated items `kind[:key=value]...`, for example
//   429:count=5:retryAfter=2,503:p=0.1,slow:ms=1500,truncate:after=2,token-reject:after=3,reset
// kinds:  429 | 500 | 503 | slow | truncate | malformed | novalue | trickle | token-reject | reset
//         novalue: a whole 200 JSON body without a `value` array, as a proxy or gateway may answer
//         trickle: the answer goes out `bytes` at a time every `ms`, never silent for long, never done soon
//         on=token: 429 / 500 / 503 answer as Entra does (AADSTS90033), reset drops the connection,
//         token-reject refuses the client (401 AADSTS7000215), trickle / slow / truncate as for data
// keys:   count=N      how many calls get the fault (default 1 unless p is given; 0 = unlimited)
//         p=0..1       probability per eligible call instead of a count (decided by the seeded PRNG)
//         after=N      let N eligible calls through first (token-reject:after=3 hits the 4th data call)
//         on=data|alerts|machines|vulnerabilities|machineactions|actions|token|any   which calls are eligible (default data)
//         ms=N         delay for `slow` (default 2000), between pieces for `trickle` (default 500)
//         retryAfter=S Retry-After seconds for `429` (default 1)
//         bytes=N      bytes sent before a `truncate` cut (default 512); piece size for `trickle` (default 64)
//         shape=empty|null|scalar|other   the `novalue` body: {} (default), {"value":null}, {"value":"none"}, {"foo":[]}
import { Rng } from './prng.js';

export type FaultKind = '429' | '500' | '503' | 'slow' | 'truncate' | 'malformed' | 'novalue' | 'trickle' | 'token-reject' | 'reset';
export type NoValueShape = 'empty' | 'null' | 'scalar' | 'other';
export type FaultScope = 'data' | 'alerts' | 'machines' | 'vulnerabilities' | 'machineactions' | 'actions' | 'hunting' | 'token' | 'any';

export interface FaultSpec {
  kind: FaultKind;
  count?: number;
  p?: number;
  after?: number;
  on?: FaultScope;
  ms?: number;
  retryAfter?: number;
  bytes?: number;
  shape?: NoValueShape;
}

export class FaultSpecError extends Error {}

const kinds: FaultKind[] = ['429', '500', '503', 'slow', 'truncate', 'malformed', 'novalue', 'trickle', 'token-reject', 'reset'];
const shapes: NoValueShape[] = ['empty', 'null', 'scalar', 'other'];
const scopes: FaultScope[] = ['data', 'alerts', 'machines', 'vulnerabilities', 'machineactions', 'actions', 'hunting', 'token', 'any'];

export function parseFaults(list: string): FaultSpec[] {
  const out: FaultSpec[] = [];
  for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [kind, ...params] = item.split(':');
    if (!kinds.includes(kind as FaultKind)) throw new FaultSpecError(`fault "${item}": unknown kind "${kind}" (expected one of ${kinds.join(', ')})`);
    const spec: FaultSpec = { kind: kind as FaultKind };
    for (const p of params) {
      const m = /^(count|p|after|on|ms|retryAfter|bytes|shape)=(.+)$/.exec(p);
      if (!m) throw new FaultSpecError(`fault "${item}": bad parameter "${p}" (expected count=N, p=0..1, after=N, on=SCOPE, ms=N, retryAfter=S, bytes=N or shape=SHAPE)`);
      const [, key, value] = m as unknown as [string, keyof FaultSpec, string];
      if (key === 'on') {
        if (!scopes.includes(value as FaultScope)) throw new FaultSpecError(`fault "${item}": on=${value} is not one of ${scopes.join(', ')}`);
        spec.on = value as FaultScope;
        continue;
      }
      if (key === 'shape') {
        if (!shapes.includes(value as NoValueShape)) throw new FaultSpecError(`fault "${item}": shape=${value} is not one of ${shapes.join(', ')}`);
        spec.shape = value as NoValueShape;
        continue;
      }
      const n = Number(value);
      const valid = key === 'p' ? n >= 0 && n <= 1 : Number.isInteger(n) && n >= 0;
      if (!valid) throw new FaultSpecError(`fault "${item}": ${key}=${value} is not ${key === 'p' ? 'a probability between 0 and 1' : 'a non-negative integer'}`);
      (spec as unknown as Record<string, number>)[key] = n;
    }
    out.push(spec);
  }
  return out;
}

export interface CallInfo {
  /** alerts | machines | vulnerabilities | machineactions | actions | token */
  api: Exclude<FaultScope, 'data' | 'any'>;
  method: string;
}

interface Armed {
  spec: FaultSpec;
  rng: Rng;
  seen: number;
  fired: number;
}

export class FaultInjector {
  private armed: Armed[] = [];
  /** how many times each kind fired */
  readonly fired = new Map<FaultKind, number>();

  constructor(private readonly seed: number) {}

  set(specs: FaultSpec[]): void {
    this.armed = specs.map((spec, i) => ({ spec, rng: Rng.for(this.seed, 'fault', i), seen: 0, fired: 0 }));
  }

  get active(): FaultSpec[] {
    return this.armed.map((a) => a.spec);
  }

  private eligible(scope: FaultScope, call: CallInfo): boolean {
    if (scope === 'any') return true;
    if (scope === 'data') return call.method === 'GET' && call.api !== 'token';
    return scope === call.api;
  }

  /** Decides the fault (if any) for one call. Deterministic for a given seed and call sequence. */
  decide(call: CallInfo): FaultSpec | null {
    // Every eligible item counts every call (so `after=N` means the same whatever else is armed);
    // the first item that fires wins, the others keep their remaining count.
    let chosen: Armed | null = null;
    for (const a of this.armed) {
      const { spec } = a;
      if (!this.eligible(spec.on ?? 'data', call)) continue;
      a.seen++;
      if (a.seen <= (spec.after ?? 0)) continue;
      const limit = spec.count ?? (spec.p === undefined ? 1 : 0);
      if (limit !== 0 && a.fired >= limit) continue;
      const fire = spec.p === undefined ? true : a.rng.chance(spec.p);
      if (fire && !chosen) chosen = a;
    }
    if (!chosen) return null;
    chosen.fired++;
    this.fired.set(chosen.spec.kind, (this.fired.get(chosen.spec.kind) ?? 0) + 1);
    return chosen.spec;
  }
}
