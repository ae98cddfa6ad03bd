// `workers: N` (issue 12): the real `run` (from source, a child process) forks its worker processes;
// one of them is SIGKILLed while a batch of its connector is on the wire. It must be restarted and
// resume from its cursor: every alert reaches the pipeline for every connector, and the parent keeps
// one status file and one metrics snapshot for all of them.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import type { StatusFile } from '../plugin/status/store.js';
import { TestForwardServer, waitFor } from './forward-helpers.js';
import { freePort } from './helpers/harness.js';
import { freshDatabase } from './helpers/postgres.js';
import { testConfig } from './helpers/connector.js';
import { clientId, tenantId } from './helpers/entra.js';
import { partition, repartition, workerConfig, workerEnv, workerShare } from '../plugin/collect/workers.js';

const connectors = ['north', 'south', 'east'];

describe('workers: N (collector worker processes)', function () {
  this.timeout(90_000);
  let emu: Emulator | undefined;
  let fwd: TestForwardServer | undefined;
  let run: ChildProcess | undefined;
  let dir: string | undefined;
  let stderr = '';

  beforeEach(() => {
    // the worker pids are read from this run's log only
    stderr = '';
    emu = fwd = run = dir = undefined;
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(stderr.slice(-4000));
    if (run && run.exitCode === null && run.signalCode === null) {
      run.kill('SIGKILL');
      await new Promise((r) => run!.once('exit', r));
    }
    await fwd?.stop();
    await emu?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `run --once --output stdout` from source; asserts exit 0; the alert ids each connector's records carry, in order. */
  async function runOnce(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Map<string, string[]>> {
    run = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'run', '--once', '--output', 'stdout', '--config', configFile], { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    run.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await new Promise((r) => run!.once('close', (c) => r(c))), 0);
    const perConnector = new Map<string, string[]>();
    for (const line of stdout.split('\n').filter(Boolean)) {
      const record = JSON.parse(line) as { engid_name: string; microsoft_defender: { id: string } }; // a cut line would not parse
      const name = record.engid_name.replace(/^microsoft_defender_/, '');
      const ids = perConnector.get(name) ?? [];
      ids.push(record.microsoft_defender.id);
      perConnector.set(name, ids);
    }
    return perConnector;
  }

  it('--once --output stdout: the workers\' records reach the one stdout as whole lines, every connector complete, exit 0', async () => {
    emu = await startEmulator({ seed: 13, alerts: 300, machines: 0, historyHours: 2 });
    dir = mkdtempSync(join(tmpdir(), 'df-workers-'));
    const configFile = join(dir, 'defender.yaml');
    writeFileSync(configFile, stringify({ stateDir: join(dir, 'state'), workers: 2, connectors: connectors.map((name) => ({ ...emu!.connectorConfig(), name, contentTypes: ['alerts'], lookbackHours: 3 })) }));
    const perConnector = await runOnce(configFile);
    for (const c of connectors) assert.equal(new Set(perConnector.get(c)).size, 300, `${c}: every alert`);
    const status = JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as StatusFile;
    for (const c of connectors) assert.equal(status.connectors[c]?.contentTypes.alerts?.records.collected, 300, `${c} in the one status.json`);
  });

  it('with state: postgres the workers keep cursors and leases in the database: a second run finds nothing new', async () => {
    emu = await startEmulator({ seed: 14, alerts: 200, machines: 0, historyHours: 2 });
    dir = mkdtempSync(join(tmpdir(), 'df-workers-pg-'));
    const url = await freshDatabase();
    const configFile = join(dir, 'defender.yaml');
    writeFileSync(configFile, stringify({ stateDir: join(dir, 'state'), workers: 2, state: { type: 'postgres', url: '${env:STATE_URL}' }, connectors: connectors.map((name) => ({ ...emu!.connectorConfig(), name, contentTypes: ['alerts'], lookbackHours: 3 })) }));
    const env = { ...process.env, STATE_URL: url };
    const first = await runOnce(configFile, env);
    for (const c of connectors) assert.equal(first.get(c)?.length, 200, `${c}: every alert`);
    const pool = new pg.Pool({ connectionString: url });
    try {
      const { rows } = await pool.query<{ connector: string; cursor: unknown }>('SELECT connector, cursor FROM defender_fluent_tasks ORDER BY connector');
      assert.deepEqual(rows.map((r) => r.connector), [...connectors].sort());
      for (const r of rows) assert.ok(r.cursor, `${r.connector}: a cursor in the database`);
    } finally {
      await pool.end();
    }
    const second = await runOnce(configFile, env);
    assert.deepEqual([...second.entries()], [], 'nothing new the second time: the workers resumed from the database');
  });

  it('a worker SIGKILLed mid-batch is restarted and resumes from its cursor: nothing lost, one status file and metrics view', async () => {
    emu = await startEmulator({ seed: 12, alerts: 600, machines: 0, historyHours: 2 });
    fwd = await new TestForwardServer().start();
    dir = mkdtempSync(join(tmpdir(), 'df-workers-'));
    const connector = { ...emu.connectorConfig(), contentTypes: ['alerts'], lookbackHours: 3, intervalMinutes: 1 };
    const configFile = join(dir, 'defender.yaml');
    const healthPort = await freePort();
    writeFileSync(
      configFile,
      stringify({
        stateDir: join(dir, 'state'),
        logLevel: 'info',
        health: { listen: `127.0.0.1:${healthPort}` },
        shutdownTimeoutSeconds: 5,
        workers: 2,
        output: { type: 'forward', host: '127.0.0.1', port: fwd.port, maxBatchRecords: 50, ackTimeoutSeconds: 5, reconnectMaxSeconds: 1 },
        connectors: connectors.map((name) => ({ ...connector, name })),
      }),
    );

    run = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'run', '--config', configFile], { cwd: packageRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    run.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    /** worker → pids, in start order, from the parent's "worker started" lines */
    const workerPids = () => {
      const out = new Map<number, number[]>();
      for (const [line] of stderr.matchAll(/^.*"worker started".*$/gm)) {
        const { worker, pid } = JSON.parse(line) as { worker: number; pid: number };
        out.set(worker, [...(out.get(worker) ?? []), pid]);
      }
      return out;
    };

    // worker 0 runs connectors 0 and 2 (north, east): killed once north has 120 of its 600 alerts on the wire
    const received = new Map<string, Map<string, number>>(connectors.map((c) => [c, new Map()]));
    let killedAt: number | undefined;
    fwd.onEntry = () => {
      const { record } = fwd!.received[fwd!.received.length - 1]!;
      const name = String(record.engid_name).replace(/^microsoft_defender_/, '');
      const alert = record.microsoft_defender as { id: string; lastUpdateTime: string };
      const seen = received.get(name)!;
      const key = `${alert.id}|${alert.lastUpdateTime}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (killedAt === undefined && name === 'north' && seen.size >= 120) {
        killedAt = seen.size;
        const pid = workerPids().get(0)![0]!;
        // only a child of this run: never a pid the system has given to another process since
        const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
        assert.equal(ppid, run!.pid);
        process.kill(pid, 'SIGKILL');
      }
    };

    const versions = emu.alertVersions().map((v) => `${v.id}|${v.lastUpdateTime}`);
    const complete = () => connectors.every((c) => versions.every((v) => received.get(c)!.has(v)));
    assert.ok(await waitFor(complete, 60_000), `every alert for every connector: ${connectors.map((c) => `${c} ${received.get(c)!.size}`).join(', ')} of ${versions.length}`);
    assert.ok(killedAt !== undefined && killedAt < versions.length, 'the worker was killed mid-catch-up');
    assert.equal(workerPids().get(0)!.length, 2, 'worker 0 was restarted');
    assert.equal(workerPids().get(1)!.length, 1, 'worker 1 ran on undisturbed');
    assert.match(stderr, /worker died; restarting it/);

    // one status file and one metrics snapshot, written by the parent from every worker's reports
    const stateDir = join(dir, 'state');
    const statusComplete = () => {
      try {
        const s = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as StatusFile;
        return connectors.every((c) => s.connectors[c]?.contentTypes.alerts?.lastSuccess);
      } catch {
        return false;
      }
    };
    assert.ok(await waitFor(statusComplete, 15_000), 'status.json has every connector, from both workers');
    const polled = () => {
      let json: { name: string; values: { labels: Record<string, string>; value: number }[] }[];
      try {
        json = JSON.parse(readFileSync(join(stateDir, 'metrics.json'), 'utf8'));
      } catch {
        return new Set<string>(); // not written yet
      }
      const polls = json.find((m) => m.name === 'defender_fluent_polls_total')?.values ?? [];
      return new Set(polls.filter((v) => v.labels.outcome === 'success' && v.value > 0).map((v) => v.labels.connector));
    };
    // written just after status.json, by the same save
    assert.ok(await waitFor(() => polled().size === connectors.length, 15_000), `metrics.json counts the polls of both workers: ${[...polled()].join(', ')}`);

    // the parent's health listener: /metrics summed over the workers, /readyz from their reports
    const scraped = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    for (const c of connectors) assert.match(scraped, new RegExp(`defender_fluent_polls_total\\{[^}]*connector="${c}"[^}]*outcome="success"[^}]*\\} 1`));
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status, 200);

    // SIGHUP to the parent reloads the transforms in every worker
    const reloads = () => new Set([...stderr.matchAll(/^.*"transforms reloaded.*$/gm)].map((m) => (JSON.parse(m[0]) as { worker?: number }).worker));
    assert.equal(reloads().size, 0);
    run.kill('SIGHUP');
    assert.ok(await waitFor(() => reloads().size === 2, 15_000), 'both workers reloaded');
    assert.deepEqual([...reloads()].sort(), [0, 1]);

    run.kill('SIGTERM');
    const code = await new Promise((r) => run!.once('exit', (c) => r(c)));
    assert.equal(code, 0);
  });
});

describe('workers: the partition of the connectors, and after a reload', () => {
  const connector = (name: string) => ({ name, tenant: name, apiEndpoint: 'api-us.securitycenter.microsoft.com', clientId, directoryId: tenantId, clientSecret: 'not used' });
  const config = (workers: number, names: string[]) => testConfig({}, { workers, connectors: names.map(connector) });

  it('each worker gets every count-th connector; workerShare reads what the parent passes and refuses anything else', () => {
    const c = config(2, ['a', 'b', 'c']);
    assert.deepEqual(partition(c, 2), [['a', 'c'], ['b']]);
    const share = workerShare({ [workerEnv]: JSON.stringify({ index: 1, count: 2, connectors: ['b'] }) });
    assert.deepEqual(workerConfig(c, share!).connectors.map((x) => x.name), ['b']);
    for (const bad of ['1/2', '{"index":1,"count":2}', '{"index":"1","count":2,"connectors":[]}', '{"index":1,"count":2,"connectors":[3]}']) assert.equal(workerShare({ [workerEnv]: bad }), undefined, bad);
    assert.equal(workerShare({}), undefined);
  });

  it('a reload moves no connector: new ones go to the worker with the fewest, and only workers whose connectors changed restart', () => {
    const before = config(2, ['a', 'b', 'c', 'd']);
    const shares = partition(before, 2); // [a, c] [b, d]
    assert.deepEqual(repartition(shares, before, config(2, ['a', 'b', 'c', 'd', 'e']), 2), { shares: [['a', 'c', 'e'], ['b', 'd']], restart: [0] });
    assert.deepEqual(repartition(shares, before, config(2, ['a', 'b', 'd', 'e', 'f']), 2), { shares: [['a', 'e', 'f'], ['b', 'd']], restart: [0] }, 'c leaves 0, which then has the fewest and takes e, then f (a tie goes to the first)');
    assert.deepEqual(repartition(shares, before, config(2, ['d', 'c', 'b', 'a']), 2), { shares, restart: [] }, 'order alone changes nothing');
    const rotated = config(2, ['a', 'b', 'c', 'd']);
    rotated.connectors[3] = { ...rotated.connectors[3]!, clientSecret: 'new' };
    assert.deepEqual(repartition(shares, before, rotated, 2).restart, [1], "d's settings changed: its worker restarts");
    assert.deepEqual(repartition(partition(config(4, ['a', 'b']), 2), config(4, ['a', 'b']), config(4, ['a', 'b', 'c']), 3), { shares: [['a'], ['b'], ['c']], restart: 'all' }, 'another number of workers: a new partition');
  });
});
