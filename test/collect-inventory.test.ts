import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { stringify } from 'yaml';
import { AlertsCollector } from '../plugin/collect/alerts.js';
import { Collector, type CollectorOptions } from '../plugin/collect/collector.js';
import { HostCollector } from '../plugin/collect/host.js';
import { FileMachineInventory, inventoryKey, type MachineInventory } from '../plugin/collect/inventory.js';
import { checkConfigText, type Config, type ContentType } from '../plugin/config/load.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import { loadSchema } from '../plugin/schema-check.js';
import { PgMachineInventory } from '../plugin/state/pg-inventory.js';
import { openPool, PgStateStore } from '../plugin/state/postgres.js';
import { LeaseLostError } from '../plugin/state/store.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import { apiOrigin, testConfig } from './helpers/connector.js';
import { fakeJwt, nockTokens, tokenReply, useNockedEntra } from './helpers/entra.js';
import { alert, nockAlertsApi } from './helpers/odata-api.js';
import { captureLogger, pollOnce } from './helpers/collect.js';
import { MemorySink } from './helpers/memory-sink.js';
import { freshDatabase, holdLease } from './helpers/postgres.js';

const id = (c: string) => c.repeat(40);
const machine = (c: string, extra: Record<string, unknown> = {}) => ({
  id: id(c),
  computerDnsName: `${c}.corp.fabrikam.test`,
  lastSeen: '2026-03-01T05:12:44Z',
  lastIpAddress: '10.0.0.5',
  osPlatform: 'Windows11',
  deviceValue: 'High',
  machineTags: ['vip'],
  ipAddresses: [{ ipAddress: '10.0.0.5', macAddress: '00155D0A1B2C', operationalStatus: 'Up', type: 'Ethernet', extraNicField: 'x' }],
  ...extra,
});

const tmp = () => mkdtempSync(join(tmpdir(), 'df-inv-'));
/** The fields the inventory keeps: what the alert schema declares for the inventory key (read, not restated). */
const declared = () => {
  const s = loadSchema('defender/alert.schema.json') as { definitions: Record<string, { properties: Record<string, unknown> }> };
  return Object.keys(s.definitions.inventoryMachine!.properties);
};

/** What the shared suite needs of an inventory: the store, the host task's lease for its writers (PostgreSQL fences them), and ways to spoil what it stored. */
interface Subject {
  inv: MachineInventory;
  reported: string[];
  hold(connector: string): Promise<void>;
  /** stores the inventory as if packed for other fields */
  repack(connector: string): Promise<void>;
  /** adds an entry that is not JSON */
  addBroken(connector: string, machineId: string): Promise<void>;
  close(): Promise<void>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  files: async () => {
    const reported: string[] = [];
    const inv = new FileMachineInventory(tmp(), (file, err) => reported.push(`${file}: ${err.message}`));
    const edit = (connector: string, change: (text: string) => string) => writeFileSync(inv.file(connector), change(readFileSync(inv.file(connector), 'utf8')));
    return {
      inv,
      reported,
      hold: async () => undefined,
      repack: async (connector) => edit(connector, (t) => t.replace(/^[^\n]*/, '{"v":1,"fields":["other"]}')),
      addBroken: async (connector, machineId) => edit(connector, (t) => `${t}${machineId}\t[broken\n`),
      close: async () => undefined,
    };
  },
  PostgreSQL: async () => {
    const reported: string[] = [];
    const pool = await openPool(await freshDatabase());
    return {
      inv: new PgMachineInventory(pool, 'suite-owner', (where, err) => reported.push(`${where}: ${err.message}`)),
      reported,
      hold: (connector) => holdLease(pool, 'suite-owner', connector, 'host'),
      repack: async (connector) => void (await pool.query(`UPDATE defender_fluent_inventory SET fields = '{"v":1,"fields":["other"]}' WHERE connector = $1`, [connector])),
      addBroken: async (connector, machineId) => void (await pool.query("INSERT INTO defender_fluent_machines (connector, id, entry) VALUES ($1, $2, '[broken')", [connector, machineId])),
      close: () => pool.end(),
    };
  },
};

