// Loads transforms/*.json and transforms/lookups/*.json and checks everything a detection engineer
// can get wrong, all at once: the file against transform.schema.json, every source path against the
// input entity schema (with a did-you-mean), every target against the output index schema (type
// compatible, required fields covered), every lookup present and well formed. The result is a
// checked intermediate form (IR) for the compiler, or the problems (file + JSON pointer + message).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { ValidateFunction } from 'ajv';
import type { CollectSource, Condition, FieldRule, FromAlternative, LookupTable, ObjectsSource, ScoreSource, TransformFile } from '../generated/transform.js';
import type { ContentType } from '../config/load.js';
import { ajvProblems, escapePointer, loadSchema, newAjv, pointerSegments, type Problem } from '../schema-check.js';
import { schemaDir } from '../paths.js';
import { buildLookup, valueTypes, type LookupRuntime } from './lookups.js';
import { child, didYouMean, itemsOf, jsonType, propertiesOf, resolveRef, typesOf, type JsonSchema } from './schema-nav.js';
import type { ConversionName } from './convert.js';
import { jsonErrorOffset, lineAt } from './json-position.js';
import type { tagSuffix } from '../output/sink.js';
import type { SchemaOverlay } from '../generated/overlay.js';
import { loadOverlays, type AppliedOverlay } from './overlays.js';

export type TagKey = Exclude<keyof typeof tagSuffix, 'status' | 'audit'>;
export const contextVars = ['tenant', 'connector', 'writeTime'] as const;
export type ContextVar = (typeof contextVars)[number];

export interface PathRef {
  text: string;
  ctx?: ContextVar;
  /** @name.field: read from the element picked by the transform's "items" */
  item?: string;
  /** ".": the element itself (objects over an array of scalars) */
  self?: boolean;
  segs: { name: string; each: boolean }[];
}
/** Conversions and lookups, applied in order. */
export type Step = { convert: ConversionName } | { lookup: LookupRuntime };
export interface ValueOps {
  steps: Step[];
}
export interface CondIR {
  path: PathRef;
  op: 'equals' | 'in' | 'exists' | 'equalsPath' | 'ip' | 'startsWith';
  value: unknown;
  negate: boolean;
}
/** Conditions that must all hold. */
export type CondsIR = CondIR[];
/** One alternative of a from: a path and the steps applied to its value. */
export type AltIR = { path: PathRef } & ValueOps;
export type TemplatePart = string | ({ path: PathRef } & ValueOps);
export type CollectIR = { path: PathRef } | { each: PathRef; where?: CondsIR; path: PathRef };
export interface ObjectFieldIR {
  name: string;
  alts: AltIR[];
  maxLength?: number;
  /** as a rule's (RuleIR.proven): every value it can yield is valid for the field */
  proven?: true;
}
export interface ItemIR {
  name: string;
  each: PathRef;
  prefer: CondsIR[];
}
export type RuleIR = { target: string[]; when?: CondsIR; default?: unknown; maxLength?: number; proven?: true } & (
  | { kind: 'const'; value: unknown }
  | { kind: 'from'; alts: AltIR[]; arrayCopy: boolean }
  | { kind: 'template'; parts: TemplatePart[] }
  | ({ kind: 'collect'; sources: CollectIR[] } & ValueOps)
  | { kind: 'objects'; each: PathRef; where?: CondsIR; distinct: boolean; fields: ObjectFieldIR[] }
  | ({ kind: 'score'; method: 'geometricMean' | 'max'; inputs: string[][] } & ValueOps)
  | { kind: 'raw' }
);

export interface LoadedTransform {
  /** file name without .json, e.g. alerts.syslog */
  name: string;
  file: string;
  content: ContentType;
  tag: TagKey;
  /** output schema, relative to schemas/ */
  output: string;
  input: string;
  /** the input and output schemas with this directory's overlays applied */
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  source: TransformFile;
  items: ItemIR[];
  rules: RuleIR[];
}

export interface LoadResult {
  transforms: LoadedTransform[];
  lookups: Map<string, LookupRuntime>;
  /** the schema overlays of the directory (overlays/*.json) */
  overlays: AppliedOverlay[];
  problems: Problem[];
}

const tagsFor: Record<ContentType, TagKey[]> = { alerts: ['alerts'], host: ['hostSyslog', 'hostAssets'], vulnerabilities: ['vulnerabilities'], machineActions: ['machineActions'], hunting: ['hunting'] };
const conversionIn: Record<ConversionName, string[] | null> = {
  epochMs: ['string', 'number', 'integer'],
  number: ['string', 'number', 'integer', 'boolean'],
  string: null,
  lower: null,
  upper: null,
  ip: ['string'],
  mac: ['string'],
  slug: null,
  urlHost: ['string'],
  hostLabel: ['string'],
  dnsDomain: ['string'],
  integer: ['string', 'number', 'integer'],
};
const conversionOut: Record<ConversionName, string> = { epochMs: 'integer', number: 'number', string: 'string', lower: 'string', upper: 'string', ip: 'string', mac: 'string', slug: 'string', urlHost: 'string', hostLabel: 'string', dnsDomain: 'string', integer: 'integer' };
const conversionNames = Object.keys(conversionIn) as ConversionName[];

