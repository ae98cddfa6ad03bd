// Compiles a checked transform (IR from load.ts) into one plain JS function with `new Function`.
// Safety rule: nothing from a transform file is ever pasted into the generated source as code.
// Field names and constant values enter only as JSON.stringify'd literals; conversions, lookup
// tables and sets enter as indexes into arrays passed in as arguments. A crafted field name or
// template therefore stays data (test/transform-injection.test.ts tries).
import { clean, cleanArray, conversions, inIpClasses, type ConversionName } from './convert.js';
import type { AltIR, CondsIR, ItemIR, PathRef, RuleIR, ValueOps } from './load.js';
import type { LookupRuntime } from './lookups.js';
import type { MapContext } from './mapper.js';
import type { JsonSchema } from './schema-nav.js';
import { itemsOf as schemaItems, propertiesOf as schemaProps, typesOf as schemaTypes } from './schema-nav.js';

export type CompiledFn = (entity: Record<string, unknown>, ctx: MapContext) => Record<string, unknown>;

export interface Compiled {
  fn: CompiledFn;
  /** the generated source, for debugging and tests */
  source: string;
}

const J = (v: unknown): string => {
  const s = JSON.stringify(v);
  if (s === undefined) throw new Error('value cannot be compiled');
  return s;
};
/** An expression true when the value in variable x is present for conditions: not undefined, null, "" or []. */
const filled = (x: string): string => `(${x} !== undefined && ${x} !== null && ${x} !== "" && !(Array.isArray(${x}) && ${x}.length === 0))`;
/** Conditions that hold for an empty value (missing, null, "", []) exactly as for a missing one, so the value needs no emptiness check first. */
function sameForEmpty(c: CondsIR[number]): boolean {
  if (c.op === 'equals') return c.value !== '' && c.value !== null;
  if (c.op === 'in') return !(c.value as unknown[]).some((v) => v === '' || v === null);
  return c.op === 'ip';
}
const ctxKeys = new Set(['tenant', 'connector', 'writeTime']);
const forbiddenTargets = new Set(['__proto__', 'constructor', 'prototype']);

class Gen {
  private n = 0;
  readonly convFns: ((v: unknown) => unknown)[] = [];
  readonly lookupFns: ((v: unknown) => unknown)[] = [];
  readonly consts: unknown[] = [];
  private convIndex = new Map<string, number>();
  private lookupIndex = new Map<LookupRuntime, number>();

  /** Variables that keep their values from record to record (see ops). */
  readonly siteVars: string[] = [];

  /** Variables holding the raw copies of the entity, one per raw rule. */
  readonly rawCopies: string[] = [];

  /** Constructors of objects whose fields rules set one by one (see shapeSource). */
  readonly shapes: string[] = [];
  shape(names: string[]): string {
    const name = `S${this.shapes.length}`;
    this.shapes.push(shapeSource(name, names));
    return name;
  }

