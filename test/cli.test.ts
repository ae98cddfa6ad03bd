import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { packageRoot } from '../plugin/paths.js';
import { localHttps } from './helpers/local-https.js';

/** `defender-fluent <args>` from source, as an operator runs it (asynchronously: a test's own server keeps answering meanwhile). */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), ...args], { cwd: packageRoot, env: { ...process.env, ACME_MDE_SECRET: 'x'.repeat(20) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => p.on('error', reject).on('close', (status) => resolve({ status, stdout, stderr })));
}

describe('defender-fluent exit codes for usage errors', function () {
  this.timeout(30_000);

  it('an unknown option, a missing option or argument, a bad choice, an unknown command: 2 with the reason (1 is kept for a failed check or poll)', async () => {
    const cases = [
      [['run', '--config', 'x.yaml', '--bogus'], /unknown option '--bogus'/],
      [['run'], /required option '-c, --config <file>' not specified/],
      [['preview', '--content', 'logs', 'f.json'], /argument 'logs' is invalid/],
      [['--log-format', 'xml', 'validate'], /argument 'xml' is invalid\. Allowed choices are json, text/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => cli([...args])));
    cases.forEach(([args, reason], i) => {
      assert.equal(results[i]!.status, 2, `${args.join(' ')}: ${results[i]!.stderr}`);
      assert.match(results[i]!.stderr, reason);
    });
  });

  it('--help and --version exit 0', async () => {
    assert.equal((await cli(['--help'])).status, 0);
    const help = await cli(['run', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--log-level <level>[\s\S]*--log-format <format>/, 'a command’s help lists the log options');
    assert.equal((await cli(['--version'])).status, 0);
  });

  it('a failed poll exits 1; --log-format text and --log-level apply to the command’s log lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-cli-'));
    const configFile = join(dir, 'defender.yaml');
    // An endpoint whose certificate the config does not trust: the token request fails at once and
    // for good (a refused connection would be retried with backoff, 15–31 s before the poll fails).
    const untrusted = await localHttps((_req, res) => res.end());
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'error', connectors: [{ name: 'x', tenant: 't', clientId: '00000000-0000-0000-0000-000000000000', directoryId: '00000000-0000-0000-0000-000000000000', clientSecret: '${env:ACME_MDE_SECRET}', apiEndpoint: untrusted.origin, authorityHost: untrusted.origin, allowCustomEndpoint: true, contentTypes: ['alerts'] }] }));
    const r = await cli(['run', '--once', '--config', configFile, '--log-format', 'text', '--log-level', 'warn']).finally(() => untrusted.close());
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('['));
    assert.ok(lines.some((l) => /^\[[\d-]+ [\d:.]+\] WARN: .*custom host 127\.0\.0\.1/.test(l)), 'warn shown although the config says error');
    assert.ok(lines.some((l) => /^\[[\d-]+ [\d:.]+\] ERROR: poll failed; the cursor did not move \{"connector":"x","content":"alerts"/.test(l)), r.stderr);
  });
});
