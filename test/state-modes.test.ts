import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import { AuditLog } from '../plugin/respond/audit.js';
import { acquireLock } from '../plugin/collect/lock.js';
import { WindowJournal } from '../plugin/collect/window-journal.js';
import { MemorySink } from './helpers/memory-sink.js';

// Fluentd's in_exec starts its children with umask 0: whatever the state folder holds must still
// be private (folders 0700, files 0600), not world-writable.

/** Every folder and file under dir (dir included) with its permission bits. */
function modes(dir: string): { path: string; dir: boolean; mode: number }[] {
  const out = [{ path: dir, dir: true, mode: statSync(dir).mode & 0o777 }];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...modes(p));
    else out.push({ path: p, dir: false, mode: statSync(p).mode & 0o777 });
  }
  return out;
}

function assertPrivate(dir: string) {
  const wrong = modes(dir).filter((m) => m.mode !== (m.dir ? 0o700 : 0o600)).map((m) => `${m.path} ${m.mode.toString(8)}`);
  assert.deepEqual(wrong, []);
}

describe('state folder modes under umask 0 (as Fluentd in_exec runs the collector)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ seed: 5, alerts: 30, machines: 3, vulnerabilities: 20, rateScale: 0.01 });
  });
  after(async () => {
    await emu.close();
  });

  it('run --once under `umask 0`: stateDir, cursors, status, metrics and lock are 0700 / 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-modes-'));
    const configFile = join(dir, 'defender.yaml');
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'warn', connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', lookbackHours: 24 }] }));
    const cli = [process.execPath, '--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), 'run', '--once', '--config', configFile].map((a) => `'${a}'`).join(' ');
    const child = spawn('/bin/sh', ['-c', `umask 0 && exec ${cli}`], { cwd: packageRoot, env: { ...process.env, EMU_SECRET: emu.clientSecret }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, stderr);
    const state = join(dir, 'state');
    assert.ok(modes(state).some((m) => !m.dir && m.path.startsWith(join(state, 'cursors'))), 'cursors were written');
    assertPrivate(state);
  });

  it('audit log, lock and window journal created in-process under umask 0 are private', async () => {
    const before = process.umask(0);
    try {
      const state = join(mkdtempSync(join(tmpdir(), 'df-modes-')), 'state');
      await new AuditLog(state, new MemorySink()).write({ event: 'contain', outcome: 'accepted', httpStatus: 202 });
      const lock = await acquireLock(join(state, 'locks'), 'test-x.lock');
      const journal = new WindowJournal(join(state, 'cursors', 'emu.alerts.window'));
      journal.start(['a|1']);
      journal.append(['b|2']);
      assertPrivate(state);
      await lock.release();
    } finally {
      process.umask(before);
    }
  });
});
