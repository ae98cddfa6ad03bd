// `defender-fluent preview`: raw API JSON through the transforms, records out as NDJSON. Every
// record is checked against its index schema; a failing one is printed (marked with
// transform_error) and makes the exit code 1, so a broken mapping is visible before it ships.
import { readFileSync } from 'node:fs';
import { contentTypes, type ContentType } from '../config/load.js';
import { formatProblem } from '../schema-check.js';
import { InputError, readEntities } from './input.js';
import { loadMapper, transformsDir } from './transforms.js';
import { parseHuntingQuery, type HuntingQuery } from '../collect/hunting-queries.js';
import { entity } from '../collect/hunting.js';

export interface PreviewOptions {
  /** alerts | host | vulnerabilities | machineActions | hunting */
  content: string;
  /** hunting: the .kql file whose header maps the saved rows */
  query?: string;
  /** input files; "-" reads stdin */
  files: string[];
  /** transforms directory (default: the package's transforms/) */
  transforms?: string;
  /** indent records (2 spaces) instead of one per line */
  pretty?: boolean;
  /** print {tag, time, record} instead of the record alone */
  tags?: boolean;
  /** tenant_name / engid_name in the records (default "preview") */
  tenant?: string;
  connector?: string;
  tagPrefix?: string;
  /** write_time (default: now) */
  writeTime?: number;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** stdin text for "-" (tests) */
  stdin?: () => string;
}

export async function previewCommand(opts: PreviewOptions): Promise<number> {
  const out = opts.stdout ?? process.stdout;
  const err = opts.stderr ?? process.stderr;
  if (!(contentTypes as readonly string[]).includes(opts.content)) {
    err.write(`preview: --content must be one of ${contentTypes.join(', ')} (got "${opts.content}")\n`);
    return 2;
  }
  if (!opts.files.length) {
    err.write('preview: no input file (give one or more files, or - for stdin)\n');
    return 2;
  }
  let hunting: HuntingQuery | undefined;
  if (opts.content === 'hunting') {
    if (!opts.query) {
      err.write('preview: --content hunting needs --query FILE.kql (its header maps the saved rows)\n');
      return 2;
    }
    const parsed = parseHuntingQuery(opts.query, readFileSync(opts.query, 'utf8'));
    for (const p of parsed.problems) err.write(`${formatProblem(p)}\n`);
    if (!parsed.query) return 2;
    hunting = parsed.query;
  }
  const loaded = loadMapper(opts.transforms ?? transformsDir);
  if (!loaded.ok) {
    for (const p of loaded.problems) err.write(`${formatProblem(p)}\n`);
    err.write(`preview: ${loaded.problems.length} transform problem${loaded.problems.length === 1 ? '' : 's'}\n`);
    return 2;
  }
  const ctx = { connector: opts.connector ?? 'preview', tenant: opts.tenant ?? 'preview', tagPrefix: opts.tagPrefix ?? 'microsoft_defender', writeTime: opts.writeTime ?? Date.now() };
  let failed = 0;
  let count = 0;
  for (const file of opts.files) {
    let entities: Record<string, unknown>[];
    try {
      const text = file === '-' ? (opts.stdin ? opts.stdin() : readFileSync(0, 'utf8')) : readFileSync(file, 'utf8');
      entities = hunting ? huntingEntities(hunting, text, file === '-' ? 'stdin' : file) : readEntities(text, file === '-' ? 'stdin' : file);
    } catch (e) {
      err.write(`preview: ${e instanceof InputError ? e.message : `cannot read ${file}: ${(e as Error).message}`}\n`);
      return 2;
    }
    for (const entity of entities) {
      for (const r of loaded.mapper.map(opts.content as ContentType, entity, ctx)) {
        count++;
        const value = opts.tags ? r : r.record;
        out.write(`${opts.pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`);
        if (r.record.transform_error !== undefined) {
          failed++;
          err.write(`preview: ${file} record ${count} (${r.tag}): ${String(r.record.transform_error)}\n`);
        }
      }
    }
  }
  if (failed) err.write(`preview: ${failed} of ${count} records failed the index schema check\n`);
  return failed ? 1 : 0;
}

/** A saved runHuntingQuery answer ({schema, results}) or bare rows, as the collector hands them to the transforms. */
function huntingEntities(q: HuntingQuery, text: string, name: string): Record<string, unknown>[] {
  const items = readEntities(text, name);
  const rows = items.length === 1 && Array.isArray(items[0]!.results) ? (items[0]!.results as Record<string, unknown>[]) : items;
  return rows.map((row) => {
    const t = row[q.timeColumn];
    const ms = typeof t === 'string' ? Date.parse(t) : NaN;
    return entity(q, row, Number.isNaN(ms) ? undefined : new Date(ms).toISOString());
  });
}
