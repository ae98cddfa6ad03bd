import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { schemaDir } from './paths.js';

// ajv-formats ships CJS with a default export; under NodeNext the callable sits on .default.
const addFormats = addFormatsModule.default;

/** One problem found in a file: which file, where (JSON pointer), what was expected. */
export interface Problem {
  file: string;
  pointer: string;
  message: string;
  /** 1-based line in the source file, when known */
  line?: number;
}

export function formatProblem(p: Problem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  return `${where}: ${p.pointer || '/'}: ${p.message}`;
}

export function newAjv(opts: { useDefaults?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictRequired: false,
    discriminator: true,
    useDefaults: opts.useDefaults ?? false,
    allowUnionTypes: true,
  });
  addFormats(ajv);
  return ajv;
}

export function loadSchema(relPath: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemaDir, relPath), 'utf8')) as Record<string, unknown>;
}

/**
 * Compiles a schema from schemas/ (relative path), e.g. compileSchema('config.schema.json'). A schema
 * may use another file's (`"$ref": "lake-record.schema.json"`, relative to its own): those are added
 * first, so one definition serves every schema that needs it.
 */
export function compileSchema<T>(relPath: string, opts: { useDefaults?: boolean } = {}): ValidateFunction<T> {
  const ajv = newAjv(opts);
  const schema = loadSchema(relPath);
  for (const file of referencedFiles(relPath, schema)) ajv.addSchema(loadSchema(file));
  return ajv.compile<T>(schema);
}

/** The schema files (relative to schemas/) a schema references by file name, theirs before their own. */
export function referencedFiles(relPath: string, schema: unknown, seen = new Set([relPath])): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return;
    for (const [k, v] of Object.entries(node)) {
      if (k !== '$ref' || typeof v !== 'string') walk(v);
      else if (!v.startsWith('#')) {
        const file = posix.join(posix.dirname(relPath), v.split('#')[0] as string);
        if (seen.has(file)) continue;
        seen.add(file);
        out.push(...referencedFiles(file, loadSchema(file), seen), file);
      }
    }
  };
  walk(schema);
  return out;
}

/** Turns ajv errors into readable problems, dropping the noise ajv adds around oneOf/anyOf. */
export function ajvProblems(file: string, errors: ErrorObject[] | null | undefined): Problem[] {
  if (!errors) return [];
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'oneOf' || e.keyword === 'anyOf') continue;
    let pointer = e.instancePath;
    let message: string;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        pointer = `${pointer}/${escapePointer(extra)}`;
        message = `unknown key "${extra}"`;
        break;
      }
      case 'required':
        pointer = `${pointer}/${escapePointer((e.params as { missingProperty: string }).missingProperty)}`;
        message = 'is required';
        break;
      case 'enum':
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
        break;
      case 'pattern':
        message = `must match ${(e.params as { pattern: string }).pattern}`;
        break;
      default:
        message = e.message ?? e.keyword;
    }
    const key = `${pointer}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file, pointer, message });
  }
  return out;
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
