import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAll } from '../scripts/gen-types.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const generatedDir = join(root, 'plugin', 'generated');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

/** Files whose content differs from what the schemas generate, missing ones, and ones no schema generates. */
function staleFiles(expected: Map<string, string>, onDisk: string[], read: (rel: string) => string | null): string[] {
  const stale = [...expected].filter(([rel, ts]) => read(rel) !== ts).map(([rel]) => rel);
  const orphans = onDisk.filter((rel) => !expected.has(rel)).map((rel) => `${rel} (no schema generates it)`);
  return [...stale, ...orphans];
}

function readRel(rel: string): string | null {
  try {
    return readFileSync(join(root, rel), 'utf8');
  } catch {
    return null;
  }
}

describe('generated types (plugin/generated/)', function () {
  // json-schema-to-typescript takes a few seconds for all schemas on a busy machine
  this.timeout(60_000);
  let generated: Map<string, string>;
  before(async () => {
    generated = await generateAll();
  });

  it('are up to date with schemas/ (else: run npm run gen)', () => {
    assert.ok(generated.has(join('plugin', 'generated', 'config.ts')));
    const stale = staleFiles(generated, filesUnder(generatedDir), readRel);
    assert.deepEqual(stale, [], `stale generated files (run npm run gen): ${stale.join(', ')}`);
  });

  it('the staleness check sees an edited, a missing and an orphan file', () => {
    const [first, second] = [...generated.keys()];
    const read = (rel: string) => (rel === first ? `${readRel(rel)}// hand edit\n` : rel === second ? null : readRel(rel));
    const onDisk = [...filesUnder(generatedDir).filter((r) => r !== second), join('plugin', 'generated', 'old.ts')];
    assert.deepEqual(staleFiles(generated, onDisk, read), [first, second, `${join('plugin', 'generated', 'old.ts')} (no schema generates it)`]);
  });
});