  id(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  conv(name: ConversionName): string {
    const fn = Object.prototype.hasOwnProperty.call(conversions, name) ? conversions[name] : undefined;
    if (!fn) throw new Error(`unknown conversion ${JSON.stringify(name)}`);
    let i = this.convIndex.get(name);
    if (i === undefined) {
      i = this.convFns.push(fn) - 1;
      this.convIndex.set(name, i);
    }
    return `CV[${i}]`;
  }

  lookup(l: LookupRuntime): string {
    let i = this.lookupIndex.get(l);
    if (i === undefined) {
      i = this.lookupFns.push(l.fn) - 1;
      this.lookupIndex.set(l, i);
    }
    return `LK[${i}]`;
  }

  konst(v: unknown): string {
    return `K[${this.consts.push(v) - 1}]`;
  }

  // A field read through `?.` carries a null test of its base in the machine code (a fifth of the code of
  // a simple rule): bases that cannot be nullish are read directly. The entity is read through E, which
  // is the entity or, when the entity is nullish, an empty object (the raw copy and self paths keep e).
  /** Variables that hold neither undefined nor null. */
  private readonly defined = new Set(['E', 'r']);

  access(base: string, names: string[]): string {
    const from = base === 'e' ? 'E' : base;
    let expr = from;
    names.forEach((n, i) => (expr += i === 0 && this.defined.has(from) ? `[${J(n)}]` : `?.[${J(n)}]`));
    return expr;
  }

  /** Code that runs body(valueVar) for every value at the path (arrays walked at [] segments). */
  readonly itemVars = new Map<string, string>();

  walk(path: PathRef, base: string, body: (v: string) => string): string {
    if (path.ctx) {
      if (!ctxKeys.has(path.ctx)) throw new Error(`unknown context value ${J(path.ctx)}`);
      const t = this.id('t');
      return `{ const ${t} = c[${J(path.ctx)}]; ${body(t)} }`;
    }
    if (path.self) return body(base);
    if (path.item) {
      const iv = this.itemVars.get(path.item);
      if (!iv) throw new Error(`unknown item ${J(path.item)}`);
      return this.walkSegs(path.segs, iv, body);
    }
    return this.walkSegs(path.segs, base, body);
  }

  /**
   * Statements that set the variable of a named item: the first element matching the earliest preference.
   * One pass over the elements (not one per preference): each element is tested against the preferences
   * better than the best match so far; a match of the first preference ends the pass.
   */
  item(it: ItemIR): string {
    const iv = this.id('I');
    const label = this.id('L');
    const rank = this.id('b');
    let code = `let ${iv}; ${label}: { let ${rank} = ${it.prefer.length}; `;
    code += this.walk(it.each, 'e', (el) => {
      let body = `if (typeof ${el} === "object") { `; // null elements are skipped by walk()
      it.prefer.forEach((pref, j) => {
        const c = this.conds(pref, el);
        body += j === 0 ? `{ ${c.stmts}if (${c.expr}) { ${iv} = ${el}; break ${label}; } } ` : `if (${rank} > ${j}) { ${c.stmts}if (${c.expr}) { ${iv} = ${el}; ${rank} = ${j}; } } `;
      });
      return body + '}';
    });
    this.itemVars.set(it.name, iv);
    return code + '}\n';
  }

  private walkSegs(segs: PathRef['segs'], base: string, body: (v: string) => string): string {
    const i = segs.findIndex((s) => s.each);
    if (i < 0) {
      const t = this.id('t');
      return `{ const ${t} = ${this.access(base, segs.map((s) => s.name))}; ${body(t)} }`;
    }
    const a = this.id('a');
    const k = this.id('k');
    const el = this.id('el');
    const rest = segs.slice(i + 1);
    // a null element yields nothing for any rule (its values and fields are all empty): skipped, so that its fields are read directly
    this.defined.add(el);
    const inner = rest.length ? this.walkSegs(rest, el, body) : body(el);
    return `{ const ${a} = ${this.access(base, segs.slice(0, i + 1).map((s) => s.name))}; if (Array.isArray(${a})) for (let ${k} = 0; ${k} < ${a}.length; ${k}++) { const ${el} = ${a}[${k}]; if (${el} === undefined || ${el} === null) continue; ${inner} } }`;
  }

  /** Statements applying the steps to x (a step leaves undefined as it is); known: x is not undefined before the first step. */
  ops(x: string, ops: ValueOps, known = false): string {
    let code = '';
    for (const [i, s] of ops.steps.entries()) {
      const guard = known && i === 0 ? '' : `if (${x} !== undefined) `;
      if (!('lookup' in s)) {
        code += `${guard}${x} = ${this.conv(s.convert)}(${x}); `;
        continue;
      }
      // A lookup site sees the same few keys record after record (severity, status, a tenant's ATT&CK
      // techniques): it remembers its last key and answer, in variables outside the transform function.
      const key = this.id('mk');
      const answer = this.id('ma');
      this.siteVars.push(key, answer);
      code += `${guard}{ if (${x} === ${key}) ${x} = ${answer}; else { ${key} = ${x}; ${x} = ${answer} = ${this.lookup(s.lookup)}(${x}); } } `;
    }
    return code;
  }

  /** Statements that leave in `out` the first value of the alternatives that is non-empty after its steps. */
  first(out: string, alts: AltIR[], base = 'e'): string {
    const label = this.id('L');
    let code = `let ${out}; ${label}: { `;
    for (const a of alts) code += this.walk(a.path, base, (t) => this.nonEmpty(t, a, (x) => `${out} = ${x}; break ${label};`));
    return code + '} ';
  }

  /** Statements that run use(x) when the value t is non-empty, and still non-empty after the steps (null and "" count as missing). */
  private nonEmpty(t: string, steps: ValueOps, use: (x: string) => string): string {
    if (!steps.steps.length) return `if (${t} !== undefined && ${t} !== null && ${t} !== "") { ${use(t)} }`;
    const x = this.id('x');
    return `if (${t} !== undefined && ${t} !== null && ${t} !== "") { let ${x} = ${t}; ${this.ops(x, steps, true)}if (${x} !== undefined && ${x} !== null && ${x} !== "") { ${use(x)} } }`;
  }

  /** The first non-empty value at a path (a variable set by the statements). */
  private present(path: PathRef, base: string): { stmts: string; w: string } {
    const w = this.id('w');
    const label = this.id('L');
    const stmts =
      `let ${w}; ${label}: { ` +
      this.walk(path, base, (t) => `if ${filled(t)} { ${w} = ${t}; break ${label}; }`) +
      '} ';
    return { stmts, w };
  }

  /** The value at a path without arrays, as is (for conditions an empty value cannot meet, or that test emptiness themselves); otherwise present(). */
  private read(path: PathRef, base: string): { stmts: string; w: string } {
    const from = path.item ? this.itemVars.get(path.item) : base;
    if (from === undefined || path.ctx || path.self || path.segs.some((s) => s.each)) return this.present(path, base);
    const w = this.id('w');
    return { stmts: `const ${w} = ${this.access(from, path.segs.map((s) => s.name))}; `, w };
  }

  /** Statements + boolean expression for conditions that must all hold. */
  conds(list: CondsIR, base = 'e'): { stmts: string; expr: string } {
    let stmts = '';
    const exprs: string[] = [];
    for (const c of list) {
      // exists tests the value itself (present() would copy it into a variable to compare that with undefined)
      const { stmts: s, w } = sameForEmpty(c) || c.op === 'exists' ? this.read(c.path, base) : this.present(c.path, base);
      stmts += s;
      let expr: string;
      switch (c.op) {
        case 'equals':
          expr = `${w} === ${J(c.value)}`;
          break;
        case 'in':
          expr = `${this.konst(new Set(c.value as unknown[]))}.has(${w})`;
          break;
        case 'exists':
          expr = `${c.value === false ? '!' : ''}${filled(w)}`;
          break;
        case 'equalsPath': {
          // equal to a non-empty w: the other value needs no emptiness test of its own
          const other = this.read(c.value as PathRef, 'e');
          stmts += other.stmts;
          expr = `(${w} !== undefined && ${w} === ${other.w})`;
          break;
        }
        case 'ip':
          expr = `H.inIpClasses(${w}, ${this.konst(new Set(c.value as string[]))})`;
          break;
        case 'startsWith':
          expr = `(typeof ${w} === "string" && ${w}.toLowerCase().startsWith(${J((c.value as string).toLowerCase())}))`;
          break;
      }
      exprs.push(c.negate ? `!(${expr})` : expr);
    }
    return { stmts, expr: exprs.length === 1 ? (exprs[0] as string) : `(${exprs.join(' && ')})` };
  }

  /** Targets that rules set as a whole (segments joined by NUL). */
  readonly assigned = new Set<string>();

  setter(target: string[], v: string): string {
    for (const t of target) if (forbiddenTargets.has(t)) throw new Error(`forbidden target segment ${J(t)}`);
    if (target.length === 1) return `r[${J(target[0])}] = ${v};`;
    const o = this.id('o');
    let code = `{ let ${o} = r; `;
    target.slice(0, -1).forEach((t, i) => {
      // H.own: an object a lookup set here is shared by every record (and frozen): copy before writing into it.
      // Where no rule sets the object itself, only these writes make it: a plain object of this record.
      code += this.assigned.has(target.slice(0, i + 1).join('\u0000')) ? `${o} = (${o}[${J(t)}] = H.own(${o}[${J(t)}])); ` : `${o} = ${o}[${J(t)}] ?? (${o}[${J(t)}] = {}); `;
    });
    return code + `${o}[${J(target[target.length - 1])}] = ${v}; }`;
  }

  rule(r: RuleIR): string {
    const v = this.id('v');
    let body: string;
    switch (r.kind) {
      case 'const':
        return this.guard(r, this.setter(r.target, J(r.value)));
      case 'raw': {
        // the copy is made before every other rule (see compileRules), assigned here in the rule's order
        const copy = this.id('raw');
        this.rawCopies.push(copy);
        return this.guard(r, this.setter(r.target, copy));
      }
      case 'from': {
        // the most common rule, one value set as it is or converted: set where it is found, without the
        // variable and the exit of first() (less machine code per rule, which is what a record costs)
        const one = direct(r.alts, r.maxLength);
        if (one && !r.arrayCopy && r.default === undefined) return this.guard(r, this.walk(one.path, 'e', (t) => this.nonEmpty(t, one, (x) => this.setter(r.target, x))));
        if (r.arrayCopy) {
          const label = this.id('L');
          body = `let ${v}; ${label}: { ${r.alts.map((a) => this.walk(a.path, 'e', (t) => `${v} = H.cleanArray(${t}); if (${v} !== undefined) break ${label};`)).join(' ')} } `;
        } else body = this.first(v, r.alts);
        break;
      }
      case 'objects': {
        const a = this.id('c');
        const seen = this.id('s');
        body = `let ${v}; const ${a} = []; ${r.distinct ? `let ${seen}; ` : ''}`;
        body += this.walk(r.each, 'e', (el) => {
          const o = this.id('o');
          let inner = `let ${o} = new ${this.shape(r.fields.map((f) => f.name))}(); let n = 0; `;
          for (const f of r.fields) {
            const set = (x: string) => `${o}[${J(f.name)}] = ${x}; n++;`;
            const one = direct(f.alts, f.maxLength);
            if (one) {
              inner += this.walk(one.path, el, (t) => this.nonEmpty(t, one, set));
              continue;
            }
            const x = this.id('f');
            inner += this.first(x, f.alts, el) + this.truncate(x, f.maxLength) + `if (${x} !== undefined) { ${set(x)} } `;
          }
          inner += `if (!n) ${o} = undefined; `;
          if (r.distinct) {
            // Short lists (an alert's ATT&CK techniques) are compared field by field with the objects kept so
            // far (a Set and a text key per object cost more than the rest of the rule); the fields are set in
            // the rule's order, so equal objects have equal values field for field. A long list switches to a
            // set of keys, so that it costs linear time.
            const p = this.id('p');
            const same = r.fields.map((f) => `H.same(${p}[${J(f.name)}], ${o}[${J(f.name)}])`).join(' && ');
            inner += `if (${o} !== undefined) { if (${a}.length < ${distinctLinear}) { let dup = false; for (let q = 0; q < ${a}.length; q++) { const ${p} = ${a}[q]; if (${same}) { dup = true; break; } } if (!dup) ${a}.push(${o}); } else { if (${seen} === undefined) { ${seen} = new Set(); for (let q = 0; q < ${a}.length; q++) ${seen}.add(H.distinctKey(${a}[q])); } const key = H.distinctKey(${o}); if (!${seen}.has(key)) { ${seen}.add(key); ${a}.push(${o}); } } }`;
          } else inner += `if (${o} !== undefined) ${a}.push(${o});`;
          if (!r.where) return `{ ${inner} }`;
          const c = this.conds(r.where, el);
          return `{ ${c.stmts}if (${c.expr}) { ${inner} } }`;
        });
        body += `if (${a}.length) ${v} = ${a}; `;
        break;
      }
      case 'score': {
        const xs = this.id('n');
        body = `let ${v}; const ${xs} = [${r.inputs.map((t) => this.access('r', t)).join(', ')}]; ${v} = H.${r.method === 'max' ? 'maxOf' : 'geometricMean'}(${xs}); ${this.ops(v, r)}`;
        break;
      }
      case 'template': {
        const s = this.id('s');
        const label = this.id('L');
        body = `let ${v}; ${label}: { let ${s} = ""; `;
        for (const part of r.parts) {
          if (typeof part === 'string') body += `${s} += ${J(part)}; `;
          else {
            const x = this.id('p');
            body += this.first(x, [part]) + `if (${x} === undefined) break ${label}; ${s} += (typeof ${x} === "string" ? ${x} : String(${x})); `;
          }
        }
        body += `if (${s} !== "") ${v} = ${s}; } `;
        break;
      }
      case 'collect': {
        // values gather in a shared buffer and leave it as an array of their exact number (see addTo)
        const a = this.id('c');
        body = `let ${v}; let ${a} = 0; `;
        const push = (t: string) => this.nonEmpty(t, r, (x) => `${a} = H.addTo(${x}, ${a});`);
        for (const src of r.sources) {
          if ('each' in src) {
            body += this.walk(src.each, 'e', (el) => {
              const inner = this.walk(src.path, el, push);
              if (!src.where) return inner;
              const c = this.conds(src.where, el);
              return `${c.stmts}if (${c.expr}) ${inner}`;
            });
          } else body += this.walk(src.path, 'e', push);
        }
        body += `if (${a}) ${v} = H.take(${a}); `;
        break;
      }
    }
    body += this.truncate(v, r.maxLength);
    if (r.default !== undefined) body += `if (${v} === undefined) ${v} = ${J(r.default)}; `;
    body += `if (${v} !== undefined) ${this.setter(r.target, v)}`;
    return this.guard(r, `{ ${body} }`);
  }

  private truncate(v: string, max: number | undefined): string {
    return max === undefined ? '' : `if (typeof ${v} === "string" && ${v}.length > ${max}) ${v} = H.cut(${v}, ${max}); `;
  }

  private guard(r: RuleIR, code: string): string {
    if (!r.when) return code;
    const c = this.conds(r.when);
    return `{ ${c.stmts}if (${c.expr}) ${code} }`;
  }
}

/** The one alternative of a value that can be set where it is read: no other alternative, no array to walk for the first value, no cut. */
function direct(alts: AltIR[], maxLength: number | undefined): AltIR | undefined {
  const a = alts[0];
  return alts.length === 1 && a && maxLength === undefined && !a.path.segs.some((s) => s.each) ? a : undefined;
}

/** One function per transform: (entity, ctx) → record. */
export function compileRules(rules: RuleIR[], inputSchema?: JsonSchema, items: ItemIR[] = []): Compiled {
  const g = new Gen();
  for (const r of rules) g.assigned.add(r.target.join('\u0000'));
  const record = g.shape([...new Set(rules.map((r) => r.target[0] as string))]);
  let mapping = '';
  for (const it of items) mapping += g.item(it);
  for (const r of rules) mapping += g.rule(r) + '\n';
  // The raw copy reads every field of the entity, which is in no cache yet (an API page is parsed
  // before its records are mapped): made first, in a loop that does little else, it brings the entity
  // in for the rules, instead of each rule waiting for the fields it reads first.
  const copies = g.rawCopies.map((v) => `const ${v} = H.raw(e);\n`).join('');
  const body = `return function transform(e, c) {\nconst E = e ?? H.none;\nconst r = new ${record}();\n${copies}${mapping}return r;\n};`;
  const code = `"use strict";\n${g.shapes.join('\n')}\n${g.siteVars.length ? `let ${g.siteVars.join(', ')};\n` : ''}${body}`;
  const helpers = Object.freeze({ clean, cleanArray, inIpClasses, geometricMean, maxOf, cut, distinctKey, same, own, addTo, take, none: Object.freeze(Object.create(null)), raw: inputSchema ? compileCleaner(inputSchema) : clean });
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the point of this module; see the header comment
  const factory = new Function('H', 'CV', 'LK', 'K', code) as (...a: unknown[]) => CompiledFn;
  return { fn: factory(helpers, Object.freeze(g.convFns), Object.freeze(g.lookupFns), Object.freeze(g.consts)), source: code };
}

// A record gets its fields one rule at a time: an object from `{}` then moves its fields to a new,
// bigger backing store every few fields (an alert record has ~70). Objects made by a constructor
// that V8 has seen assign every field are allocated with room for all of them: the constructor
// names the fields in a branch that never runs, so each field is still set only when a rule sets it.
// The prototype is Object.prototype: records stay plain objects.
function shapeSource(name: string, fields: string[]): string {
  return `function ${name}() { if (${name}.never) { ${fields.map((f) => `this[${J(f)}] = 0;`).join(' ')} } }\n${name}.prototype = Object.prototype;`;
}

/** Rounded geometric mean of the numbers among xs (undefined when there are none): a low confidence pulls a high severity down, and the other way round. */
function geometricMean(xs: unknown[]): number | undefined {
  let log = 0;
  let n = 0;
  for (const x of xs) {
    if (typeof x !== 'number' || !Number.isFinite(x)) continue;
    if (x <= 0) return 0;
    log += Math.log(x);
    n++;
  }
  return n ? Math.round(Math.exp(log / n)) : undefined;
}

// Object field values are mostly lookup values (ATT&CK {id, name}): the same, never-changed object
// in every record, so its text is computed once. JSON.stringify of every object cost more than the
// rest of the alert transform.
const objectKeys = new WeakMap<object, string>();

function own(v: unknown): unknown {
  if (v === undefined || v === null) return {};
  return typeof v === 'object' && Object.isFrozen(v) ? { ...v } : v;
}

/** How many objects a distinct list compares one by one before it keeps a set of keys. */
const distinctLinear = 32;

/** Field values equal as distinctKey sees them: the same primitive, or objects of the same JSON text. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return objectText(a) === objectText(b);
  return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b);
}

function objectText(v: object): string {
  let t = objectKeys.get(v);
  if (t === undefined) {
    t = JSON.stringify(v);
    objectKeys.set(v, t);
  }
  return t;
}

/** A key equal for two objects of the same fields in the same order with equal values. */
function distinctKey(o: Record<string, unknown>): string {
  let k = '';
  for (const name in o) {
    const v = o[name];
    let t: string;
    if (typeof v === 'object' && v !== null) t = objectText(v);
    else t = typeof v === 'string' ? JSON.stringify(v) : String(v);
    k += `${name}\u0000${t}\u0001`;
  }
  return k;
}

// A list rule's values: an array filled by push keeps room for 17 values, and a record has a dozen
// lists of one or two values (a third of its memory). Values gather here instead and are copied out
// at their exact number; a transform runs to its end before another starts, so one buffer serves all.
const gathered: unknown[] = [];

/** Adds x after the first n gathered values unless it is one of them (SameValueZero, as includes); returns the new count. */
function addTo(x: unknown, n: number): number {
  for (let i = 0; i < n; i++) {
    const y = gathered[i];
    if (y === x || (x !== x && y !== y)) return n;
  }
  gathered[n] = x;
  return n + 1;
}

/** The first n gathered values as a new array. */
function take(n: number): unknown[] {
  return n === 1 ? [gathered[0]] : n === 2 ? [gathered[0], gathered[1]] : gathered.slice(0, n);
}

function maxOf(xs: unknown[]): number | undefined {
  let m: number | undefined;
  for (const x of xs) if (typeof x === 'number' && Number.isFinite(x) && (m === undefined || x > m)) m = x;
  return m === undefined ? undefined : Math.round(m);
}

/** Cuts a string to max UTF-16 units without leaving half of a surrogate pair. */
function cut(s: string, max: number): string {
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

// ---------------------------------------------------------------------------------------------
// The raw copy (microsoft_defender.*) is the biggest cost per record: every field of the entity is
// visited. A generic for-in copy pays a megamorphic keyed load and store per field; this cleaner
// is generated from the input entity schema, so the fields the API documents are copied with
// named property accesses (monomorphic, fast), and only fields the schema does not know (the API
// adds fields without notice) go through the generic path. Same result as clean(): nulls and
// empty strings dropped, everything else kept, except fields the collector adds (addedByCollector).

/** Input fields the collector attaches (e.g. `_machine`, the alert's machine from the inventory): declared in the input schema, never in the raw copy. */
export const addedByCollector = (key: string): boolean => key.charCodeAt(0) === 95; /* _ */

export function compileCleaner(root: JsonSchema): (v: unknown) => unknown {
  let n = 0;
  const fns: string[] = [];
  const knownSets: Set<string>[] = [];
  const memo = new Map<JsonSchema, string>();
  const safeName = (k: string) => forbiddenTargets.has(k) || k === 'hasOwnProperty';

  // Returns the name of a generated function cleaning a value of this schema node.
  const gen = (node: JsonSchema): string => {
    const hit = memo.get(node);
    if (hit) return hit;
    const types = schemaTypes(root, node);
    const props = schemaProps(root, node);
    const name = `f${n++}`;
    memo.set(node, name);
    if (types.has('array') && !types.has('object')) {
      const items = schemaItems(root, node);
      const itemFn = items && schemaProps(root, items) ? gen(items) : 'H.clean';
      // sized to the input: an array filled by push from empty keeps room for 17 items
      fns.push(`function ${name}(v) { if (!Array.isArray(v)) return H.clean(v); const out = new Array(v.length); let j = 0; for (let i = 0; i < v.length; i++) { const x = v[i]; if (x === null || x === undefined || x === "") continue; out[j++] = typeof x === "object" ? ${itemFn}(x) : x; } if (j < out.length) out.length = j; return out; }`);
      return name;
    }
    if (!props || !types.has('object')) return 'H.clean';
    const keys = Object.keys(props).filter((k) => !safeName(k));
    const known = knownSets.push(new Set(keys)) - 1;
    const shape = `S${name}`;
    fns.push(shapeSource(shape, keys.filter((k) => !addedByCollector(k))));
    let body = `function ${name}(o) { if (o === null || typeof o !== "object" || Array.isArray(o)) return H.clean(o); const out = new ${shape}(); let n = 0; let x; `;
    for (const k of keys) {
      if (addedByCollector(k)) {
        body += `if (o[${J(k)}] !== undefined) n++; `;
        continue;
      }
      const sub = props[k] as JsonSchema;
      const st = schemaTypes(root, sub);
      const subFn = st.has('object') || st.has('array') ? gen(sub) : 'H.clean';
      body += `x = o[${J(k)}]; if (x !== undefined) { n++; if (x !== null && x !== "") out[${J(k)}] = typeof x === "object" ? ${subFn}(x) : x; } `;
    }
    // Unknown fields are rare: for-in counts the keys without the array Object.keys makes (a few % of
    // the alert transform); inherited enumerable keys (a polluted prototype) only send it to the slow path.
    body += `let c = 0; for (const k in o) c++; if (c !== n) { const keys = Object.keys(o); const known = KS[${known}]; for (let i = 0; i < keys.length; i++) { const k = keys[i]; if (known.has(k)) continue; const y = o[k]; if (y === null || y === undefined || y === "") continue; H.set(out, k, typeof y === "object" ? H.clean(y) : y); } } return out; }`;
    fns.push(body);
    return name;
  };
  const top = gen(root);
  const src = `"use strict";\n${fns.join('\n')}\nreturn ${top};`;
  const set = (o: Record<string, unknown>, k: string, v: unknown) => {
    if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    else o[k] = v;
  };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the input schema; names enter as JSON literals only
  return new Function('H', 'KS', src)(Object.freeze({ clean, set }), Object.freeze(knownSets)) as (v: unknown) => unknown;
}