for (const [kind, open] of Object.entries(subjects)) {
  describe(`machine inventory: ${kind} (one suite for every store)`, function () {
    this.timeout(30_000);
    let s: Subject;
    beforeEach(async () => {
      s = await open();
      await s.hold('acme');
    });
    afterEach(() => s.close());

    it('keeps only the fields the alert schema declares, replaces the whole inventory on commit, one per connector', async () => {
      const w = s.inv.writer('acme');
      w.add(machine('a'));
      w.add(machine('b', { deviceValue: null, machineTags: [] }));
      w.add({ computerDnsName: 'no-id' });
      await w.commit();
      const got = await s.inv.reader('acme').get([id('a'), id('b'), id('c')]);
      assert.deepEqual([...got.keys()].sort(), [id('a'), id('b')]);
      const a = got.get(id('a'))!;
      assert.ok(Object.keys(a).every((k) => declared().includes(k)), `undeclared field kept: ${Object.keys(a).join(', ')}`);
      assert.equal(a.computerDnsName, undefined);
      assert.equal(a.osPlatform, 'Windows11');
      assert.deepEqual(a.ipAddresses, [{ ipAddress: '10.0.0.5', macAddress: '00155D0A1B2C', type: 'Ethernet', operationalStatus: 'Up' }]);
      // nulls and empty lists are dropped, as in the raw copy
      assert.equal('deviceValue' in got.get(id('b'))!, false);
      assert.equal('machineTags' in got.get(id('b'))!, false);

      const w2 = s.inv.writer('acme');
      w2.add(machine('c'));
      w2.add(machine('b', { deviceValue: 'Low' }));
      await w2.commit();
      const again = await s.inv.reader('acme').get([id('a'), id('b'), id('c')]);
      assert.deepEqual([...again.keys()].sort(), [id('b'), id('c')], 'a machine gone from the list leaves the inventory');
      assert.equal(again.get(id('b'))!.deviceValue, 'Low', 'a changed machine is rewritten');
      assert.equal((await s.inv.reader('other').get([id('c')])).size, 0, 'one inventory per connector');
    });

    it('reset forgets one connector\'s inventory and says where it was; another connector\'s stays; none is nothing to forget', async () => {
      await s.hold('other');
      for (const connector of ['acme', 'other']) {
        const w = s.inv.writer(connector);
        w.add(machine('a'));
        await w.commit();
      }
      const removed = await s.inv.reset('acme');
      assert.equal(removed.length, 1);
      assert.match(removed[0]!, /acme/);
      assert.equal((await s.inv.reader('acme').get([id('a')])).size, 0, 'forgotten');
      assert.equal((await s.inv.reader('other').get([id('a')])).size, 1, 'another connector\'s inventory stays');
      assert.deepEqual(await s.inv.reset('acme'), [], 'nothing left to forget');
      assert.deepEqual(s.reported, [], 'an inventory reset is not an unreadable one');
      const w = s.inv.writer('acme');
      w.add(machine('b'));
      await w.commit();
      assert.deepEqual([...(await s.inv.reader('acme').get([id('a'), id('b')])).keys()], [id('b')], 'the next host poll writes it afresh');
    });

    it('a reader reads on first use; what it read stays for its poll; a new reader sees the new inventory', async () => {
      const reader = s.inv.reader('acme');
      const w = s.inv.writer('acme');
      w.add(machine('a'));
      await w.commit();
      assert.equal((await reader.get([id('a')])).size, 1, 'created before the inventory was written, read after: read on first get');
      await s.inv.writer('acme').commit();
      assert.equal((await reader.get([id('a')])).size, 1, 'the same reader keeps what it read');
      assert.equal((await s.inv.reader('acme').get([id('a')])).size, 0, 'a new reader sees the new inventory');
    });

    it('an unreadable inventory is reported and reads as empty (alerts are never held back)', async () => {
      const w = s.inv.writer('acme');
      w.add(machine('a'));
      await w.commit();
      await s.addBroken('acme', id('b'));
      const got = await s.inv.reader('acme').get([id('a'), id('b')]);
      assert.deepEqual([...got.keys()], [id('a')], 'the good entries are still read');
      assert.match(s.reported[0] ?? '', new RegExp(`acme.*entry of machine ${id('b')}`));

      await s.repack('acme');
      assert.equal((await s.inv.reader('acme').get([id('a')])).size, 0, 'an inventory packed for other fields is not read');
      assert.match(s.reported[1] ?? '', /acme.*not an inventory (file )?for the fields this version keeps/);
    });
  });
}

describe('machine inventory: files', () => {
  it('one file per connector, mode 0600', async () => {
    const inv = new FileMachineInventory(tmp());
    const w = inv.writer('acme');
    w.add(machine('a'));
    await w.commit();
    assert.equal(statSync(inv.file('acme')).mode & 0o777, 0o600);
  });
});

