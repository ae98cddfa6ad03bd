import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { packageRoot } from '../plugin/paths.js';

/** `defender-fluent <args>` from source, as an operator runs it. */
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), ...args], { cwd: packageRoot, encoding: 'utf8', env: { ...process.env, ACME_MDE_SECRET: 'x'.repeat(20) } });

describe('defender-fluent exit codes for usage errors', function () {
  this.timeout(30_000);

  it('an unknown option, a missing option or argument, a bad choice, an unknown command: 2 with the reason (1 is kept for a failed check or poll)', () => {
    for (const [args, reason] of [
      [['run', '--config', 'x.yaml', '--bogus'], /unknown option '--bogus'/],
      [['run'], /required option '-c, --config <file>' not specified/],
      [['preview', '--content', 'logs', 'f.json'], /argument 'logs' is invalid/],
      [['--log-format', 'xml', 'validate'], /argument 'xml' is invalid\. Allowed choices are json, text/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, reason);
    }
  });

  it('--help and --version exit 0', () => {
    assert.equal(cli(['--help']).status, 0);
    const help = cli(['run', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--log-level <level>[\s\S]*--log-format <format>/, 'a command’s help lists the log options');
    assert.equal(cli(['--version']).status, 0);
  });

  it('a failed poll exits 1; --log-format text and --log-level apply to the command’s log lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-cli-'));
    const configFile = join(dir, 'defender.yaml');
    // an endpoint nothing listens on: the token request fails, the poll fails
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'error', connectors: [{ name: 'x', tenant: 't', clientId: '00000000-0000-0000-0000-000000000000', directoryId: '00000000-0000-0000-0000-000000000000', clientSecret: '${env:ACME_MDE_SECRET}', apiEndpoint: 'https://127.0.0.1:1', authorityHost: 'https://127.0.0.1:1', allowCustomEndpoint: true, contentTypes: ['alerts'] }] }));
    const r = cli(['run', '--once', '--config', configFile, '--log-format', 'text', '--log-level', 'warn']);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('['));
    assert.ok(lines.some((l) => /^\[[\d-]+ [\d:.]+\] WARN: .*custom host 127\.0\.0\.1/.test(l)), 'warn shown although the config says error');
    assert.ok(lines.some((l) => /^\[[\d-]+ [\d:.]+\] ERROR: poll failed; the cursor did not move \{"connector":"x","content":"alerts"/.test(l)), r.stderr);
  });
});
