// A copy of the shipped transforms in a temporary folder, for tests that break or extend it, and
// the one problem a check must report at a file and pointer.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transformsDir } from '../../plugin/paths.js';
import type { Problem } from '../../plugin/schema-check.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function copyTransforms(): string {
  const dir = mkdtempSync(join(tmpdir(), 'transforms-'));
  cpSync(transformsDir, dir, { recursive: true });
  return dir;
}

export const readJson = (dir: string, name: string): Json => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Json;
export const writeJson = (dir: string, name: string, v: unknown): void => writeFileSync(join(dir, name), JSON.stringify(v, null, 2));

/** Writes overlays/<name> (an object as JSON, a string as it is). */
export function writeOverlay(dir: string, name: string, v: unknown): void {
  mkdirSync(join(dir, 'overlays'), { recursive: true });
  writeFileSync(join(dir, 'overlays', name), typeof v === 'string' ? v : JSON.stringify(v, null, 2));
}

export function only(problems: Problem[], file: string, pointer: string): Problem {
  const hits = problems.filter((p) => p.file.endsWith(file) && p.pointer === pointer);
  assert.equal(hits.length, 1, `expected one problem at ${file}#${pointer}, got ${JSON.stringify(problems, null, 1)}`);
  return hits[0] as Problem;
}
