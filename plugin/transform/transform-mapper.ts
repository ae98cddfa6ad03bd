// The RecordMapper the collector calls: every compiled transform of a content type, in file-name
// order (host: host.assets then host.syslog), each record checked against its index schema. A record
// that fails the check (or whose transform threw) is still delivered, marked with transform_error,
// and counted: it is never dropped silently.
import type { ValidateFunction } from 'ajv';
import type { ContentType } from '../config/load.js';
import { itemDefect } from '../defender/page-stream.js';
import { tagFor, tagSuffix, type OutRecord } from '../output/sink.js';
import { ajvProblems, loadSchema, newAjv } from '../schema-check.js';
import { itemsOf, propertiesOf, resolveRef, type JsonSchema } from './schema-nav.js';
import { clean } from './convert.js';
import { addedByCollector, compileRules, type CompiledFn } from './compile.js';
import type { LoadedTransform, ObjectFieldIR, RuleIR } from './load.js';
import type { MapContext, RecordMapper } from './mapper.js';

export interface CompiledTransform {
  name: string;
  content: ContentType;
  tagSuffix: string;
  fn: CompiledFn;
  /** output index schema, relative to schemas/ */
  output: string;
  validate: ValidateFunction;
  source: string;
}

/** Counters that survive reloads (one instance per process, shared by successive mappers). */
export class TransformStats {
  readonly mapped = new Map<string, number>();
  readonly errors = new Map<string, number>();
  lastError: { transform: string; message: string } | undefined;

  snapshot(): { mapped: Record<string, number>; errors: Record<string, number>; lastError?: { transform: string; message: string } } {
    return { mapped: Object.fromEntries(this.mapped), errors: Object.fromEntries(this.errors), ...(this.lastError ? { lastError: this.lastError } : {}) };
  }
}

// Keyed by the schema's text: a reload recompiles only when an overlay changed the schema.
const validators = new Map<string, ValidateFunction>();
/** The record check of an index schema (relative to schemas/, or the schema itself, e.g. with overlays applied). */
export function indexValidator(schema: string | JsonSchema): ValidateFunction {
  const s = typeof schema === 'string' ? loadSchema(schema) : schema;
  const key = JSON.stringify(s);
  let v = validators.get(key);
  if (!v) {
    v = newAjv().compile(s);
    validators.set(key, v);
  }
  return v;
}

/** Readable summary of ajv errors for transform_error (at most 3, JSON pointers included). */
export function describeErrors(v: ValidateFunction): string {
  const problems = ajvProblems('', v.errors);
  const shown = problems.slice(0, 3).map((p) => `${p.pointer || '/'} ${p.message}`);
  return `index schema check failed: ${shown.join('; ')}${problems.length > 3 ? ` (+${problems.length - 3} more)` : ''}`;
}

export function compileTransform(t: LoadedTransform): CompiledTransform {
  const c = compileRules(t.rules, t.inputSchema, t.items);
  return { name: t.name, content: t.content, tagSuffix: tagSuffix[t.tag], fn: c.fn, output: t.output, validate: indexValidator(recordSchema(t)), source: c.source };
}

// What a record is checked against at run time: the index schema less what no record of this
// transform can break. The shared Syslog schema lists the fields of every content type (~130); a
// record has only the top-level fields its rules target, so only those stay, and
// additionalProperties goes (load checked that every target is a field). Fields whose every rule is
// `proven` (load.ts: a constant, a lookup value, a converted value where only the type is asked) go
// too, and so do the proven fields of the objects an `objects` rule makes (which have no other
// fields). Required fields and everything else stay, so any record the transform makes gets the
// same verdict, in less time: the check looks each field up in records and evidence items of many
// shapes, which V8 does slowly (megamorphic loads), and on the emulator's varied alerts it cost
// twice the transform. The top-level properties sit in a null-prototype object: V8 keeps it as a
// hash table, and the check looks every key of every record up in it (as a plain object of 80
// fields it was ~10 % slower).
/** The transform's index schema with only what a record of it could get wrong. */
function recordSchema(t: LoadedTransform): JsonSchema {
  const props = t.outputSchema.properties;
  if (!props || typeof props !== 'object') return t.outputSchema;
  const rulesOf = new Map<string, RuleIR[]>();
  for (const r of t.rules) rulesOf.set(r.target[0] as string, [...(rulesOf.get(r.target[0] as string) ?? []), r]);
  const kept = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(props as Record<string, JsonSchema>)) {
    const rules = rulesOf.get(k);
    if (!rules || rules.every((r) => r.target.length === 1 && r.proven)) continue;
    const only = rules.length === 1 ? rules[0] : undefined;
    kept[k] = only?.kind === 'objects' && only.target.length === 1 ? objectsSchema(t.outputSchema, v, only.fields) : v;
  }
  const { additionalProperties: _all, ...rest } = t.outputSchema;
  return { ...rest, properties: kept };
}