describe('machine inventory: PostgreSQL writes are fenced by the host task\'s lease', function () {
  this.timeout(30_000);

  it('a replica that lost the lease writes nothing; the holder\'s inventory stays', async () => {
    const pool = await openPool(await freshDatabase());
    try {
      const holder = new PgMachineInventory(pool, 'replica-b');
      const stale = new PgMachineInventory(pool, 'replica-a');
      await holdLease(pool, 'replica-b', 'acme', 'host');
      const w = holder.writer('acme');
      w.add(machine('a'));
      await w.commit();
      const late = stale.writer('acme');
      late.add(machine('c'));
      await assert.rejects(late.commit(), LeaseLostError);
      await holdLease(pool, 'replica-a', 'acme', 'host', -1);
      await assert.rejects(late.commit(), LeaseLostError, 'an expired lease is no lease');
      assert.deepEqual([...(await holder.reader('acme').get([id('a'), id('c')])).keys()], [id('a')]);
    } finally {
      await pool.end();
    }
  });
});

describe('alert enrichment from the machine inventory', () => {
  useNockedEntra({ roles: ['Alert.Read.All', 'Machine.Read.All'] });
  const now = Date.parse('2026-03-01T12:00:00Z');

  it('the host poll writes the inventory; alerts of a known machine carry its entry, others are delivered without it', async () => {
    const config = testConfig({ contentTypes: ['host'], lookbackHours: 3 });
    nock(apiOrigin)
      .get('/api/machines')
      .query(true)
      .times(10)
      .reply((uri) => [200, { value: new URL(uri, apiOrigin).searchParams.get('$skip') === '0' ? [machine('a')] : [] }]);
    const host = await pollOnce(config, new HostCollector(), { now });
    assert.equal(host.failed, 0);

    nock.cleanAll();
    nockTokens([tokenReply(fakeJwt({ roles: ['Alert.Read.All'] }))]);
    const known = alert(new Date(now - 60_000).toISOString(), { machineId: id('a') });
    const unknown = alert(new Date(now - 60_000).toISOString(), { machineId: id('f') });
    const none = alert(new Date(now - 60_000).toISOString(), { machineId: null });
    nockAlertsApi([known, unknown, none]);
    // the same stateDir, the alerts task
    const alertsConfig = { ...config, connectors: config.connectors.map((c) => ({ ...c, contentTypes: ['alerts'] as [ContentType] })) };
    const run = await pollOnce(alertsConfig, new AlertsCollector({ pageSize: 10, pageMargin: 0 }), { now });
    assert.equal(run.failed, 0);
    const byId = new Map(run.sink.records().map((r) => [r.id, r]));
    assert.equal(byId.size, 3, 'every alert delivered');
    const entry = byId.get(known.id)![inventoryKey] as Record<string, unknown>;
    assert.equal(entry.lastIpAddress, '10.0.0.5');
    assert.deepEqual(entry.machineTags, ['vip']);
    assert.equal(byId.get(unknown.id)![inventoryKey], undefined);
    assert.equal(byId.get(none.id)![inventoryKey], undefined);
  });

  it('without any inventory (host not collected) alerts are delivered as they are', async () => {
    const config = testConfig({ contentTypes: ['alerts'], lookbackHours: 3 });
    const a = alert(new Date(now - 60_000).toISOString(), { machineId: id('a') });
    nockAlertsApi([a]);
    const run = await pollOnce(config, new AlertsCollector({ pageSize: 10, pageMargin: 0 }), { now });
    assert.equal(run.failed, 0);
    assert.equal(run.sink.records().length, 1);
    assert.equal(run.sink.records()[0]![inventoryKey], undefined);
  });
});

type Delivered = { tag: string; record: Record<string, unknown> }[];

/** A config of the emulated tenant `emu` with its own stateDir (and state store settings). */
function emuConfig(emu: Emulator, stateDir: string, contentTypes: ContentType[], extra: Record<string, unknown> = {}, env: Record<string, string> = {}): { file: string; config: Config } {
  const file = join(stateDir, 'defender.yaml');
  const text = stringify({ stateDir, ...extra, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', lookbackHours: 24, contentTypes }] });
  writeFileSync(file, text);
  const { config, problems } = checkConfigText(file, text, { EMU_SECRET: emu.clientSecret, ...env });
  if (!config) throw new Error(JSON.stringify(problems));
  return { file, config };
}

/** One collector in this process, polling every task once. */
async function collectOnce(config: Config, stores: Partial<CollectorOptions> = {}): Promise<Delivered> {
  const loaded = loadMapper();
  assert.ok(loaded.ok);
  const sink = new MemorySink();
  const collector = new Collector({ config, sink, mapper: () => loaded.mapper, logger: captureLogger().logger, ...stores });
  assert.equal(await collector.runOnce(), 0);
  return sink.received;
}

/** `defender-fluent run --once --output stdout` as a process of its own; resolves with the records it printed. */
function runOnceProcess(configFile: string, env: Record<string, string>): Promise<Delivered> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'run', '--once', '--output', 'stdout', '--config', configFile], { cwd: packageRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`run --once exited ${code}: ${err}`));
      resolve(out.split('\n').filter(Boolean).map((l) => {
        const { tag, time: _time, ...record } = JSON.parse(l) as { tag: string; time: string } & Record<string, unknown>;
        return { tag, record };
      }));
    });
  });
}