let fileValidator: ValidateFunction<TransformFile> | undefined;
let lookupValidator: ValidateFunction<LookupTable> | undefined;
let overlayValidator: ValidateFunction<SchemaOverlay> | undefined;
function validators(): { file: ValidateFunction<TransformFile>; lookup: ValidateFunction<LookupTable>; overlay: ValidateFunction<SchemaOverlay> } {
  if (!fileValidator || !lookupValidator || !overlayValidator) {
    const ajv = newAjv();
    const schema = loadSchema('transform.schema.json');
    ajv.addSchema(schema);
    fileValidator = ajv.getSchema<TransformFile>(schema.$id as string) as ValidateFunction<TransformFile>;
    lookupValidator = ajv.getSchema<LookupTable>(`${schema.$id as string}#/definitions/lookupTable`) as ValidateFunction<LookupTable>;
    overlayValidator = ajv.compile<SchemaOverlay>(loadSchema('overlay.schema.json'));
  }
  return { file: fileValidator, lookup: lookupValidator, overlay: overlayValidator };
}

/** 1-based line of the value a JSON pointer designates (JSON is YAML, so the yaml CST gives positions). */
function lineLocator(text: string): (pointer: string) => number | undefined {
  let doc: ReturnType<typeof parseDocument> | undefined;
  const counter = new LineCounter();
  return (pointer) => {
    try {
      doc ??= parseDocument(text, { lineCounter: counter, uniqueKeys: false });
      let segs = pointerSegments(pointer);
      while (true) {
        const node = segs.length ? doc.getIn(segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true) : doc.contents;
        if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
        if (!segs.length) return undefined;
        segs = segs.slice(0, -1);
      }
    } catch {
      return undefined;
    }
  };
}

function readJson(file: string, problems: Problem[]): { value: unknown; text: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    problems.push({ file, pointer: '', message: `cannot read: ${(e as Error).message}` });
    return undefined;
  }
  try {
    return { value: JSON.parse(text), text };
  } catch (e) {
    const offset = jsonErrorOffset(text);
    const line = offset !== undefined ? lineAt(text, offset) : undefined;
    problems.push({ file, pointer: '', message: `invalid JSON: ${(e as Error).message}`, ...(line ? { line } : {}) });
    return undefined;
  }
}

/** Adds a did-you-mean to ajv's "unknown key" messages (kind: which schema the data was checked against). */
function withKeySuggestions(problems: Problem[], root: JsonSchema, kind: 'transform' | 'lookup'): Problem[] {
  const defs = (root.definitions ?? {}) as Record<string, JsonSchema>;
  const keysOf = (node: JsonSchema | undefined) => Object.keys((node && propertiesOf(root, node)) ?? {});
  return problems.map((p) => {
    const m = /^unknown key "(.*)"$/.exec(p.message);
    if (!m) return p;
    const segs = pointerSegments(p.pointer).slice(0, -1);
    let known: string[] = [];
    if (kind === 'lookup') known = segs.length === 0 ? keysOf(defs.lookupTable) : segs[0] === 'bands' ? ['min', 'value'] : [];
    else if (segs.length === 0) known = keysOf(root);
    else if (segs[0] === 'fields' && segs.length === 2) known = keysOf(defs.fieldRule);
    else if (segs[0] === 'fields' && (segs[2] === 'when' || segs[4] === 'where')) known = keysOf(defs.condition);
    else if (segs[0] === 'fields' && segs[2] === 'collect') known = keysOf(defs.collectSource);
    else if (segs[0] === 'lookups' && segs.length === 2) known = keysOf(defs.lookupTable);
    return { ...p, message: p.message + didYouMean(m[1] ?? '', known) };
  });
}

export function parsePath(text: string): PathRef | string {
  if (text === '.') return { text, self: true, segs: [] };
  if (text.startsWith('@')) {
    const dot = text.indexOf('.');
    const item = text.slice(1, dot < 0 ? undefined : dot);
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(item) || dot < 0) return `malformed item path "${text}": write @item.field`;
    const rest = parsePath(text.slice(dot + 1));
    return typeof rest === 'string' || rest.ctx || rest.item || rest.self ? `malformed item path "${text}": write @item.field` : { ...rest, text, item };
  }
  if (text.startsWith('$')) {
    const name = text.slice(1);
    if ((contextVars as readonly string[]).includes(name)) return { text, ctx: name as ContextVar, segs: [] };
    return `unknown context value "${text}"${didYouMean(name, contextVars)} (known: ${contextVars.map((c) => '$' + c).join(', ')})`;
  }
  const segs: PathRef['segs'] = [];
  for (const raw of text.split('.')) {
    const each = raw.endsWith('[]');
    const name = each ? raw.slice(0, -2) : raw;
    if (!name || name.includes('[') || name.includes(']')) return `malformed path "${text}": segments are field names, optionally ending in []`;
    segs.push({ name, each });
  }
  return { text, segs };
}

interface Ctx {
  file: string;
  problems: Problem[];
  input: JsonSchema;
  output: JsonSchema;
  lookups: Map<string, LookupRuntime>;
  /** element schema of each named item */
  items: Map<string, JsonSchema>;
}