/** The list an `objects` rule makes, its items with only the fields that rule does not prove (an item has no other field). */
function objectsSchema(root: JsonSchema, node: JsonSchema, fields: ObjectFieldIR[]): JsonSchema {
  const items = itemsOf(root, node);
  const props = items && propertiesOf(root, items);
  if (!items || !props) return node;
  const unproven = new Set(fields.filter((f) => !f.proven).map((f) => f.name));
  const { additionalProperties: _all, ...rest } = items;
  return { ...resolveRef(root, node), items: { ...rest, properties: Object.fromEntries(Object.entries(props).filter(([k]) => unproven.has(k))) } };
}

export interface TransformMapperOptions {
  stats?: TransformStats;
  /** check every record against its index schema (default true; `run`, preview and tests keep it on) */
  checkOutput?: boolean;
  /** called on a record marked with transform_error (logging; keep it cheap) */
  onError?: (transform: string, message: string) => void;
}

export class TransformMapper implements RecordMapper {
  readonly stats: TransformStats;
  private readonly byContent: Record<ContentType, CompiledTransform[]>;
  private readonly checkOutput: boolean;
  private readonly onError?: (transform: string, message: string) => void;
  private tagCache: { prefix: string; tags: Map<CompiledTransform, string> } = { prefix: '', tags: new Map() };

  constructor(
    readonly transforms: CompiledTransform[],
    opts: TransformMapperOptions = {},
  ) {
    this.stats = opts.stats ?? new TransformStats();
    this.checkOutput = opts.checkOutput ?? true;
    this.onError = opts.onError;
    this.byContent = { alerts: [], host: [], vulnerabilities: [], machineActions: [], hunting: [] };
    for (const t of transforms) this.byContent[t.content].push(t);
  }

  transformsFor(content: ContentType): CompiledTransform[] {
    return this.byContent[content];
  }

  private tag(t: CompiledTransform, prefix: string): string {
    if (this.tagCache.prefix !== prefix) this.tagCache = { prefix, tags: new Map() };
    let tag = this.tagCache.tags.get(t);
    if (tag === undefined) {
      tag = tagFor(prefix, t.tagSuffix);
      this.tagCache.tags.set(t, tag);
    }
    return tag;
  }

  /** One transform applied to one entity, with the schema check; never throws. */
  mapOne(t: CompiledTransform, entity: Record<string, unknown>, ctx: MapContext): OutRecord {
    let record: Record<string, unknown>;
    let error: string | undefined;
    try {
      record = t.fn(entity, ctx);
      if (this.checkOutput && !t.validate(record)) error = describeErrors(t.validate);
    } catch (e) {
      // Keep the entity: deliver the envelope and the raw entity, marked.
      error = `transform ${t.name} failed: ${(e as Error).message}`;
      record = fallbackRecord(t, entity, ctx);
    }
    this.stats.mapped.set(t.name, (this.stats.mapped.get(t.name) ?? 0) + 1);
    // an item the page reader had to alter (too deep, not an object) is delivered marked
    const defect = (entity as Record<symbol, string | undefined>)[itemDefect];
    if (defect !== undefined) error = error === undefined ? defect : `${defect}; ${error}`;
    if (error !== undefined) {
      record.transform_error = error;
      this.stats.errors.set(t.name, (this.stats.errors.get(t.name) ?? 0) + 1);
      this.stats.lastError = { transform: t.name, message: error };
      this.onError?.(t.name, error);
    }
    const ts = record.timestamp;
    return { tag: this.tag(t, ctx.tagPrefix), time: typeof ts === 'number' && Number.isFinite(ts) ? ts : ctx.writeTime, record };
  }

  map(content: ContentType, entity: Record<string, unknown>, ctx: MapContext): OutRecord[] {
    const list = this.byContent[content];
    if (list.length === 1) return [this.mapOne(list[0] as CompiledTransform, entity, ctx)];
    const out: OutRecord[] = [];
    for (const t of list) out.push(this.mapOne(t, entity, ctx));
    return out;
  }
}

const msgClass: Record<ContentType, string> = { alerts: 'microsoft_defender_alerts', host: 'microsoft_defender_host', vulnerabilities: 'microsoft_defender_vulnerabilities', machineActions: 'microsoft_defender_machine_action', hunting: 'microsoft_defender_hunting' };

function fallbackRecord(t: CompiledTransform, entity: unknown, ctx: MapContext): Record<string, unknown> {
  return {
    write_time: ctx.writeTime,
    msg_class: msgClass[t.content],
    msg_origin: { source: 'microsoft_defender', vendor: 'microsoft', category: 'endpoint', processor: { name: 'microsoft_defender', type: 'log_collector' } },
    tenant_name: ctx.tenant,
    engid_name: `microsoft_defender_${ctx.connector}`,
    microsoft_defender: entity && typeof entity === 'object' ? clean(Object.fromEntries(Object.entries(entity).filter(([k]) => !addedByCollector(k)))) : { value: entity },
  };
}
