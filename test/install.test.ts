// The package as an operator gets it: `npm pack`, `npm install -g <tarball>` into a temporary
// prefix, then the installed `defender-fluent` from PATH: validate the shipped example, `docs` in the
// operator's folder, `emulate` + the `run --once` command line of fluent.conf.example, `respond`.
// A module recorder (test/helpers/record-loads.mjs) shows what each process loaded.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { packageRoot } from '../plugin/paths.js';
import { freePort } from './helpers/free-port.js';

const recorder = pathToFileURL(join(packageRoot, 'test', 'helpers', 'record-loads.mjs')).href;

function npm(args: string[], cwd: string): string {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve(p.exitCode) : p.once('exit', (code) => resolve(code))));
}

/** Every file under dir with its mtime, node_modules aside. */
function tree(dir: string, out = new Map<string, number>()): Map<string, number> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) tree(p, out);
    else out.set(p, statSync(p).mtimeMs);
  }
  return out;
}

describe('installed package (npm pack → npm install -g)', function () {
  // packing builds dist/ (tsc) and installing resolves the dependencies (from npm's cache when it can)
  this.timeout(240_000);
  let tmp: string;
  let pkg: string;
  let files: string[];
  let pkgTree: Map<string, number>;
  let env: NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];
  /** the emulator started by the emulate test, still running, and a config for it */
  let running: { config: string; secrets: NodeJS.ProcessEnv } | undefined;

  /** The installed binary, found on PATH, its module loads recorded to loads/<name>. */
  function cli(name: string, args: string[], cwd = tmp, extra: NodeJS.ProcessEnv = {}): ChildProcess {
    const p = spawn('defender-fluent', args, { cwd, env: { ...env, ...extra, DF_LOADS_FILE: join(tmp, 'loads', name) }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    return p;
  }

  async function finish(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await exited(p);
    return { code, out, err };
  }

  const loads = (name: string) => readFileSync(join(tmp, 'loads', name), 'utf8').trim().split('\n');

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'df-install-'));
    mkdirSync(join(tmp, 'loads'));
    const packed = npm(['pack', '--silent', '--json', '--pack-destination', tmp], packageRoot);
    const info = (JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    files = info.files.map((f) => f.path);
    const prefix = join(tmp, 'prefix');
    npm(['install', '--global', '--prefix', prefix, join(tmp, info.filename), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], tmp);
    pkg = join(prefix, 'lib', 'node_modules', 'defender-fluent');
    pkgTree = tree(pkg);
    env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, NODE_OPTIONS: `--import=${recorder}` };
  });

  after(async () => {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(children.map(exited));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds the binary, the example configs, examples/, docs/fields.md and deploy/, and no sources, source maps or tests', () => {
    for (const f of ['dist/plugin/cli.js', 'defender.example.yaml', 'fluent.conf.example', 'fluent-bit.yaml.example', 'examples/demo.yaml', 'docs/fields.md', 'schemas/config.schema.json', 'transforms/alerts.syslog.json']) {
      assert.ok(files.includes(f), f);
    }
    assert.ok(files.some((f) => f.startsWith('deploy/kubernetes/')) && files.some((f) => f.startsWith('deploy/systemd/')));
    assert.deepEqual(
      files.filter((f) => /^(plugin|test|bench|scripts)\//.test(f) || f.endsWith('.ts') || f.endsWith('.map')),
      [],
    );
  });

  it('defender-fluent on PATH validates the shipped example config', async () => {
    const r = await finish(
      cli('validate', ['validate', '--config', join(pkg, 'defender.example.yaml')], tmp, {
        FLUENT_SHARED_KEY: 'a-shared-key',
        ACME_MDE_SECRET: 'an-entra-secret',
        SOAR_TOKEN: 'a-token-of-sixteen-or-more-chars',
      }),
    );
    assert.equal(r.code, 0, r.err);
  });

  it('docs writes docs/fields.md in the current folder or --out, and --check reads it there', async () => {
    const work = join(tmp, 'work');
    mkdirSync(work);
    assert.equal((await finish(cli('docs', ['docs'], work))).code, 0);
    assert.equal(readFileSync(join(work, 'docs', 'fields.md'), 'utf8'), readFileSync(join(pkg, 'docs', 'fields.md'), 'utf8'));
    assert.equal((await finish(cli('docs-check', ['docs', '--check'], work))).code, 0);
    assert.equal((await finish(cli('docs-out', ['docs', '--out', 'fields-copy.md'], work))).code, 0);
    assert.ok(existsSync(join(work, 'fields-copy.md')));
  });

  it('emulate, then the in_exec command of fluent.conf.example: records arrive; neither run nor respond loads the emulator', async () => {
    const emulator = cli('emulate', ['emulate', '--port', '0', '--state-dir', join(tmp, 'emulator'), '--alerts', '20', '--machines', '4', '--vulns', '30', '--updates-per-minute', '0']);
    let text = '';
    await new Promise<void>((resolve, reject) => {
      emulator.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('Ctrl-C')) resolve();
      });
      emulator.once('exit', (code) => reject(new Error(`the emulator exited (${code})`)));
    });
    const secret = /export DEFENDER_EMULATOR_SECRET='([^']+)'/.exec(text)![1]!;
    const [connector] = parse(text.split('(under connectors:):\n')[1]!.split('\n\n')[0]!) as Array<Record<string, unknown>>;
    const port = await freePort();
    const config = join(tmp, 'defender.yaml');
    mkdirSync(join(tmp, 'state'));
    writeFileSync(
      config,
      stringify({
        stateDir: join(tmp, 'state'),
        logLevel: 'warn',
        connectors: [{ ...connector, functions: ['collect', 'respond'] }],
        respond: { listen: `127.0.0.1:${port}`, tokens: [{ name: 'soar', token: '${env:SOAR_TOKEN}', connectors: ['*'] }] },
      }),
    );
    const secrets = { DEFENDER_EMULATOR_SECRET: secret, SOAR_TOKEN: 'a-token-of-sixteen-or-more-chars' };

    // the command line an operator's Fluentd runs, with this test's config
    const command = /^\s*#?\s*command\s+(defender-fluent run .*)$/m.exec(readFileSync(join(pkg, 'fluent.conf.example'), 'utf8'))![1]!.trim().split(/\s+/);
    assert.match(readFileSync(join(pkg, 'fluent-bit.yaml.example'), 'utf8'), /command: defender-fluent run /, 'Fluent Bit calls the installed binary too');
    const args = command.slice(1);
    args[args.indexOf('--config') + 1] = config;
    const run = await finish(cli('run', args, tmp, secrets));
    assert.equal(run.code, 0, run.err);
    const tags = new Set(run.out.trim().split('\n').map((l) => (JSON.parse(l) as { tag: string }).tag));
    for (const t of ['microsoft_defender.syslog.alerts', 'microsoft_defender.assets.host', 'microsoft_defender.syslog.vulnerabilities']) assert.ok(tags.has(t), `${t} in ${[...tags].join(', ')}`);

    const respond = cli('respond', ['respond', '--config', config], tmp, secrets);
    const respondDone = finish(respond);
    let health = 0;
    while (health !== 200 && respond.exitCode === null) {
      health = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
      if (health !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(health, 200, (await Promise.race([respondDone, Promise.resolve(undefined)]))?.err);
    respond.kill('SIGTERM');
    assert.equal((await respondDone).code, 0);
    running = { config, secrets };

    const emulatorModule = (url: string) => url.includes('/dist/plugin/emulate/') || url.includes('/node_modules/selfsigned/');
    assert.ok(loads('emulate').some((u) => u.includes('/dist/plugin/emulate/')) && loads('emulate').some((u) => u.includes('/node_modules/selfsigned/')), 'the recorder sees the emulator when it is used');
    assert.ok(loads('run').some((u) => u.includes('/dist/plugin/collect/')), 'the recorder sees what run loads');
    assert.deepEqual(loads('run').filter(emulatorModule), []);
    assert.deepEqual(loads('respond').filter(emulatorModule), []);
  });

  it('run --once works on a read-only root file system with stateDir on its own mount (readOnlyRootFilesystem)', async function () {
    // a private mount namespace (root, unshare -m) in which / is read-only and stateDir a tmpfs, as in the pod
    if (spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status !== 0) this.skip(); // no mount namespaces here (not root, or not allowed)
    assert.ok(running, 'the emulator test ran');
    const state = join(tmp, 'state');
    const script = [
      'mount -t tmpfs -o mode=0700 tmpfs "$1" || exit 98',
      'mount -o remount,bind,ro / || exit 98',
      'if touch /df-readonly-probe 2>/dev/null; then rm -f /df-readonly-probe; exit 99; fi',
      'exec defender-fluent run --once --output stdout --config "$2"',
    ].join('\n');
    const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', state, running.config], {
      cwd: tmp,
      // no module recorder: it would write to the read-only file system
      env: { ...env, ...running.secrets, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(p);
    const r = await finish(p);
    assert.ok(r.code !== 98 && r.code !== 99, `the mounts were made and / was read-only: ${r.err}`);
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.trim().split('\n').some((l) => (JSON.parse(l) as { tag: string }).tag === 'microsoft_defender.syslog.alerts'));
  });

  it('no command wrote into the installed package', () => {
    assert.deepEqual(tree(pkg), pkgTree);
  });
});
