// `defender-fluent docs`: docs/fields.md, every output field of every transform with its type,
// source and rule, generated from the transform files (a test keeps the committed file in sync).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { formatProblem } from '../schema-check.js';
import { loadTransformDir, type AltIR, type CondIR, type CondsIR, type LoadedTransform, type PathRef, type RuleIR, type ValueOps } from './load.js';
import { child, itemsOf, typesOf, type JsonSchema } from './schema-nav.js';
import type { LookupRuntime } from './lookups.js';
import type { LookupTable } from '../generated/transform.js';
import { transformsDir } from './transforms.js';
import type { AppliedOverlay } from './overlays.js';

/** Relative to the current folder: an installed package's own folder (node_modules) is never written. */
export const defaultFieldsDoc = 'docs/fields.md';

const code = (s: string) => '`' + s.replace(/`/g, "'") + '`';
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function path(p: PathRef): string {
  return code(p.text);
}

function ops(o: ValueOps): string {
  const parts = o.steps.map((s) => ('lookup' in s ? `lookup ${code(s.lookup.name)}` : `convert ${s.convert}`));
  return parts.length ? ` → ${parts.join(' → ')}` : '';
}

function cond1(c: CondIR): string {
  const not = c.negate ? 'not ' : '';
  if (c.op === 'exists') return `${path(c.path)} ${(c.value === false) !== c.negate ? 'is empty' : 'is set'}`;
  if (c.op === 'in') return `${path(c.path)} ${not}in ${code(JSON.stringify(c.value))}`;
  if (c.op === 'ip') return `${path(c.path)} is ${not}a ${(c.value as string[]).join(' / ')} IP`;
  if (c.op === 'startsWith') return `${path(c.path)} ${not}starts with ${code(JSON.stringify(c.value))}`;
  if (c.op === 'equalsPath') return `${path(c.path)} ${c.negate ? '≠' : '='} ${path(c.value as PathRef)}`;
  return `${path(c.path)} ${c.negate ? '≠' : '='} ${code(JSON.stringify(c.value))}`;
}

function cond(list: CondsIR): string {
  return list.map(cond1).join(' and ');
}

function alts(list: AltIR[]): string {
  return list.map((a) => path(a.path) + ops(a)).join(', ');
}

function describe(r: RuleIR): { source: string; rule: string } {
  let out: { source: string; rule: string };
  switch (r.kind) {
    case 'const':
      out = { source: '', rule: `constant ${code(JSON.stringify(r.value))}` };
      break;
    case 'raw':
      out = { source: 'whole entity', rule: 'raw: nulls and empty strings removed, unknown fields kept' };
      break;
    case 'from':
      out = { source: alts(r.alts), rule: r.alts.length > 1 ? 'first non-empty' : r.arrayCopy ? 'copy (array)' : 'copy' };
      break;
    case 'objects':
      out = {
        source: `each ${path(r.each)}${r.where ? ` where ${cond(r.where)}` : ''}`,
        rule: `list of objects, one per element: ${r.fields.map((f) => `${code(f.name)} ← ${alts(f.alts)}`).join('; ')}`,
      };
      break;
    case 'score':
      out = { source: r.inputs.map((t) => code(t.join('.'))).join(', '), rule: r.method === 'max' ? 'the largest of the output fields that are set' : 'rounded geometric mean of the output fields that are set' + ops(r) };
      break;
    case 'template':
      out = {
        source: r.parts
          .filter((p) => typeof p !== 'string')
          .map((p) => path((p as { path: PathRef }).path))
          .join(', '),
        rule: `template ${code(r.parts.map((p) => (typeof p === 'string' ? p : `{${[p.path.text, ...p.steps.map((s) => ('lookup' in s ? `lookup:${s.lookup.name}` : s.convert))].join('|')}}`)).join(''))} (all placeholders must be set)`,
      };
      break;
    case 'collect':
      out = {
        source: r.sources.map((s) => ('each' in s ? `${path(s.path)} of each ${path(s.each)}${s.where ? ` where ${cond(s.where)}` : ''}` : path(s.path))).join(', '),
        rule: 'deduplicated list' + ops(r),
      };
      break;
  }
  if (r.maxLength !== undefined) out.rule += `; cut to ${r.maxLength} characters`;
  if (r.default !== undefined) out.rule += `; default ${code(JSON.stringify(r.default))}`;
  if (r.when) out.rule += `; only when ${cond(r.when)}`;
  return out;
}

/** The type of an output field as docs and the README give it: "string", "array of string", … */
export function outputType(schema: JsonSchema, target: string[]): string {
  let node: JsonSchema | undefined = schema;
  for (const seg of target) node = node ? child(schema, node, seg) : undefined;
  if (!node) return '';
  const types = [...typesOf(schema, node)].filter((t) => t !== 'null');
  if (types.includes('array')) {
    const items = itemsOf(schema, node);
    return `array of ${items ? [...typesOf(schema, items)].join('/') : 'any'}`;
  }
  return types.join('/');
}

const docTableLimit = 100;

function renderLookups(lookups: Map<string, LookupRuntime>): string[] {
  const lines = ['## Lookup tables', '', 'Shared tables in `transforms/lookups/`; a value not in a table yields the table default, or nothing.', ''];
  for (const [name, l] of [...lookups].sort(([a], [b]) => a.localeCompare(b))) {
    const table = JSON.parse(readFileSync(l.file, 'utf8')) as LookupTable;
    lines.push(`### ${name}`, '');
    if (table.description) lines.push(table.description, '');
    if (table.bands) {
      lines.push('| from (≥) | value |', '|---|---|');
      for (const b of [...table.bands].sort((x, y) => y.min - x.min)) lines.push(`| ${b.min} | ${cell(code(JSON.stringify(b.value)))} |`);
    } else if (Object.keys(table.entries ?? {}).length > docTableLimit) {
      // a generated reference table (ATT&CK: hundreds of ids) would drown the page; point to the file
      lines.push(`${Object.keys(table.entries ?? {}).length} entries${table.caseInsensitive ? ' (keys in any case)' : ''}: see \`transforms/lookups/${name}.json\`.`);
    } else {
      lines.push(`| key${table.caseInsensitive ? ' (any case)' : ''} | value |`, '|---|---|');
      for (const [k, v] of Object.entries(table.entries ?? {})) lines.push(`| ${cell(code(k))} | ${cell(code(JSON.stringify(v)))} |`);
    }
    if (table.default !== undefined) lines.push(`| *(anything else)* | ${cell(code(JSON.stringify(table.default)))} |`);
    lines.push('');
  }
  return lines;
}

function renderOverlays(overlays: AppliedOverlay[]): string[] {
  const lines = ['## Schema overlays', '', 'Fields this transforms directory adds to the package\'s schemas (`overlays/*.json`).', ''];
  for (const o of overlays) {
    lines.push(`### ${code(o.schema)} (${code(basename(o.file))})`, '');
    if (o.description) lines.push(o.description, '');
    lines.push('| field | type | meaning |', '|---|---|---|');
    for (const f of o.fields) lines.push(`| ${code(f.path)} | ${cell([...typesOf(f.schema, f.schema)].filter((t) => t !== 'null').join('/'))} | ${cell(typeof f.schema.description === 'string' ? f.schema.description : '')} |`);
    lines.push('');
  }
  return lines;
}

export function renderFieldsDoc(transforms: LoadedTransform[], lookups?: Map<string, LookupRuntime>, overlays: AppliedOverlay[] = []): string {
  const lines = [
    '# Output fields',
    '',
    '<!-- Generated by `defender-fluent docs` from transforms/*.json. Do not edit: change the transform files and regenerate. -->',
    '',
    'Rules apply in order; a rule that yields nothing (missing, null, empty) sets nothing, and a later rule for the same field replaces an earlier one when it yields a value.',
    'Paths are API field names (`evidence[].sha1` walks the evidence array); `$tenant`, `$connector`, `$writeTime` come from the connector.',
    '',
  ];
  for (const t of transforms) {
    const schema = t.outputSchema;
    lines.push(`## ${t.name}`, '');
    if (t.source.description) lines.push(t.source.description, '');
    lines.push(`Content ${code(t.content)}, input ${code('schemas/' + t.input)}, output ${code('schemas/' + t.output)}, tag suffix ${code(t.tag)}.`, '');
    lines.push('| field | type | source | rule |', '|---|---|---|---|');
    t.rules.forEach((r, i) => {
      const d = describe(r);
      const note = t.source.fields[i]?.description;
      lines.push(`| ${code(r.target.join('.'))} | ${cell(outputType(schema, r.target))} | ${cell(d.source)} | ${cell(d.rule + (note ? ` (${note})` : ''))} |`);
    });
    lines.push('');
  }
  if (overlays.length) lines.push(...renderOverlays(overlays));
  if (lookups?.size) lines.push(...renderLookups(lookups));
  return lines.join('\n');
}

export interface DocsOptions {
  /** transforms directory (default: the package's transforms/) */
  transforms?: string;
  /** output file (default: docs/fields.md in the current folder) */
  out?: string;
  /** do not write: exit 1 when the file differs from what would be generated */
  check?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export async function docsCommand(opts: DocsOptions = {}): Promise<number> {
  const err = opts.stderr ?? process.stderr;
  const out = opts.stdout ?? process.stdout;
  const loaded = loadTransformDir(opts.transforms ?? transformsDir);
  if (loaded.problems.length) {
    for (const p of loaded.problems) err.write(`${formatProblem(p)}\n`);
    return 2;
  }
  const file = resolve(opts.out ?? defaultFieldsDoc);
  const text = renderFieldsDoc(loaded.transforms, loaded.lookups, loaded.overlays);
  if (opts.check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      /* missing counts as stale */
    }
    if (current !== text) {
      err.write(`docs: ${relative(process.cwd(), file)} is out of date: run defender-fluent docs\n`);
      return 1;
    }
    return 0;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  out.write(`wrote ${relative(process.cwd(), file) || file}\n`);
  return 0;
}
