import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import { parseStdoutLine } from '../plugin/output/stdout.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `defender-fluent <args>` from source in a child process, as an operator runs it. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { stop?: Promise<unknown> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), ...args], {
      cwd: packageRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    void opts.stop?.then(() => child.kill('SIGTERM'));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('defender-fluent run (child process)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let dir: string;
  let configFile: string;
  const env = () => ({ EMU_SECRET: emu.clientSecret });

  before(async () => {
    emu = await startEmulator({ seed: 3, alerts: 120, machines: 10, vulnerabilities: 300, rateScale: 0.01 });
    dir = mkdtempSync(join(tmpdir(), 'df-run-'));
    configFile = join(dir, 'defender.yaml');
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'warn', connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', lookbackHours: 24 }] }));
  });
  after(async () => {
    await emu.close();
  });

  it('--once catches up, prints one JSON line per record (time and tag included) and exits 0; a second --once resumes from the cursors', async () => {
    const first = await cli(['run', '--once', '--config', configFile], env());
    assert.equal(first.code, 0, first.stderr);
    const lines = first.stdout.trim().split('\n').map(parseStdoutLine);
    const byTag = (t: string) => lines.filter((l) => l.tag === `microsoft_defender.${t}`).length;
    assert.equal(byTag('syslog.alerts'), emu.served.alertVersionCount);
    assert.equal(byTag('syslog.host'), 10);
    assert.equal(byTag('assets.host'), 10);
    assert.equal(byTag('syslog.vulnerabilities'), 300);
    assert.ok(lines.every((l) => Number.isFinite(l.time) && l.record.msg_class !== undefined));
    const status = JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as { connectors: Record<string, { contentTypes: Record<string, { lastSuccess?: string }> }> };
    assert.ok(status.connectors.emu!.contentTypes.alerts!.lastSuccess);

    emu.updateAlerts(3);
    const second = await cli(['run', '--once', '--config', configFile], env());
    assert.equal(second.code, 0, second.stderr);
    const again = second.stdout.trim().split('\n').filter(Boolean).map(parseStdoutLine);
    assert.equal(again.filter((l) => l.tag === 'microsoft_defender.syslog.alerts').length, 3, 'only the 3 updated alerts: no lookback re-pull');
    assert.equal(again.filter((l) => l.tag === 'microsoft_defender.syslog.vulnerabilities').length >= 0, true);
  });

  it('--reset-cursor starts that content type over from the lookback', async () => {
    const r = await cli(['run', '--once', '--config', configFile, '--reset-cursor', 'emu:alerts'], env());
    assert.equal(r.code, 0, r.stderr);
    const alerts = r.stdout.trim().split('\n').filter((l) => l.includes('"microsoft_defender.syslog.alerts"'));
    assert.ok(alerts.length >= 120);
    const bad = await cli(['run', '--once', '--config', configFile, '--reset-cursor', 'nope:alerts'], env());
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no connector named "nope"/);
  });

  it('--reset-cursor of the host content forgets the machine inventory too; of the alerts content, not', async () => {
    const inventory = join(dir, 'state', 'inventory', 'emu.ndjson');
    /** What each reset of one run says it removed. */
    const removedBy = async (...specs: string[]) => {
      const r = await cli(['run', '--once', '--config', configFile, ...specs.flatMap((s) => ['--reset-cursor', s])], env());
      assert.equal(r.code, 0, r.stderr);
      return specs.map((spec) => {
        const line = r.stderr.split('\n').find((l) => l.includes(`cursor reset for ${spec}:`));
        assert.ok(line, r.stderr);
        return (JSON.parse(line) as { removed: string[] }).removed;
      });
    };
    await removedBy('emu:alerts');
    assert.ok(existsSync(inventory), 'a run writes the inventory');
    const [alerts, host] = await removedBy('emu:alerts', 'emu:host');
    assert.ok(!alerts!.includes(inventory), JSON.stringify(alerts));
    assert.ok(host!.includes(inventory), JSON.stringify(host));
    assert.ok(existsSync(inventory), 'the host poll of that run wrote it afresh');
  });

  it('refuses a second collector on the same stateDir', async () => {
    let stop!: () => void;
    const long = cli(['run', '--config', configFile], env(), { stop: new Promise<void>((r) => (stop = r)) });
    const lockFile = join(dir, 'state', 'collector.lock');
    for (let i = 0; i < 200 && !existsSync(lockFile); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(existsSync(lockFile), 'the first collector took the lock');
    const second = await cli(['run', '--once', '--config', configFile], env());
    stop();
    assert.equal(second.code, 2);
    assert.match(second.stderr, /another process \(pid \d+\) holds .*collector\.lock/);
    const first = await long;
    assert.equal(first.code, 0, `SIGTERM ends the collector cleanly: ${first.stderr}`);
  });

  it('an invalid config exits 2 listing every problem', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'connectors:\n  - name: x\n    tenant: t\n    clientId: nope\n');
    const r = await cli(['run', '--config', bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:4: \/connectors\/0\/clientId: must be a GUID/);
    assert.match(r.stderr, /\/connectors\/0\/directoryId: is required/);
  });
});
