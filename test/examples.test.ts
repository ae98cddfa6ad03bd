import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfigText } from '../plugin/config/load.js';
import { packageRoot, schemaDir } from '../plugin/paths.js';

const env = { ACME_MDE_SECRET: 'x'.repeat(20), FLUENT_SHARED_KEY: 'k'.repeat(16), SOAR_TOKEN: 't'.repeat(32), DEFENDER_EMULATOR_SECRET: 's'.repeat(20) };

interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  definitions?: Record<string, SchemaNode>;
}

/** Every key the config schema defines, at any depth. */
function schemaKeys(node: SchemaNode, defs: Record<string, SchemaNode>, seen = new Set<string>()): Set<string> {
  const keys = new Set<string>();
  const visit = (n: SchemaNode | undefined) => {
    if (!n) return;
    if (n.$ref) {
      const name = n.$ref.split('/').pop()!;
      if (seen.has(name)) return;
      seen.add(name);
      return visit(defs[name]);
    }
    for (const [k, v] of Object.entries(n.properties ?? {})) {
      keys.add(k);
      visit(v);
    }
    visit(n.items);
    n.oneOf?.forEach(visit);
  };
  visit(node);
  return keys;
}

describe('examples and README stay true', () => {
  for (const file of ['defender.example.yaml', 'examples/demo.yaml']) {
    it(`${file} is a valid config`, () => {
      const path = join(packageRoot, file);
      const { problems } = checkConfigText(path, readFileSync(path, 'utf8'), env);
      // The demo's CA file exists once `npm run demo` has started the emulator (it creates it first).
      const beforeFirstDemo = (p: { pointer: string; message: string }) => p.pointer === '/connectors/0/caFile' && p.message.endsWith(join('.demo', 'emulator', 'emulator-cert.pem'));
      assert.deepEqual(problems.filter((p) => !(file === 'examples/demo.yaml' && beforeFirstDemo(p))), []);
    });
  }

  it('README documents every config key', () => {
    const schema = JSON.parse(readFileSync(join(schemaDir, 'config.schema.json'), 'utf8')) as SchemaNode;
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
    // a key is documented as `key` or with its parent path, e.g. `tls.ca` or `tokens[].name`
    const missing = [...schemaKeys(schema, schema.definitions ?? {})].filter((k) => !new RegExp(`\`([\\w\\[\\]]+\\.)?${k}\``).test(readme));
    assert.deepEqual(missing, [], 'keys of schemas/config.schema.json missing from README.md');
  });
});