/** Resolves a path against the input schema; returns the JSON types of its values or undefined (problem pushed). */
function checkPath(c: Ctx, text: string, pointer: string, base: JsonSchema = c.input, allowArray = false): { ref: PathRef; types: Set<string>; node?: JsonSchema; array: boolean } | undefined {
  const ref = parsePath(text);
  if (typeof ref === 'string') {
    c.problems.push({ file: c.file, pointer, message: ref });
    return undefined;
  }
  if (ref.ctx) return { ref, types: new Set([ref.ctx === 'writeTime' ? 'integer' : 'string']), array: false };
  let node = base;
  if (ref.item) {
    const picked = c.items.get(ref.item);
    if (!picked) {
      c.problems.push({ file: c.file, pointer, message: `unknown item "@${ref.item}"${didYouMean(ref.item, c.items.keys())} (items are declared in the file's "items")` });
      return undefined;
    }
    node = picked;
  }
  if (ref.self) {
    const types = typesOf(c.input, node);
    types.delete('null');
    return { ref, types, node, array: types.has('array') };
  }
  const title = (c.input.title as string | undefined) ?? 'input';
  for (let i = 0; i < ref.segs.length; i++) {
    const { name, each } = ref.segs[i] as { name: string; each: boolean };
    const next = child(c.input, node, name);
    const where = ref.segs.slice(0, i).map((s) => s.name + (s.each ? '[]' : '')).join('.');
    if (!next) {
      const known = Object.keys(propertiesOf(c.input, node) ?? {});
      c.problems.push({ file: c.file, pointer, message: `unknown field "${name}"${where ? ` under "${where}"` : ''} in ${title}${didYouMean(name, known)}` });
      return undefined;
    }
    node = next;
    const t = typesOf(c.input, node);
    if (each) {
      if (!t.has('array')) {
        c.problems.push({ file: c.file, pointer, message: `"${name}" is not an array in ${title}: remove the []` });
        return undefined;
      }
      node = itemsOf(c.input, node) ?? {};
    } else if (t.has('array') && i < ref.segs.length - 1) {
      c.problems.push({ file: c.file, pointer, message: `"${name}" is an array in ${title}: write "${name}[]" to walk its items` });
      return undefined;
    }
  }
  const types = typesOf(c.input, node);
  types.delete('null');
  const array = types.has('array');
  if (array && !allowArray) {
    c.problems.push({ file: c.file, pointer, message: `"${text}" is an array: use "collect" (or "${text}[]")` });
    return undefined;
  }
  return { ref, types, node, array };
}

function checkOps(c: Ctx, rule: { convert?: FieldRule['convert']; lookup?: FieldRule['lookup'] }, inTypes: Set<string>, pointer: string, convertPtr: string, lookupPtr: string): { ops: ValueOps; types: Set<string>; values?: unknown[] } | undefined {
  const convert = rule.convert === undefined ? [] : Array.isArray(rule.convert) ? rule.convert : [rule.convert];
  const lookupNames = rule.lookup === undefined ? [] : Array.isArray(rule.lookup) ? rule.lookup : [rule.lookup];
  const steps: RawStep[] = [
    ...convert.map((name, i) => ({ convert: name as string, pointer: Array.isArray(rule.convert) ? `${convertPtr}/${i}` : convertPtr })),
    ...lookupNames.map((name, i) => ({ lookup: name, pointer: Array.isArray(rule.lookup) ? `${lookupPtr}/${i}` : lookupPtr })),
  ];
  void pointer;
  return checkSteps(c, steps, inTypes);
}

type RawStep = ({ convert: string } | { lookup: string }) & { pointer: string };

function checkSteps(c: Ctx, raw: RawStep[], inTypes: Set<string>): { ops: ValueOps; types: Set<string>; values?: unknown[] } | undefined {
  let types = inTypes;
  let ok = true;
  const steps: Step[] = [];
  let values: unknown[] | undefined;
  for (const step of raw) {
    const p = step.pointer;
    if ('lookup' in step) {
      const name = step.lookup;
      const l = c.lookups.get(name);
      if (!l) {
        c.problems.push({ file: c.file, pointer: p, message: `unknown lookup table "${name}"${didYouMean(name, c.lookups.keys())} (tables: transforms/lookups/*.json or this file's "lookups")` });
        ok = false;
        continue;
      }
      if (l.kind === 'bands' && !types.has('number') && !types.has('integer') && !types.has('string')) {
        c.problems.push({ file: c.file, pointer: p, message: `lookup "${name}" is a bands table and needs a number, but the value is ${[...types].join(' or ')}` });
        ok = false;
      }
      steps.push({ lookup: l });
      types = valueTypes(l);
      values = l.values;
      continue;
    }
    const conv = step.convert as ConversionName;
    if (!conversionNames.includes(conv)) {
      c.problems.push({ file: c.file, pointer: p, message: `unknown conversion "${conv}"${didYouMean(conv, conversionNames)}` });
      ok = false;
      continue;
    }
    const accepts = conversionIn[conv];
    if (accepts && ![...types].some((t) => accepts.includes(t))) {
      c.problems.push({ file: c.file, pointer: p, message: `conversion "${conv}" needs ${accepts.join(' or ')}, but the value is ${[...types].join(' or ') || 'empty'}` });
      ok = false;
    }
    steps.push({ convert: conv });
    types = new Set([conversionOut[conv]]);
    values = undefined;
  }
  return ok ? { ops: { steps }, types, values } : undefined;
}

