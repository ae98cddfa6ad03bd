// Replicas on one PostgreSQL state store: real `defender-fluent run` processes (from source) share
// the connector tasks of two emulated tenants through row leases. What each replica asked for is
// read from the emulators' request logs: every API call carries the id of the token it used, and
// each replica process has its own token per tenant.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/server.js';
import type { RequestLogEntry } from '../plugin/emulate/served.js';
import { packageRoot } from '../plugin/paths.js';
import { readStatusFile } from '../plugin/status/store.js';
import { until } from './helpers/until.js';
import { freshDatabase } from './helpers/postgres.js';

const leaseSeconds = 5;

interface Replica {
  proc: ChildProcess;
  stderr: string;
}

/** The API calls of one task (an emulator is one tenant; the path is the content type). */
const callsOf = (emu: Emulator, path: string): RequestLogEntry[] => emu.served.requests.filter((r) => r.path === path && r.token !== undefined);

/**
 * True when the calls, in the order served, never interleave two tokens: each token's calls form
 * one run. A task polled by two replicas at once shows as alternating tokens.
 */
function oneReplicaAtATime(calls: RequestLogEntry[]): boolean {
  const finished = new Set<string>();
  let current: string | undefined;
  for (const c of calls) {
    if (c.token === current) continue;
    if (finished.has(c.token!)) return false;
    if (current) finished.add(current);
    current = c.token;
  }
  return true;
}

describe('replicas on one PostgreSQL: tasks shared through leases', function () {
  this.timeout(120_000);
  const replicas: Replica[] = [];
  let emus: Emulator[] = [];
  let dir: string;
  let pool: pg.Pool;
  let url: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'df-replicas-'));
    url = await freshDatabase();
    pool = new pg.Pool({ connectionString: url });
    emus = await Promise.all([startEmulator({ seed: 1, alerts: 300, machines: 40 }), startEmulator({ seed: 2, alerts: 300, machines: 40 })]);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const r of replicas) console.error(r.stderr);
    for (const r of replicas.splice(0)) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
    await pool.end();
    await Promise.all(emus.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  function startReplica(n: number): Replica {
    const stateDir = join(dir, `replica-${n}`);
    const configFile = join(dir, `replica-${n}.yaml`);
    const connectors = emus.map((emu, i) => ({ ...emu.connectorConfig(`tenant-${i}`), clientSecret: `\${env:SECRET_${i}}`, contentTypes: ['alerts', 'host'], intervalMinutes: 1 }));
    writeFileSync(configFile, stringify({ stateDir, state: { type: 'postgres', url: '${env:STATE_URL}', leaseSeconds }, output: { type: 'stdout' }, connectors }));
    const env = { ...process.env, STATE_URL: url, ...Object.fromEntries(emus.map((e, i) => [`SECRET_${i}`, e.clientSecret])) };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'run', '--config', configFile], { cwd: packageRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const r: Replica = { proc, stderr: '' };
    proc.stderr!.on('data', (d: Buffer) => (r.stderr = (r.stderr + d.toString()).slice(-6000)));
    replicas.push(r);
    return r;
  }

  const tasks = () => emus.flatMap((emu, i) => ['alerts', 'host'].map((content) => ({ emu, connector: `tenant-${i}`, content, path: content === 'alerts' ? '/api/alerts' : '/api/machines' })));
  const owners = async () => (await pool.query<{ connector: string; content: string; owner: string | null; cursor: unknown }>('SELECT connector, content, owner, cursor FROM defender_fluent_tasks')).rows;
  const pidOf = (owner: string | null) => Number(owner?.split('/')[1]);

  it('two replicas share the tasks and never poll one at the same time; a replica SIGKILLed has its tasks taken over from the committed cursor', async () => {
    const a = startReplica(1);
    const b = startReplica(2);
    // every task polled and committed, and both replicas holding a share
    await until('every task polled and committed, both replicas holding a share', async () => {
      const rows = await owners().catch(() => []);
      const by = new Set(rows.map((r) => pidOf(r.owner)));
      return rows.length === 4 && rows.every((r) => r.cursor !== null) && by.has(a.proc.pid!) && by.has(b.proc.pid!);
    });
    for (const t of tasks()) assert.ok(oneReplicaAtATime(callsOf(t.emu, t.path)), `${t.connector}:${t.content} polled by two replicas at once`);
    // each replica's status.json shows every task, the others' polls included (shared through the database)
    await until('both status files list every task as polled', () =>
      [1, 2].every((n) => tasks().every((t) => !!readStatusFile(join(dir, `replica-${n}`))?.connectors[t.connector]?.contentTypes[t.content as 'alerts']?.lastSuccess)),
    );

    // B dies without a word; A takes B's tasks over once their leases expire
    const ofB = (await owners()).filter((r) => pidOf(r.owner) === b.proc.pid);
    assert.ok(ofB.length > 0);
    const killedAt = Date.now();
    b.proc.kill('SIGKILL');
    await until("B's leases taken by A", async () => {
      const rows = await owners();
      return ofB.every((t) => pidOf(rows.find((r) => r.connector === t.connector && r.content === t.content)!.owner) === a.proc.pid);
    });
    // ... and polls them, resuming from B's cursor: the first alerts call asks from B's watermark minus the overlap, not from the lookback
    for (const t of ofB) {
      const task = tasks().find((x) => x.connector === t.connector && x.content === t.content)!;
      await until(`a poll of ${t.connector}:${t.content} after the kill`, () => callsOf(task.emu, task.path).some((c) => c.at > killedAt));
      if (t.content !== 'alerts') continue;
      const first = callsOf(task.emu, task.path).find((c) => c.at > killedAt)!;
      const watermark = (t.cursor as { watermark: string }).watermark;
      const since = /lastUpdateTime ge (\S+)/.exec(new URLSearchParams(first.query).get('$filter') ?? '')?.[1];
      assert.ok(since && Date.parse(since) >= Date.parse(watermark) - 60 * 60_000, `took over from ${since}, B had committed ${watermark}`);
    }
  });
});
