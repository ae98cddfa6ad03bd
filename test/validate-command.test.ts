import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { validateCommand } from '../plugin/config/validate-command.js';
import { transformsDir } from '../plugin/transform/transforms.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'config');

/** Runs validate with captured streams. */
async function run(config: string): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await validateCommand({ config }, out, err);
  return { code, out: Buffer.concat(chunks.out).toString(), err: Buffer.concat(chunks.err).toString() };
}

describe('defender-fluent validate (validateCommand)', () => {
  it('a good file: exit 0, "valid", nothing on stderr', async () => {
    const file = join(fixtures, 'good', 'minimal.yaml');
    const r = await run(file);
    assert.equal(r.code, 0);
    assert.equal(r.out, `valid: ${file} and the transforms in ${transformsDir}\n`);
    assert.equal(r.err, '');
  });

  it('a valid file with warnings: exit 0, warnings on stderr with file:line: pointer, the secret not quoted', async () => {
    const file = join(fixtures, 'good', 'literal-secret.yaml');
    const r = await run(file);
    assert.equal(r.code, 0);
    assert.equal(r.out, `valid: ${file} and the transforms in ${transformsDir}\n`);
    assert.deepEqual(r.err.trimEnd().split('\n'), [
      `warning: ${file}:5: /connectors/0/apiEndpoint: custom host 127.0.0.1 in use (allowCustomEndpoint: true); expected a documented Defender API host (e.g. api.security.microsoft.com, api-us.securitycenter.microsoft.com, api-gov.securitycenter.microsoft.us)`,
      `warning: ${file}:9: /connectors/0/clientSecret: literal secret in the config file; prefer \${env:NAME} or \${file:/run/secrets/NAME}`,
    ]);
    assert.ok(!r.err.includes('literal-lab-secret'));
  });

  it('a bad file: exit 2 and every error listed as file:line: pointer: message', async () => {
    const file = join(fixtures, 'bad', 'several.yaml');
    const r = await run(file);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    const lines = r.err.trimEnd().split('\n');
    assert.deepEqual(lines, [
      `error: ${file}:3: /colour: unknown key "colour"`,
      `error: ${file}:7: /connectors/0/clientId: must be a GUID (8-4-4-4-12 hex digits, e.g. 00000000-0000-0000-0000-000000000000)`,
      `error: ${file}:12: /connectors/1/apiEndpoint: expected a documented Defender API host (e.g. api.security.microsoft.com, api-us.securitycenter.microsoft.com, api-gov.securitycenter.microsoft.us); got "api.example.com" (set allowCustomEndpoint: true only for emulators or proxies)`,
      `error: ${file}:15: /connectors/1/clientSecret: cannot read secret file ${join(fixtures, 'secrets', 'missing-secret.txt')}: ENOENT`,
      `error: ${file}:16: /connectors/2/name: duplicate connector name "acme-mde" (also /connectors/0/name)`,
      '5 errors',
    ]);
  });

  it('a YAML syntax error: exit 2 with the line of the error', async () => {
    const file = join(fixtures, 'bad', 'yaml-syntax.yaml');
    const r = await run(file);
    assert.equal(r.code, 2);
    assert.equal(r.err, `error: ${file}:3: /: YAML: Sequence item without - indicator\n1 error\n`);
  });

  it('an unreadable file: exit 2 naming the file and the reason', async () => {
    const file = join(fixtures, 'does-not-exist.yaml');
    const r = await run(file);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.equal(r.err, `error: ${file}: /: cannot read config file: ENOENT\n1 error\n`);
  });

  it('a folder instead of a file: exit 2 (EISDIR)', async () => {
    const r = await run(fixtures);
    assert.equal(r.code, 2);
    assert.equal(r.err, `error: ${fixtures}: /: cannot read config file: EISDIR\n1 error\n`);
  });
});

describe('defender-fluent validate with transforms', () => {
  it('reports a broken transform file with its file and pointer, and exits 2', async () => {
    const { mkdtempSync, cpSync, readFileSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'df-tr-'));
    cpSync(transformsDir, dir, { recursive: true });
    const file = join(dir, 'alerts.syslog.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"computerDnsName"', '"computerDnsNme"'));
    const out = new PassThrough();
    const err = new PassThrough();
    let errText = '';
    err.on('data', (d: Buffer) => (errText += d.toString()));
    const code = await validateCommand({ transforms: dir }, out, err);
    assert.equal(code, 2);
    assert.match(errText, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: /fields/\\d+/from: unknown field "computerDnsNme" in Alert; did you mean "computerDnsName"\\?`));
  });
});