const condOps = ['equals', 'in', 'exists', 'equalsPath', 'ip', 'startsWith'] as const;
function checkCond(c: Ctx, cond: Condition, pointer: string, base?: JsonSchema): CondIR | undefined {
  const ops = condOps.filter((k) => cond[k] !== undefined);
  if (ops.length !== 1) {
    c.problems.push({ file: c.file, pointer, message: `a condition needs exactly one of ${condOps.map((o) => `"${o}"`).join(', ')}${ops.length ? ` (found ${ops.join(', ')})` : ''}` });
    return undefined;
  }
  const op = ops[0] as CondIR['op'];
  const p = checkPath(c, cond.path, `${pointer}/path`, base ?? c.input, op === 'exists');
  if (!p) return undefined;
  if (op === 'ip' && !p.types.has('string')) {
    c.problems.push({ file: c.file, pointer: `${pointer}/ip`, message: `"${cond.path}" is ${describeTypes(p.types)}, but an IP class needs a string` });
    return undefined;
  }
  let value: unknown = cond[op];
  if (op === 'equalsPath') {
    const other = checkPath(c, cond.equalsPath as string, `${pointer}/equalsPath`);
    if (!other) return undefined;
    value = other.ref;
  }
  return { path: p.ref, op, value, negate: cond.not === true };
}

/** One condition or a list that must all hold. */
function checkConds(c: Ctx, conds: Condition | Condition[], pointer: string, base?: JsonSchema): CondsIR | undefined {
  const list = Array.isArray(conds) ? conds : [conds];
  const out = list.map((x, i) => checkCond(c, x, Array.isArray(conds) ? `${pointer}/${i}` : pointer, base));
  return out.every((x) => x) ? (out as CondsIR) : undefined;
}

/** Output sub-schema of a dotted target, or a problem. */
function targetNode(c: Ctx, target: string, pointer: string): JsonSchema | undefined {
  let node = c.output;
  const segs = target.split('.');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const next = child(c.output, node, seg);
    if (!next) {
      const known = Object.keys(propertiesOf(c.output, node) ?? {});
      const under = segs.slice(0, i).join('.');
      c.problems.push({ file: c.file, pointer, message: `"${seg}" is not a field of ${(c.output.title as string) ?? 'the output'}${under ? ` under "${under}"` : ''}${didYouMean(seg, known)}` });
      return undefined;
    }
    if (seg === '__proto__' || seg === 'constructor' || seg === 'prototype') {
      c.problems.push({ file: c.file, pointer, message: `"${seg}" cannot be a target` });
      return undefined;
    }
    node = next;
  }
  return node;
}

function compatible(out: Set<string>, got: Set<string>): string[] {
  const bad: string[] = [];
  for (const t of got) if (!(out.has(t) || (t === 'integer' && out.has('number')))) bad.push(t);
  return bad;
}

function describeTypes(s: Set<string>): string {
  return [...s].join(' or ');
}

function checkTypes(c: Ctx, node: JsonSchema, got: { types: Set<string>; itemTypes?: Set<string>; values?: unknown[] }, pointer: string, target: string): void {
  const out = typesOf(c.output, node);
  const bad = compatible(out, got.types);
  if (bad.length) {
    c.problems.push({ file: c.file, pointer, message: `"${target}" is ${describeTypes(out)} in ${c.output.title as string}, but this rule yields ${describeTypes(got.types)}` });
    return;
  }
  if (got.itemTypes) {
    const items = itemsOf(c.output, node);
    if (items) {
      const badItems = compatible(typesOf(c.output, items), got.itemTypes);
      if (badItems.length) c.problems.push({ file: c.file, pointer, message: `"${target}" holds ${describeTypes(typesOf(c.output, items))} items, but this rule yields ${describeTypes(got.itemTypes)} items` });
    }
  }
  if (got.values) {
    const validate = subValidator(c.output, node);
    for (const v of got.values) {
      if (!validate(v)) {
        c.problems.push({ file: c.file, pointer, message: `${JSON.stringify(v)} is not a valid "${target}": ${ajvProblems(c.file, validate.errors).map((p) => `${p.pointer || ''} ${p.message}`.trim()).join('; ')}` });
        break;
      }
    }
  }
}

// A rule is `proven` when the checks here show that every value it can yield is valid for its target,
// whatever the API sends: the run-time index check leaves such fields out (recordSchema). That holds
// for a constant or a lookup value (checked against the target's schema above) and for a value whose
// type a conversion, a template or a score fixes, when the target's schema asks nothing but a type. A
// value copied from the entity has only the type the API documents, which nothing makes it keep.
const annotations = new Set(['type', 'description', 'title', '$comment', 'examples']);
function typeOnly(root: JsonSchema, node: JsonSchema | undefined, types: Set<string>, also?: string): boolean {
  if (!node) return false;
  const n = resolveRef(root, node);
  return Object.keys(n).every((k) => annotations.has(k) || k === also) && compatible(typesOf(root, n), types).length === 0;
}
const proven = (yes: boolean): { proven?: true } => (yes ? { proven: true } : {});
/** A `from` (a rule's or an object field's): every alternative converted or looked up; a cut (maxLength) keeps a string a string, not a checked value. */
function fromProven(c: Ctx, node: JsonSchema | undefined, f: { alts: AltIR[]; arrayCopy: boolean; types: Set<string>; values?: unknown[] }, maxLength: number | undefined): boolean {
  const typed = !f.arrayCopy && f.alts.every((a) => a.steps.length > 0);
  return typed && ((!!f.values && maxLength === undefined) || typeOnly(c.output, node, f.types));
}

