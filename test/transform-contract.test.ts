// README's record contract is the contract: every field the shipped transforms set, and every field
// of the index schemas, has a row there with the type the index schema gives it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, transformsDir } from '../plugin/paths.js';
import { loadSchema } from '../plugin/schema-check.js';
import { outputType } from '../plugin/transform/docs.js';
import { loadTransformDir } from '../plugin/transform/load.js';

const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## The record contract'), readme.indexOf('\n## ', readme.indexOf('## The record contract') + 1));

/** Table rows under the heading that names `key` (e.g. "`alerts.syslog`"), or under "Every record". */
function rows(heading: string): string[][] {
  const at = section.indexOf(heading);
  assert.ok(at >= 0, `README's record contract has a part for ${heading}`);
  const out: string[][] = [];
  let inTable = false;
  for (const line of section.slice(at).split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    if (line.startsWith('|')) {
      inTable = true;
      out.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
    } else if (inTable && line.trim() === '') break;
  }
  return out;
}

/** The type cell of the row naming `field` in one of its leading code cells ("`srcip`" | "`ip`" | string | …). */
function typeIn(table: string[][], field: string): string | undefined {
  for (const cells of table) {
    const codes = cells.findIndex((c) => !/^(`[^`]*`)?$/.test(c));
    if (codes > 0 && cells.slice(0, codes).includes(`\`${field}\``)) return cells[codes];
  }
  return undefined;
}

describe('README record contract', () => {
  const loaded = loadTransformDir(transformsDir);
  const envelope = rows('**Every record:**');

  it('lists every field each shipped transform sets, with its index schema type', () => {
    assert.equal(loaded.problems.length, 0);
    let checked = 0;
    for (const t of loaded.transforms) {
      const table = rows(`\`${t.name}\``);
      for (const target of new Set(t.rules.map((r) => r.target.join('.')))) {
        const type = typeIn(table, target) ?? typeIn(envelope, target);
        assert.equal(type, outputType(t.outputSchema, target.split('.')), `${t.name}: README row for "${target}" with its type`);
        checked++;
      }
    }
    assert.ok(checked > 150);
  });

  it('lists every top-level field of the index schemas', () => {
    const all = [...loaded.transforms.flatMap((t) => rows(`\`${t.name}\``)), ...envelope];
    for (const rel of ['index/syslog.schema.json', 'index/assets.schema.json']) {
      const schema = loadSchema(rel) as { properties: Record<string, unknown> };
      for (const field of Object.keys(schema.properties)) {
        const named = all.some((cells) => cells.some((c) => c === `\`${field}\`` || c.startsWith(`\`${field}.`)));
        assert.ok(named || typeIn(all, field), `${rel}: "${field}" has a row in README's record contract`);
      }
    }
  });
});
