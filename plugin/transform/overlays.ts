// Schema overlays: a transforms directory may add fields to the package's input and index schemas
// without editing them (a customer's `--transforms DIR`, never node_modules). DIR/overlays/*.json,
// each `{"schema": "index/syslog.schema.json", "fields": {"ext.acme.cost_center": {"type": "string"}}}`:
// new output fields live under the extension namespace `ext`; new input fields anywhere the input
// schema has an object (`evidence[].newField` adds to every evidence item). An overlay adds, never
// changes: a field the schema already has is an error. Every command that loads transforms
// (validate, preview, docs, run) checks and maps against the overlaid schemas.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SchemaOverlay } from '../generated/overlay.js';
import { escapePointer, loadSchema, newAjv, type Problem } from '../schema-check.js';
import { schemaDir } from '../paths.js';
import { child, didYouMean, itemsOf, resolveRef, typesOf, type JsonSchema } from './schema-nav.js';

/** The output namespace overlay fields live under (declared, empty, in schemas/index/*.schema.json). */
export const extensionNamespace = 'ext';

export interface OverlayField {
  path: string;
  schema: JsonSchema;
}
export interface AppliedOverlay {
  file: string;
  /** relative to schemas/ */
  schema: string;
  description?: string;
  fields: OverlayField[];
}

export interface Overlays {
  /** relative schema path → the schema with every overlay applied (absent: no overlay for it) */
  schemas: Map<string, JsonSchema>;
  applied: AppliedOverlay[];
}

export const overlaysDir = (dir: string): string => join(dir, 'overlays');

/**
 * Applies DIR/overlays/*.json (in file-name order) to copies of the package's schemas. `read` parses
 * a file (pushing its problem when it cannot) and `check` validates it against the overlay format
 * (pushing the problems); `done` adds line numbers to the problems pushed for one file.
 */
export function loadOverlays(
  dir: string,
  problems: Problem[],
  io: { read: (file: string) => { value: unknown; text: string } | undefined; check: (file: string, value: unknown) => value is SchemaOverlay; done: (from: number, text: string) => void },
): Overlays {
  const out: Overlays = { schemas: new Map(), applied: [] };
  const folder = overlaysDir(dir);
  if (!existsSync(folder)) return out;
  for (const name of readdirSync(folder).filter((f) => f.endsWith('.json')).sort()) {
    const file = join(folder, name);
    const before = problems.length;
    const parsed = io.read(file);
    if (!parsed) continue;
    if (io.check(file, parsed.value)) applyOverlay(file, parsed.value, out, problems);
    io.done(before, parsed.text);
  }
  return out;
}

function applyOverlay(file: string, o: SchemaOverlay, out: Overlays, problems: Problem[]): void {
  if (!existsSync(join(schemaDir, o.schema))) {
    const folder = o.schema.split('/')[0] as string;
    problems.push({ file, pointer: '/schema', message: `schema "${o.schema}" not found under schemas/${didYouMean(o.schema, readdirSync(join(schemaDir, folder)).map((f) => `${folder}/${f}`))}` });
    return;
  }
  const output = o.schema.startsWith('index/');
  const root = out.schemas.get(o.schema) ?? (loadSchema(o.schema) as JsonSchema);
  const fields: OverlayField[] = [];
  for (const [path, fragment] of Object.entries(o.fields)) {
    const pointer = `/fields/${escapePointer(path)}`;
    const problem = addField(root, path, fragment as JsonSchema, output);
    if (problem) {
      problems.push({ file, pointer, message: problem });
      continue;
    }
    try {
      newAjv().compile(fragment as JsonSchema);
    } catch (e) {
      problems.push({ file, pointer, message: `not a valid JSON schema: ${(e as Error).message}` });
      continue;
    }
    fields.push({ path, schema: fragment as JsonSchema });
  }
  out.schemas.set(o.schema, root);
  out.applied.push({ file, schema: o.schema, ...(o.description ? { description: o.description } : {}), fields });
}

/** Adds one field to root (mutated); returns what is wrong instead, if anything. */
function addField(root: JsonSchema, path: string, fragment: JsonSchema, output: boolean): string | undefined {
  const segs = path.split('.').map((s) => ({ name: s.replace(/\[\]$/, ''), each: s.endsWith('[]') }));
  const title = (root.title as string | undefined) ?? 'the schema';
  if (output && (segs[0]?.name !== extensionNamespace || segs.length < 2 || segs[0].each)) return `new output fields go under "${extensionNamespace}." (e.g. "${extensionNamespace}.${segs[segs.length - 1]?.name ?? 'field'}"), so they never collide with the package's fields`;
  if (!output && segs.some((s) => s.name.startsWith('_'))) return 'input fields starting with "_" are reserved for what the collector attaches (e.g. _machine)';
  let node = root;
  for (let i = 0; i < segs.length; i++) {
    const { name, each } = segs[i] as { name: string; each: boolean };
    const last = i === segs.length - 1;
    const here = resolveRef(root, node);
    if (!typesOf(root, here).has('object')) return `"${segs.slice(0, i).map((s) => s.name).join('.')}" is not an object in ${title}`;
    const existing = child(root, here, name);
    if (last) {
      if (existing) return `"${path}" is already in ${title}: an overlay adds fields, it does not change the package's`;
      if (each) return `the new field is "${name}": end the path without []`;
      here.properties = { ...((here.properties as Record<string, JsonSchema> | undefined) ?? {}), [name]: fragment };
      return undefined;
    }
    if (each) {
      const items = existing && typesOf(root, existing).has('array') ? itemsOf(root, existing) : undefined;
      if (!items) return `"${name}" is not a list of objects in ${title}: remove the []`;
      node = items;
      continue;
    }
    if (existing) {
      if (typesOf(root, existing).has('array')) return `"${name}" is an array in ${title}: write "${name}[]" to add a field to its items`;
      node = existing;
      continue;
    }
    // a new object on the way (e.g. ext.acme.cost_center creates ext.acme)
    const created: JsonSchema = { type: 'object', additionalProperties: !output, properties: {} };
    here.properties = { ...((here.properties as Record<string, JsonSchema> | undefined) ?? {}), [name]: created };
    node = created;
  }
  return undefined;
}