// One Ajv for the sub-schema checks of constants and lookup values, each sub-schema compiled once.
let subAjv: ReturnType<typeof newAjv> | undefined;
const subCache = new WeakMap<JsonSchema, ValidateFunction>();
function subValidator(root: JsonSchema, node: JsonSchema): ValidateFunction {
  const resolved = resolveRef(root, node);
  let v = subCache.get(resolved);
  if (!v) {
    const { $id: _id, $schema: _s, ...rest } = resolved;
    subAjv ??= newAjv();
    v = subAjv.compile({ ...rest, definitions: root.definitions ?? {} });
    subCache.set(resolved, v);
  }
  return v;
}

function parseTemplate(c: Ctx, template: string, pointer: string): TemplatePart[] | undefined {
  const parts: TemplatePart[] = [];
  let lit = '';
  let ok = true;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (ch === '{' && template[i + 1] === '{') {
      lit += '{';
      i++;
    } else if (ch === '}' && template[i + 1] === '}') {
      lit += '}';
      i++;
    } else if (ch === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) {
        c.problems.push({ file: c.file, pointer, message: `unclosed "{" at character ${i + 1} (write {{ for a literal brace)` });
        return undefined;
      }
      const [pathText, ...pipes] = template.slice(i + 1, end).split('|').map((s) => s.trim());
      const p = checkPath(c, pathText ?? '', pointer);
      if (p) {
        const steps: RawStep[] = pipes.map((pipe) => (pipe.startsWith('lookup:') ? { lookup: pipe.slice(7), pointer } : { convert: pipe, pointer }));
        const ops = checkSteps(c, steps, p.types);
        if (ops) {
          if (lit) parts.push(lit);
          lit = '';
          parts.push({ path: p.ref, ...ops.ops });
        } else ok = false;
      } else ok = false;
      i = end;
    } else if (ch === '}') {
      c.problems.push({ file: c.file, pointer, message: `unmatched "}" at character ${i + 1} (write }} for a literal brace)` });
      return undefined;
    } else lit += ch;
  }
  if (lit) parts.push(lit);
  return ok ? parts : undefined;
}

type FromSpec = NonNullable<FieldRule['from']>;
interface CheckedFrom {
  alts: AltIR[];
  arrayCopy: boolean;
  types: Set<string>;
  itemTypes: Set<string>;
  values?: unknown[];
}

/** A from (one path, or alternatives each with its own steps) plus the rule's steps, applied after the alternative's. */
function checkFrom(c: Ctx, from: FromSpec, pointer: string, base: JsonSchema, rule: { convert?: FieldRule['convert']; lookup?: FieldRule['lookup'] }, rulePtr: string): CheckedFrom | undefined {
  const list = Array.isArray(from) ? from : [from];
  const alts: AltIR[] = [];
  const types = new Set<string>();
  const itemTypes = new Set<string>();
  let values: unknown[] | undefined = [];
  let arrays = 0;
  let ok = true;
  const ruleSteps = (rule.convert !== undefined || rule.lookup !== undefined) ? rule : undefined;
  list.forEach((alt, j) => {
    const aptr = Array.isArray(from) ? `${pointer}/${j}` : pointer;
    const a = typeof alt === 'string' ? { path: alt } : (alt as FromAlternative);
    const p = checkPath(c, a.path, typeof alt === 'string' ? aptr : `${aptr}/path`, base, true);
    if (!p) {
      ok = false;
      return;
    }
    if (p.array) {
      arrays++;
      if (p.node) for (const t of typesOf(c.input, itemsOf(c.input, p.node) ?? {})) if (t !== 'null') itemTypes.add(t);
      if (typeof alt !== 'string' || ruleSteps) {
        c.problems.push({ file: c.file, pointer: aptr, message: `"${a.path}" is an array: use "collect" with "${a.path}[]" to convert or look up its items` });
        ok = false;
      }
      alts.push({ path: p.ref, steps: [] });
      return;
    }
    const own = typeof alt === 'string' ? undefined : checkOps(c, a, p.types, aptr, `${aptr}/convert`, `${aptr}/lookup`);
    if (typeof alt !== 'string' && !own) {
      ok = false;
      return;
    }
    const after = ruleSteps ? checkOps(c, ruleSteps, own?.types ?? p.types, rulePtr, `${rulePtr}/convert`, `${rulePtr}/lookup`) : undefined;
    if (ruleSteps && !after) {
      ok = false;
      return;
    }
    const last = after ?? own;
    (last?.types ?? p.types).forEach((t) => types.add(t));
    if (values) values = last?.values ? [...values, ...last.values] : undefined;
    alts.push({ path: p.ref, steps: [...(own?.ops.steps ?? []), ...(after?.ops.steps ?? [])] });
  });
  if (!ok) return undefined;
  if (arrays && arrays !== list.length) {
    c.problems.push({ file: c.file, pointer, message: 'mixes array and non-array paths' });
    return undefined;
  }
  return { alts, arrayCopy: arrays > 0, types, itemTypes, ...(values && values.length ? { values } : {}) };
}

