import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Collector } from '../plugin/collect/collector.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { MachineActionsCollector } from '../plugin/collect/machine-actions.js';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { DefenderClient } from '../plugin/defender/client.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { ForwardSink } from '../plugin/output/forward.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import { captureLogger } from './helpers/collect.js';
import { TestForwardServer } from './forward-helpers.js';

function emulatorConfig(emu: Emulator, connector: Record<string, unknown> = {}): Config {
  const stateDir = mkdtempSync(join(tmpdir(), 'df-ma-'));
  const text = stringify({ stateDir, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', contentTypes: ['machineActions'], lookbackHours: 24, ...connector }] });
  const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { EMU_SECRET: emu.clientSecret });
  if (!config) throw new Error(JSON.stringify(problems));
  return config;
}

const minute = 60_000;

describe('machine actions collection (emulator → collector → transforms → forward server with acks)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let server: TestForwardServer;
  beforeEach(async () => {
    // the emulator's clock moves only when the test says so; the collector reads the same clock
    emu = await startEmulator({ seed: 11, alerts: 0, machines: 12, vulnerabilities: 0, machineActions: 40, historyHours: 6, freezeClock: true, actionPendingMs: 2 * minute, actionInProgressMs: 2 * minute });
    server = await new TestForwardServer().start();
  });
  afterEach(async () => {
    await emu.close();
    await server.stop();
  });

  function collector(config: Config, opts: { pageSize?: number } = {}) {
    const loaded = loadMapper();
    assert.ok(loaded.ok);
    const { logger, lines } = captureLogger();
    const clock = { now: () => emu.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 50))) };
    const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: server.port }, { logger });
    const c = new Collector({
      config,
      sink,
      mapper: () => loaded.mapper,
      logger,
      clock,
      ...(opts.pageSize ? { taskFor: () => new MachineActionsCollector({ pageSize: opts.pageSize!, pageMargin: 2 }) } : {}),
    });
    return { collector: c, lines, close: () => sink.close(1000) };
  }

  const arrived = () => server.received.filter((r) => r.tag === 'microsoft_defender.syslog.machine_actions');
  const keyOf = (r: { record: Record<string, unknown> }) => {
    const raw = r.record.microsoft_defender as Record<string, unknown>;
    return `${String(raw.id)}|${String(raw.lastUpdateDateTimeUtc)}`;
  };

  it('delivers every action version the API served once, each status change as a record, and resumes from its cursor', async () => {
    const config = emulatorConfig(emu);
    const run = collector(config, { pageSize: 7 });
    assert.equal(await run.collector.runOnce(), 0, run.lines.join('\n'));
    const history = emu.served.machineActionVersionKeys();
    assert.equal(history.length, 40);
    assert.deepEqual(arrived().map(keyOf).sort(), [...history].sort(), 'every seeded action arrived once');
    for (const r of arrived()) {
      assert.equal(r.record.msg_class, 'microsoft_defender_machine_action');
      assert.equal(r.record.transform_error, undefined);
    }
    // windows by lastUpdateDateTimeUtc, paged with $top/$skip
    const listed = emu.served.requests.filter((q) => q.path === '/api/machineactions');
    assert.ok(listed.length > 40 / 7, 'several pages');
    assert.ok(listed.every((q) => /^lastUpdateDateTimeUtc ge \S+ and lastUpdateDateTimeUtc lt \S+$/.test(new URLSearchParams(q.query).get('$filter') ?? '')), listed[0]?.query);
    assert.ok(existsSync(new CursorStore(config.stateDir).file('emu', 'machineActions')));

    // an action taken now: Pending, then InProgress, then Succeeded, one record each
    const client = new DefenderClient(config.connectors[0]!);
    const machineId = emu.machineIds()[3]!;
    const created = await client.request<{ id: string }>({ method: 'POST', path: `/api/machines/${machineId}/isolate`, body: { Comment: 'test', IsolationType: 'Full' }, retry: false });
    client.close();
    const statuses: unknown[] = [];
    // Pending now, InProgress from +2 min, Succeeded from +4 min
    for (const [i, step] of [1000, 2 * minute, 2 * minute].entries()) {
      emu.advanceTime(step);
      const before = arrived().length;
      assert.equal(await run.collector.runOnce(), 0, run.lines.join('\n'));
      const mine = arrived()
        .slice(before)
        .filter((r) => r.record.action_id === created.body.id);
      assert.equal(mine.length, 1, `poll ${i + 1}: one new record for the action`);
      statuses.push(mine[0]!.record.action_status);
    }
    assert.deepEqual(statuses, ['Pending', 'InProgress', 'Succeeded']);
    const keys = arrived().map(keyOf);
    assert.equal(new Set(keys).size, keys.length, 'no version twice: the overlap is deduplicated');
    await run.close();

    // a restart (a new collector on the same state) re-pulls nothing
    const again = collector(config);
    const before = arrived().length;
    assert.equal(await again.collector.runOnce(), 0);
    assert.equal(arrived().length, before);
    await again.close();
  });

  it('a poll the API fails leaves the cursor where it was; the next one delivers what was missed', async () => {
    const config = emulatorConfig(emu);
    emu.setFaults('500:count=0:on=machineactions');
    const run = collector(config);
    assert.equal(await run.collector.runOnce(), 1);
    assert.equal(run.collector.runners[0]!.state.lastError?.class, 'server');
    assert.equal(arrived().length, 0);
    assert.ok(!existsSync(new CursorStore(config.stateDir).file('emu', 'machineActions')));
    emu.setFaults('');
    assert.equal(await run.collector.runOnce(), 0);
    assert.equal(arrived().length, 40);
    await run.close();
  });
});
