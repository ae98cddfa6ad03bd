// Scheduled hunting queries: hunting/<name>.kql, a header of `//` comment lines holding YAML
// (schemas/hunting-query.schema.json), then the KQL. Each file is checked on its own, so that a
// broken one is reported (file, line, JSON pointer) without keeping the others from running.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { lineOf } from '../config/load.js';
import { huntingLimits } from '../defender/hunting.js';
import type { HuntingQueryHeader } from '../generated/hunting-query.js';
import { ajvProblems, compileSchema, loadSchema, type Problem } from '../schema-check.js';

export interface HuntingQuery {
  name: string;
  title?: string;
  /** the .kql file (absolute) */
  file: string;
  intervalMs: number;
  lookbackMs: number;
  overlapMs: number;
  timeColumn: string;
  key?: string[];
  severity?: number;
  /** Syslog field ← result column */
  output: Record<string, string>;
  kql: string;
  /** 1-based line of a header key, for run-time problems that name the file and line */
  lineOf(pointer: string): number | undefined;
}

const validateHeader = compileSchema<HuntingQueryHeader>('hunting-query.schema.json');

/** The Syslog fields a header may map: what the hunting transform takes from `fields`. */
export const mappableFields: readonly string[] = Object.keys(
  ((loadSchema('defender/hunting-row.schema.json').properties as Record<string, { properties?: object }>).fields?.properties ?? {}) as object,
);

const units: Record<string, number> = { m: 60_000, h: 3600_000, d: 24 * 3600_000 };
export function durationMs(text: string): number {
  return Number(text.slice(0, -1)) * units[text.slice(-1)]!;
}

const defaults = { lookback: '1h', overlap: '5m' };

/** Checks one query file; returns the query, or every problem of the file. */
export function parseHuntingQuery(file: string, text: string): { query?: HuntingQuery; problems: Problem[] } {
  const lines = text.split(/\r?\n/);
  let n = 0;
  while (n < lines.length && /^\s*\/\//.test(lines[n]!)) n++;
  if (n === 0) return { problems: [{ file, line: 1, pointer: '', message: 'expected a header of `//` comment lines (YAML: name, interval, timeColumn, …) at the top of the file' }] };
  // the header's YAML keeps the file's line numbers: line i of it is line i of the file
  const yamlText = lines
    .slice(0, n)
    .map((l) => l.replace(/^\s*\/\/ ?/, ''))
    .join('\n');
  const counter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    return { problems: doc.errors.map((e) => ({ file, line: counter.linePos(e.pos[0]).line, pointer: '', message: `header is not valid YAML: ${e.message.split('\n')[0]}` })) };
  }
  const at = (pointer: string) => lineOf(doc, counter, pointer);
  const header = doc.toJS() as unknown;
  if (!validateHeader(header)) return { problems: ajvProblems(file, validateHeader.errors).map((p) => ({ ...p, line: at(p.pointer) })) };
  const problems: Problem[] = [];
  for (const field of Object.keys(header.output ?? {})) {
    if (!mappableFields.includes(field)) problems.push({ file, line: at(`/output/${field}`), pointer: `/output/${field}`, message: `"${field}" is not a field the hunting transform maps; expected one of ${mappableFields.join(', ')}` });
  }
  const lookbackMs = durationMs(header.lookback ?? defaults.lookback);
  if (lookbackMs > huntingLimits.dataDays * units.d!) problems.push({ file, line: at('/lookback'), pointer: '/lookback', message: `at most ${huntingLimits.dataDays}d: advanced hunting keeps ${huntingLimits.dataDays} days of data` });
  const kql = lines.slice(n).join('\n').trim();
  if (!kql) problems.push({ file, line: n + 1, pointer: '', message: 'no query below the header' });
  if (problems.length) return { problems };
  return {
    problems: [],
    query: {
      name: header.name,
      ...(header.title ? { title: header.title } : {}),
      file,
      intervalMs: durationMs(header.interval),
      lookbackMs,
      overlapMs: durationMs(header.overlap ?? defaults.overlap),
      timeColumn: header.timeColumn,
      ...(header.key ? { key: header.key } : {}),
      ...(header.severity !== undefined ? { severity: header.severity } : {}),
      output: (header.output ?? {}) as Record<string, string>,
      kql,
      lineOf: at,
    },
  };
}

/** Every *.kql of dir, checked file by file; two files with one name are both refused. A missing folder has no queries. */
export function loadHuntingQueries(dir: string): { queries: HuntingQuery[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const queries: HuntingQuery[] = [];
  if (!existsSync(dir)) return { queries, problems: [{ file: dir, pointer: '', message: 'hunting folder not found (huntingDir): no query can run' }] };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.kql'))
    .sort();
  for (const f of files) {
    const file = join(dir, f);
    const r = parseHuntingQuery(file, readFileSync(file, 'utf8'));
    problems.push(...r.problems);
    if (r.query) queries.push(r.query);
  }
  const byName = new Map<string, HuntingQuery[]>();
  for (const q of queries) byName.set(q.name, [...(byName.get(q.name) ?? []), q]);
  const unique: HuntingQuery[] = [];
  for (const [name, same] of byName) {
    if (same.length === 1) unique.push(same[0]!);
    else for (const q of same) problems.push({ file: q.file, line: q.lineOf('/name'), pointer: '/name', message: `name "${name}" is used by ${same.length} files (${same.map((s) => s.file).join(', ')}): each query needs its own (it names the cursor)` });
  }
  return { queries: unique, problems };
}