function checkRule(c: Ctx, rule: FieldRule, i: number): RuleIR | undefined {
  const ptr = `/fields/${i}`;
  const kinds = (['const', 'from', 'template', 'collect', 'objects', 'score', 'raw'] as const).filter((k) => rule[k] !== undefined);
  if (kinds.length !== 1) {
    c.problems.push({ file: c.file, pointer: ptr, message: `a field rule needs exactly one of "const", "from", "template", "collect", "objects", "score", "raw"${kinds.length ? ` (found ${kinds.join(', ')})` : ''}` });
    return undefined;
  }
  const kind = kinds[0];
  if ((kind === 'const' || kind === 'raw' || kind === 'template' || kind === 'objects') && (rule.convert !== undefined || rule.lookup !== undefined)) {
    c.problems.push({ file: c.file, pointer: `${ptr}/${rule.convert !== undefined ? 'convert' : 'lookup'}`, message: `does not apply to "${kind}"${kind === 'template' ? ' (use {path|conversion|lookup:table} inside the template)' : kind === 'objects' ? ' (give each field its own convert / lookup)' : ''}` });
  }
  if ((kind === 'const' || kind === 'raw' || kind === 'objects' || kind === 'score') && rule.default !== undefined) c.problems.push({ file: c.file, pointer: `${ptr}/default`, message: `does not apply to "${kind}"` });
  if (rule.maxLength !== undefined && kind !== 'from' && kind !== 'template') c.problems.push({ file: c.file, pointer: `${ptr}/maxLength`, message: `applies to "from" and "template" only` });
  const node = targetNode(c, rule.target, `${ptr}/target`);
  const when = rule.when ? checkConds(c, rule.when, `${ptr}/when`) : undefined;
  if (rule.when && !when) return undefined;
  const target = rule.target.split('.');
  const base = { target, ...(when ? { when } : {}), ...(rule.default !== undefined ? { default: rule.default } : {}), ...(rule.maxLength !== undefined ? { maxLength: rule.maxLength } : {}) };
  const checkDefault = () => {
    if (node && rule.default !== undefined) checkTypes(c, node, { types: new Set([jsonType(rule.default)]), values: [rule.default] }, `${ptr}/default`, rule.target);
  };
  switch (kind) {
    case 'const': {
      if (node) checkTypes(c, node, { types: new Set([jsonType(rule.const)]), values: [rule.const] }, `${ptr}/const`, rule.target);
      return node ? { ...base, kind, value: rule.const, proven: true } : undefined;
    }
    case 'raw': {
      if (node) checkTypes(c, node, { types: new Set(['object']) }, `${ptr}/raw`, rule.target);
      return node ? { ...base, kind } : undefined;
    }
    case 'from': {
      const f = checkFrom(c, rule.from as FromSpec, `${ptr}/from`, c.input, rule, ptr);
      if (!f) return undefined;
      if (node) {
        if (f.arrayCopy) checkTypes(c, node, { types: new Set(['array']), itemTypes: f.itemTypes }, `${ptr}/from`, rule.target);
        else checkTypes(c, node, { types: f.types, values: f.values }, `${ptr}/${f.values ? 'lookup' : 'from'}`, rule.target);
      }
      checkDefault();
      return node ? { ...base, kind, alts: f.alts, arrayCopy: f.arrayCopy, ...proven(fromProven(c, node, f, rule.maxLength)) } : undefined;
    }
    case 'objects': {
      const o = rule.objects as ObjectsSource;
      const optr = `${ptr}/objects`;
      const each = checkPath(c, o.each.endsWith('[]') ? o.each : `${o.each}[]`, `${optr}/each`);
      if (!each?.node) return undefined;
      const where = o.where ? checkConds(c, o.where, `${optr}/where`, each.node) : undefined;
      if (o.where && !where) return undefined;
      const items = node && itemsOf(c.output, node);
      if (node && (!typesOf(c.output, node).has('array') || !items || !propertiesOf(c.output, items))) {
        c.problems.push({ file: c.file, pointer: `${ptr}/target`, message: `"${rule.target}" is not a list of objects in ${c.output.title as string}` });
        return undefined;
      }
      const fields: ObjectFieldIR[] = [];
      let ok = true;
      for (const [name, spec] of Object.entries(o.fields)) {
        const fptr = `${optr}/fields/${escapePointer(name)}`;
        const sub = typeof spec === 'string' || spec === undefined ? { from: spec ?? '.' } : spec;
        const f = checkFrom(c, sub.from, typeof spec === 'string' ? fptr : `${fptr}/from`, each.node, sub, fptr);
        if (!f || f.arrayCopy) {
          if (f) c.problems.push({ file: c.file, pointer: fptr, message: 'an object field takes one value, not an array' });
          ok = false;
          continue;
        }
        const fnode = items ? child(c.output, items, name) : undefined;
        if (items && !fnode) {
          c.problems.push({ file: c.file, pointer: fptr, message: `"${name}" is not a field of the items of "${rule.target}"${didYouMean(name, Object.keys(propertiesOf(c.output, items) ?? {}))}` });
          ok = false;
          continue;
        }
        if (fnode) checkTypes(c, fnode, { types: f.types, values: f.values }, fptr, `${rule.target}[].${name}`);
        fields.push({ name, alts: f.alts, ...(sub.maxLength !== undefined ? { maxLength: sub.maxLength } : {}), ...proven(fromProven(c, fnode, f, sub.maxLength)) });
      }
      return ok && node ? { ...base, kind, each: each.ref, ...(where ? { where } : {}), distinct: o.distinct === true, fields } : undefined;
    }
    case 'score': {
      const inputs: string[][] = [];
      let ok = true;
      (rule.score as ScoreSource).of.forEach((t, j) => {
        const n = targetNode(c, t, `${ptr}/score/of/${j}`);
        if (!n) ok = false;
        else if (!typesOf(c.output, n).has('integer') && !typesOf(c.output, n).has('number')) {
          c.problems.push({ file: c.file, pointer: `${ptr}/score/of/${j}`, message: `"${t}" is not a number in ${c.output.title as string}` });
          ok = false;
        } else inputs.push(t.split('.'));
      });
      const ops = checkOps(c, rule, new Set(['integer']), ptr, `${ptr}/convert`, `${ptr}/lookup`);
      if (!ops) return undefined;
      if (node) checkTypes(c, node, { types: ops.types, values: ops.values }, `${ptr}/${ops.values ? 'lookup' : 'score'}`, rule.target);
      return ok && node ? { ...base, kind, method: (rule.score as ScoreSource).method, inputs, ...ops.ops, ...proven(!!ops.values || typeOnly(c.output, node, ops.types)) } : undefined;
    }
    case 'template': {
      const parts = parseTemplate(c, rule.template as string, `${ptr}/template`);
      if (node) checkTypes(c, node, { types: new Set(['string']) }, `${ptr}/template`, rule.target);
      checkDefault();
      return parts && node ? { ...base, kind, parts, ...proven(typeOnly(c.output, node, new Set(['string']))) } : undefined;
    }
    case 'collect': {
      const sources: CollectIR[] = [];
      const inTypes = new Set<string>();
      let ok = true;
      (rule.collect ?? []).forEach((src, j) => {
        const sp = `${ptr}/collect/${j}`;
        if (typeof src === 'string') {
          const p = checkPath(c, src, sp);
          if (!p) ok = false;
          else {
            sources.push({ path: p.ref });
            p.types.forEach((t) => inTypes.add(t));
          }
          return;
        }
        const s = src as CollectSource;
        const each = checkPath(c, s.each.endsWith('[]') ? s.each : `${s.each}[]`, `${sp}/each`);
        if (!each?.node) {
          ok = false;
          return;
        }
        const where = s.where ? checkConds(c, s.where, `${sp}/where`, each.node) : undefined;
        const p = checkPath(c, s.path, `${sp}/path`, each.node);
        if (!p || (s.where && !where)) {
          ok = false;
          return;
        }
        sources.push({ each: each.ref, ...(where ? { where } : {}), path: p.ref });
        p.types.forEach((t) => inTypes.add(t));
      });
      if (!ok) return undefined;
      const ops = checkOps(c, rule, inTypes, ptr, `${ptr}/convert`, `${ptr}/lookup`);
      if (!ops) return undefined;
      if (node) checkTypes(c, node, { types: new Set(['array']), itemTypes: ops.types }, `${ptr}/collect`, rule.target);
      checkDefault();
      const items = node && itemsOf(c.output, node);
      const sure = ops.ops.steps.length > 0 && typeOnly(c.output, node, new Set(['array']), 'items') && typeOnly(c.output, items, ops.types);
      return node ? { ...base, kind, sources, ...ops.ops, ...proven(sure) } : undefined;
    }
  }
}