/**
 * Two runs against one emulated tenant, the host task in the first and the alerts task in the
 * second: with files, as one collector over time (the same stateDir); with PostgreSQL, as two
 * replicas (their own lease owner and stateDir), where the inventory can only reach the alerts
 * through the database: collectors in this process, then two `run --once` processes (the state
 * store and inventory as `run` opens them).
 */
const enrichmentSetups: Record<string, (emu: Emulator) => Promise<{ run(n: 0 | 1, contentTypes: ContentType[]): Promise<Delivered>; close(): Promise<void> }>> = {
  'one collector, files': async (emu) => {
    const stateDir = mkdtempSync(join(tmpdir(), 'df-inv-emu-'));
    return { run: (_n, contentTypes) => collectOnce(emuConfig(emu, stateDir, contentTypes).config), close: async () => rmSync(stateDir, { recursive: true, force: true }) };
  },
  'two replicas on PostgreSQL': async (emu) => {
    const pool = await openPool(await freshDatabase());
    const owners = ['replica-a', 'replica-b'];
    await holdLease(pool, owners[0]!, 'emu', 'host');
    await holdLease(pool, owners[1]!, 'emu', 'alerts');
    const stateDirs = [mkdtempSync(join(tmpdir(), 'df-inv-emu-a-')), mkdtempSync(join(tmpdir(), 'df-inv-emu-b-'))];
    return {
      run: (n, contentTypes) =>
        collectOnce(emuConfig(emu, stateDirs[n]!, contentTypes).config, { cursors: new PgStateStore(pool, owners[n]!), inventory: new PgMachineInventory(pool, owners[n]!) }),
      close: async () => {
        await pool.end();
        for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
      },
    };
  },
  'two run --once processes on PostgreSQL': async (emu) => {
    const env = { STATE_URL: await freshDatabase(), EMU_SECRET: emu.clientSecret };
    const stateDirs = [mkdtempSync(join(tmpdir(), 'df-inv-run-a-')), mkdtempSync(join(tmpdir(), 'df-inv-run-b-'))];
    return {
      run: (n, contentTypes) => runOnceProcess(emuConfig(emu, stateDirs[n]!, contentTypes, { state: { type: 'postgres', url: '${env:STATE_URL}' } }, env).file, env),
      close: async () => {
        for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
      },
    };
  },
};

for (const [setupName, setup] of Object.entries(enrichmentSetups)) {
  describe(`alert enrichment against the emulator, mapped by the shipped transforms (${setupName})`, function () {
    this.timeout(60_000);

    it('an alert record carries the same primary IP / MAC, platform, tags and device value as its machine\'s host record', async () => {
      const emu = await startEmulator({ seed: 11, alerts: 120, machines: 12, vulnerabilities: 0, rateScale: 0.01 });
      try {
        const env = await setup(emu);
        try {
          const hosts = new Map((await env.run(0, ['host'])).filter((r) => r.tag.endsWith('.syslog.host')).map((r) => [r.record.host_id as string, r.record]));
          const alerts = (await env.run(1, ['alerts'])).map((r) => r.record);
          assert.ok(alerts.length > 0, 'alerts delivered');
          const fields = ['srcip', 'srcmac', 'os_platform', 'os_architecture', 'device_value', 'exposure_level', 'risk_score', 'tags'];
          let enriched = 0;
          for (const a of alerts) {
            assert.equal(a.transform_error, undefined);
            assert.equal((a.microsoft_defender as Record<string, unknown>)[inventoryKey], undefined, 'not in the raw copy');
            const host = hosts.get(a.host_id as string);
            if (!host) {
              for (const f of fields) assert.equal(a[f], undefined, `${f} without a known machine`);
              continue;
            }
            for (const f of fields) assert.deepEqual(a[f], host[f], `alert ${String(a.alert_id)}: ${f} as in the host record`);
            if (a.srcip !== undefined) enriched++;
          }
          assert.ok(enriched > 0, 'some alerts enriched');
        } finally {
          await env.close();
        }
      } finally {
        await emu.close();
      }
    });
  });
}
