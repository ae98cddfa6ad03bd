import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { parseStdoutLine } from '../plugin/output/stdout.js';
import { packageRoot } from '../plugin/paths.js';
import { RawForwardServer } from './forward-helpers.js';
import { freePort } from './helpers/harness.js';

/**
 * SIGHUP reloads defender.yaml in a running `run` (one process, then with workers): connectors
 * added poll at once, removed ones stop with their cursor committed, an invalid file keeps the
 * running config and the log says why, file:line: pointer: message.
 */
describe('SIGHUP reloads the config (run, child process)', function () {
  this.timeout(120_000);
  let emu: Emulator;
  let run: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  before(async () => {
    emu = await startEmulator({ seed: 14, alerts: 40, machines: 0, vulnerabilities: 1, rateScale: 0.01 });
  });
  afterEach(() => {
    if (run?.exitCode === null) run.kill('SIGKILL');
    run = undefined;
  });
  after(async () => {
    await emu.close();
  });

  const connector = (name: string) => ({ ...emu.connectorConfig(name), clientSecret: '${env:EMU_SECRET}', contentTypes: ['alerts'], lookbackHours: 24 });
  const write = (file: string, top: Record<string, unknown>, names: string[]) => writeFileSync(file, stringify({ stateDir: './state', logLevel: 'info', ...top, connectors: names.map(connector) }));
  /** the alert records on stdout, by connector (engid_name names it) */
  const recordsOf = (name: string) =>
    stdout
      .split('\n')
      .filter((l) => l.includes('"microsoft_defender.syslog.alerts"'))
      .map(parseStdoutLine)
      .filter((l) => l.record.engid_name === `microsoft_defender_${name}`).length;
  const pollsOf = (name: string) => stderr.split('\n').filter((l) => l.includes('"poll done"') && l.includes(`"connector":"${name}"`)).length;
  async function until(what: string, ok: () => boolean): Promise<void> {
    for (let i = 0; i < 1200 && !ok(); i++) {
      if (run?.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(ok(), `${what}; stderr:\n${stderr}`);
  }
  function start(configFile: string): Promise<number | null> {
    stdout = '';
    stderr = '';
    run = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), 'run', '--config', configFile], { env: { ...process.env, EMU_SECRET: emu.clientSecret }, stdio: ['ignore', 'pipe', 'pipe'] });
    run.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((r) => run!.on('exit', (code) => r(code)));
  }

  it('one process: an added connector polls at once, a removed one stops with its cursor committed, an invalid edit keeps the running config', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-reload-'));
    const configFile = join(dir, 'defender.yaml');
    const health = { listen: `127.0.0.1:${await freePort()}` };
    write(configFile, { shutdownTimeoutSeconds: 5, health }, ['first']);
    const exited = start(configFile);
    await until('first polled', () => pollsOf('first') === 1);
    const all = recordsOf('first');
    assert.ok(all > 0);
    const firstCursor = join(dir, 'state', 'cursors', 'first.alerts.json');
    const committed = readFileSync(firstCursor, 'utf8');

    // first removed, second added, and a setting that needs a restart changed
    write(configFile, { shutdownTimeoutSeconds: 6, health }, ['second']);
    run!.kill('SIGHUP');
    await until('the reload is logged', () => /"config reloaded"/.test(stderr));
    assert.match(stderr, /"removed":\["first"\],"added":\["second"\],"changed":\[\]/);
    assert.match(stderr, /config reload: \/shutdownTimeoutSeconds changed: it takes effect at the next restart/);
    await until("second's records arrive", () => pollsOf('second') === 1 && recordsOf('second') === all);
    assert.equal(readFileSync(firstCursor, 'utf8'), committed, "the removed connector's cursor stays committed");

    // an invalid edit: the log names file, line and pointer; second keeps running (a changed second is rebuilt afterwards)
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'info', health, connectors: [{ ...connector('second'), clientId: 'nope' }] }));
    run!.kill('SIGHUP');
    await until('the invalid config is reported', () => /keeping the running configuration/.test(stderr));
    assert.match(stderr, /config reload: .*defender\.yaml:\d+: \/connectors\/0\/clientId: must be a GUID/);
    // third added, second changed: rebuilt, it polls again at once, resuming from its cursor
    writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'info', shutdownTimeoutSeconds: 5, health, connectors: [{ ...connector('second'), intervalMinutes: 2 }, connector('third')] }));
    run!.kill('SIGHUP');
    await until('third polls after the invalid edit', () => pollsOf('third') === 1 && recordsOf('third') === all);
    assert.match(stderr, /"removed":\[\],"added":\["third"\],"changed":\["second"\]/);
    await until('the changed connector polls again', () => pollsOf('second') === 2);
    assert.equal(pollsOf('first'), 1, 'the removed connector never polled again');
    const metrics = await (await fetch(`http://${health.listen}/metrics`)).text();
    assert.match(metrics, /defender_fluent_config_reloads_total\{outcome="ok"\} 2\n/);
    assert.match(metrics, /defender_fluent_config_reloads_total\{outcome="invalid"\} 1\n/);
    const ready = (await (await fetch(`http://${health.listen}/readyz`)).json()) as { connectors: { connector: string }[] };
    assert.deepEqual(ready.connectors.map((c) => c.connector), ['second', 'third'], 'readiness follows the reloaded connectors');
    run!.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const status = JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as { connectors: Record<string, unknown> };
    assert.deepEqual(Object.keys(status.connectors).sort(), ['second', 'third'], 'the removed connector left status.json');
  });

  it('a connector removed while its batches await acknowledgement stops once they are acknowledged: its cursor covers them, it sends nothing more', async () => {
    const server = await new RawForwardServer({ ackDelay: () => 1000 }).start();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'df-reload-f-'));
      const configFile = join(dir, 'defender.yaml');
      const output = { type: 'forward', host: '127.0.0.1', port: server.port, maxBatchRecords: 5, ackTimeoutSeconds: 60 };
      write(configFile, { output }, ['leaving']);
      const exited = start(configFile);
      const alertPackets = () => server.packets.filter((p) => p.tag.endsWith('.alerts'));
      await until('the first batch is on the wire', () => alertPackets().length > 0);
      writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'info', output, connectors: [{ ...connector('joining'), contentTypes: ['vulnerabilities'] }] }));
      run!.kill('SIGHUP');
      await until('the reload is logged', () => /"config reloaded"/.test(stderr));
      const sent = alertPackets().length;
      const cursorFile = join(dir, 'state', 'cursors', 'leaving.alerts.json');
      assert.ok(existsSync(cursorFile), 'the acknowledged batches were committed');
      const cursor = JSON.parse(readFileSync(cursorFile, 'utf8')) as { partial?: unknown };
      if (cursor.partial) {
        const journaled = new Set(readFileSync(cursorFile.replace(/\.json$/, '.window'), 'utf8').split('\n').filter(Boolean).map((k) => k.slice(0, k.lastIndexOf('|'))));
        const missing = alertPackets().flatMap((p) => p.ids).filter((id) => !journaled.has(id));
        assert.deepEqual(missing, [], 'every alert sent before the reload is in the window journal');
      }
      await until('the new connector polled', () => pollsOf('joining') === 1);
      assert.equal(alertPackets().length, sent, 'the removed connector sent nothing after the reload');
      run!.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      await server.stop();
    }
  });

  it('a connector changed while the pipeline never acknowledges: after shutdownTimeoutSeconds its deliveries are given up and the reload completes; no cursor moves past what was never acknowledged', async () => {
    const server = await new RawForwardServer({ ackDelay: () => null }).start();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'df-reload-n-'));
      const configFile = join(dir, 'defender.yaml');
      const output = { type: 'forward', host: '127.0.0.1', port: server.port, maxBatchRecords: 5, ackTimeoutSeconds: 60 };
      write(configFile, { output, shutdownTimeoutSeconds: 2 }, ['stuck']);
      const exited = start(configFile);
      const ids = () => server.packets.filter((p) => p.tag.endsWith('.alerts')).flatMap((p) => p.ids);
      await until('the first batch is on the wire', () => ids().length > 0);
      writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'info', output, shutdownTimeoutSeconds: 2, connectors: [{ ...connector('stuck'), intervalMinutes: 2 }] }));
      run!.kill('SIGHUP');
      await until('the reload completes', () => /"config reloaded"/.test(stderr));
      assert.match(stderr, /not acknowledged within shutdownTimeoutSeconds \(2 s\) are given up/);
      assert.match(stderr, /"changed":\["stuck"\]/);
      assert.ok(!existsSync(join(dir, 'state', 'cursors', 'stuck.alerts.json')), 'no cursor moved past an unacknowledged batch');
      run!.kill('SIGTERM');
      await exited;
      assert.ok(!existsSync(join(dir, 'state', 'cursors', 'stuck.alerts.json')), 'nor at the stop: the restarted connector reads them again next time');
    } finally {
      await server.stop();
    }
  });

  it('workers: 2: a valid edit restarts only the worker whose connectors changed; an invalid one changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-reload-w-'));
    const configFile = join(dir, 'defender.yaml');
    write(configFile, { workers: 2 }, ['north', 'south']);
    const exited = start(configFile);
    await until('both polled', () => pollsOf('north') === 1 && pollsOf('south') === 1);
    const all = recordsOf('north');

    writeFileSync(configFile, 'workers: 2\nconnectors: 3\n');
    run!.kill('SIGHUP');
    await until('the invalid config is reported', () => /keeping the running configuration/.test(stderr));
    assert.match(stderr, /defender\.yaml:2: \/connectors: must be array/);

    /** the index of each worker started so far, in order */
    const started = () => stderr.split('\n').filter((l) => l.includes('"worker started"')).map((l) => (JSON.parse(l) as { worker: number }).worker);
    assert.deepEqual(started(), [0, 1], 'nothing restarted on the invalid edit');
    write(configFile, { workers: 2 }, ['north', 'south', 'east']);
    run!.kill('SIGHUP');
    await until("east's records arrive", () => pollsOf('east') === 1 && recordsOf('east') === all);
    // east joins worker 0 (north's: both have one connector, the first wins), which restarts and resumes
    // north from its cursor; worker 1 keeps running south, which does not poll again before its interval
    await until('north polls again', () => pollsOf('north') === 2);
    assert.deepEqual(started(), [0, 1, 0]);
    assert.equal(pollsOf('south'), 1);
    write(configFile, { workers: 2 }, ['south', 'east']);
    run!.kill('SIGHUP');
    await until('worker 0 restarts without north', () => started().length === 4);
    await until('east polls again (worker 0 resumed it)', () => pollsOf('east') === 2);
    assert.deepEqual(started(), [0, 1, 0, 0]);
    assert.equal(pollsOf('north'), 2, 'north stopped');
    assert.equal(pollsOf('south'), 1, 'worker 1 kept running south');
    run!.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  });
});