/** Every required output field (and required fields of targeted sub-objects) must be set by some rule. */
function checkCoverage(c: Ctx, targets: string[], node: JsonSchema, prefix: string): void {
  const n = resolveRef(c.output, node);
  const required = Array.isArray(n.required) ? (n.required as string[]) : [];
  for (const r of required) {
    const full = prefix + r;
    if (!targets.some((t) => t === full || t.startsWith(full + '.'))) c.problems.push({ file: c.file, pointer: '/fields', message: `required output field "${full}" of ${c.output.title as string} is not set by any rule` });
  }
  for (const [name, sub] of Object.entries(propertiesOf(c.output, n) ?? {})) {
    const full = prefix + name;
    if (targets.some((t) => t.startsWith(full + '.')) && !targets.includes(full)) checkCoverage(c, targets, sub, full + '.');
  }
}

function loadLookupDir(dir: string, problems: Problem[]): Map<string, LookupRuntime> {
  const out = new Map<string, LookupRuntime>();
  const lookupDir = join(dir, 'lookups');
  if (!existsSync(lookupDir)) return out;
  const { lookup } = validators();
  for (const name of readdirSync(lookupDir).filter((f) => f.endsWith('.json')).sort()) {
    const file = join(lookupDir, name);
    const before = problems.length;
    const parsed = readJson(file, problems);
    if (!parsed) continue;
    if (!lookup(parsed.value)) {
      const root = loadSchema('transform.schema.json');
      problems.push(...withKeySuggestions(ajvProblems(file, lookup.errors), root, 'lookup'));
    } else {
      const l = buildLookup(name.slice(0, -5), file, '', parsed.value as LookupTable, problems);
      if (l) out.set(l.name, l);
    }
    addLines(problems, before, parsed.text);
  }
  return out;
}

function addLines(problems: Problem[], from: number, text: string): void {
  const locate = lineLocator(text);
  for (let i = from; i < problems.length; i++) {
    const p = problems[i] as Problem;
    if (p.line === undefined) {
      const line = locate(p.pointer);
      if (line !== undefined) problems[i] = { ...p, line };
    }
  }
}

function loadInputOutput(rel: string, file: string, pointer: string, problems: Problem[], overlaid: Map<string, JsonSchema>): JsonSchema | undefined {
  const withOverlays = overlaid.get(rel);
  if (withOverlays) return withOverlays;
  if (!existsSync(join(schemaDir, rel))) {
    const dir = rel.split('/')[0];
    const known = dir && existsSync(join(schemaDir, dir)) ? readdirSync(join(schemaDir, dir)).map((f) => `${dir}/${f}`) : [];
    problems.push({ file, pointer, message: `schema "${rel}" not found under schemas/${didYouMean(rel, known)}` });
    return undefined;
  }
  return loadSchema(rel) as JsonSchema;
}

/** Loads and checks one transforms directory. Problems are returned all at once; transforms is empty when there are any. */
export function loadTransformDir(dir: string): LoadResult {
  const problems: Problem[] = [];
  if (!existsSync(dir)) return { transforms: [], lookups: new Map(), overlays: [], problems: [{ file: dir, pointer: '', message: 'transforms directory not found' }] };
  const shared = loadLookupDir(dir, problems);
  const { file: validateFile, overlay: validateOverlay } = validators();
  const overlays = loadOverlays(dir, problems, {
    read: (file) => readJson(file, problems),
    check: (file, value): value is SchemaOverlay => {
      if (validateOverlay(value)) return true;
      problems.push(...ajvProblems(file, validateOverlay.errors));
      return false;
    },
    done: (from, text) => addLines(problems, from, text),
  });
  const root = loadSchema('transform.schema.json') as JsonSchema;
  const transforms: LoadedTransform[] = [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  for (const name of files) {
    const file = join(dir, name);
    const before = problems.length;
    const parsed = readJson(file, problems);
    if (!parsed) continue;
    const t = loadOne(file, name.slice(0, -5), parsed.value, shared, problems, validateFile, root, overlays.schemas);
    if (t) transforms.push(t);
    addLines(problems, before, parsed.text);
  }
  for (const content of Object.keys(tagsFor) as ContentType[]) {
    if (!transforms.some((t) => t.content === content) && !problems.some((p) => p.file.endsWith('.json') && basename(p.file).startsWith(content + '.')))
      problems.push({ file: dir, pointer: '', message: `no transform for content type "${content}" (expected a file such as ${content}.syslog.json)` });
  }
  return { transforms: problems.length ? [] : transforms, lookups: shared, overlays: overlays.applied, problems };
}

function loadOne(file: string, name: string, value: unknown, shared: Map<string, LookupRuntime>, problems: Problem[], validate: ValidateFunction<TransformFile>, root: JsonSchema, overlaid: Map<string, JsonSchema>): LoadedTransform | undefined {
  if (!validate(value)) {
    problems.push(...withKeySuggestions(ajvProblems(file, validate.errors), root, 'transform'));
    return undefined;
  }
  const tf = value;
  if (!tagsFor[tf.content].includes(tf.tag)) problems.push({ file, pointer: '/tag', message: `content "${tf.content}" is emitted with tag ${tagsFor[tf.content].map((t) => `"${t}"`).join(' or ')}` });
  const input = loadInputOutput(tf.input, file, '/input', problems, overlaid);
  const output = loadInputOutput(tf.output, file, '/output', problems, overlaid);
  if (!input || !output) return undefined;
  const lookups = new Map(shared);
  for (const [lname, table] of Object.entries(tf.lookups ?? {})) {
    if (shared.has(lname)) problems.push({ file, pointer: `/lookups/${escapePointer(lname)}`, message: `lookup "${lname}" is also defined in transforms/lookups/${lname}.json` });
    const l = table && buildLookup(lname, file, `/lookups/${escapePointer(lname)}`, table, problems);
    if (l) lookups.set(lname, l);
  }
  const c: Ctx = { file, problems, input, output, lookups, items: new Map() };
  const before = problems.length;
  const items: ItemIR[] = [];
  for (const [iname, pick] of Object.entries(tf.items ?? {})) {
    if (!pick) continue;
    const iptr = `/items/${escapePointer(iname)}`;
    const each = checkPath(c, pick.each.endsWith('[]') ? pick.each : `${pick.each}[]`, `${iptr}/each`);
    if (!each?.node) continue;
    const prefer = pick.prefer.map((p, j) => checkConds(c, p, `${iptr}/prefer/${j}`, each.node));
    if (prefer.every((p) => p)) items.push({ name: iname, each: each.ref, prefer: prefer as CondsIR[] });
    c.items.set(iname, each.node);
  }
  const rules = tf.fields.map((r, i) => checkRule(c, r, i));
  checkCoverage(c, tf.fields.map((r) => r.target), output, '');
  if (problems.length > before || rules.some((r) => !r)) return undefined;
  return { name, file, content: tf.content, tag: tf.tag, output: tf.output, input: tf.input, inputSchema: input, outputSchema: output, source: tf, items, rules: rules as RuleIR[] };
}
