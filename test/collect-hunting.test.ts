import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PassThrough } from 'node:stream';
import { testCommand } from '../plugin/check/command.js';
import type { CheckOutput } from '../plugin/generated/check-output.js';
import { Collector } from '../plugin/collect/collector.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { HuntingCollector, type HuntingCursor } from '../plugin/collect/hunting.js';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { TokenProvider } from '../plugin/defender/auth.js';
import { DefenderClient } from '../plugin/defender/client.js';
import { DefenderApiError } from '../plugin/defender/errors.js';
import { runHuntingQueryPath } from '../plugin/defender/hunting.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { ForwardSink } from '../plugin/output/forward.js';
import { huntingDir } from '../plugin/paths.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import { captureLogger } from './helpers/collect.js';
import { TestForwardServer } from './forward-helpers.js';

const minute = 60_000;
const example = 'encoded-powershell.kql';

/** The example query's own filter, applied to the emulator's table: what it must deliver. */
const matching = (rows: Record<string, unknown>[]) => rows.filter((r) => String(r.FileName).toLowerCase() === 'powershell.exe' && String(r.ProcessCommandLine).includes('-EncodedCommand'));

describe('hunting collection (Graph runHuntingQuery on the emulator → collector → transforms → forward server)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  let server: TestForwardServer;
  let dir: string;
  beforeEach(async () => {
    emu = await startEmulator({ seed: 5, alerts: 0, machines: 8, vulnerabilities: 0, freezeClock: true, huntingRowEveryMs: 20_000 });
    server = await new TestForwardServer().start();
    dir = mkdtempSync(join(tmpdir(), 'df-hunting-'));
    copyFileSync(join(huntingDir, example), join(dir, example));
  });
  afterEach(async () => {
    await emu.close();
    await server.stop();
  });

  function config(): Config {
    const stateDir = join(dir, 'state');
    const text = stringify({ stateDir, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', contentTypes: ['hunting'], huntingDir: dir }] });
    const { config, problems } = checkConfigText(join(dir, 'defender.yaml'), text, { EMU_SECRET: emu.clientSecret });
    if (!config) throw new Error(JSON.stringify(problems));
    return config;
  }

  function collector(cfg: Config, task?: HuntingCollector) {
    const loaded = loadMapper();
    assert.ok(loaded.ok);
    const { logger, lines } = captureLogger();
    const clock = { now: () => emu.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 50))) };
    const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: server.port }, { logger });
    const c = new Collector({ config: cfg, sink, mapper: () => loaded.mapper, logger, clock, ...(task ? { taskFor: () => task } : {}) });
    return {
      collector: c,
      lines,
      close: async () => {
        await c.stop();
        await sink.close(1000);
      },
    };
  }

  const arrived = () => server.received.filter((r) => r.tag === 'microsoft_defender.syslog.hunting');
  const reportIds = (records = arrived()) => records.map((r) => (r.record.microsoft_defender as { row: { ReportId: number } }).row.ReportId).sort((a, b) => a - b);
  const cursorOf = (cfg: Config) => JSON.parse(readFileSync(new CursorStore(cfg.stateDir).file('emu', 'hunting'), 'utf8')) as HuntingCursor;

  it('runs the query over its lookback, then from its cursor: every matching row once, mapped by its header', async () => {
    const cfg = config();
    const run = collector(cfg);
    const start = emu.now();
    assert.equal(await run.collector.runOnce(), 0, run.lines.join('\n'));
    const first = matching(emu.huntingRows(start - 60 * minute, start));
    assert.ok(first.length > 5, 'the emulator has matching rows in the hour');
    assert.deepEqual(reportIds(), first.map((r) => r.ReportId as number));
    const r0 = arrived()[0]!.record;
    assert.equal(r0.msg_class, 'microsoft_defender_hunting');
    assert.equal(r0.hunting_query, 'encoded-powershell');
    assert.equal(r0.transform_error, undefined);
    const row = (r0.microsoft_defender as { row: Record<string, unknown> }).row;
    assert.equal(r0.host_id, row.DeviceId);
    assert.equal(r0.process_cmdline, row.ProcessCommandLine);
    assert.equal(r0.timestamp, Date.parse(String(row.Timestamp)));
    assert.equal(cursorOf(cfg).queries['encoded-powershell']!.watermark, new Date(start).toISOString());

    // not due before its 15-minute interval; then from the cursor, the overlap deduplicated
    emu.advanceTime(5 * minute);
    assert.equal(await run.collector.runOnce(), 0);
    assert.equal(arrived().length, first.length, 'not due yet');
    emu.advanceTime(11 * minute);
    assert.equal(await run.collector.runOnce(), 0, run.lines.join('\n'));
    const all = matching(emu.huntingRows(start - 60 * minute, emu.now()));
    assert.deepEqual(reportIds(), all.map((r) => r.ReportId as number), 'every row once: the 10-minute overlap re-read, not re-delivered');
    const calls = emu.served.requests.filter((q) => q.path === runHuntingQueryPath);
    assert.equal(calls.length, 2);
    await run.close();

    // a restart re-pulls nothing
    const again = collector(cfg);
    emu.advanceTime(16 * minute);
    const before = arrived().length;
    assert.equal(await again.collector.runOnce(), 0);
    assert.deepEqual(reportIds(arrived().slice(before)), matching(emu.huntingRows(emu.now() - 16 * minute, emu.now())).map((r) => r.ReportId as number));
    await again.close();
  });

  it('a broken query file is named with its line and does not stop the others', async () => {
    writeFileSync(join(dir, 'broken.kql'), '// name: broken\n// interval: often\n// timeColumn: Timestamp\nDeviceProcessEvents\n');
    const cfg = config();
    const run = collector(cfg);
    assert.equal(await run.collector.runOnce(), 1);
    const error = run.collector.runners[0]!.state.lastError!;
    assert.equal(error.class, 'config');
    assert.match(error.message, /broken\.kql:2: \/interval: must match/);
    assert.ok(arrived().length > 5, 'the good query delivered');
    assert.ok(cursorOf(cfg).queries['encoded-powershell']);
    await run.close();
  });

  it("a 429 for the tenant's CPU quota waits for the next cycle (across a restart) and says so; the cursor does not move", async () => {
    const cfg = config();
    emu.setFaults('429:on=hunting:retryAfter=900');
    const run = collector(cfg);
    assert.equal(await run.collector.runOnce(), 1);
    const error = run.collector.runners[0]!.state.lastError!;
    assert.equal(error.class, 'throttled');
    const until = new Date(emu.now() + 900_000).toISOString();
    assert.match(error.message, new RegExp(`CPU quota is used up \\(Retry-After 900 s\\): waiting for the next cycle, until ${until}; its cursor did not move`));
    assert.equal(arrived().length, 0);
    const calls = () => emu.served.requests.filter((q) => q.path === runHuntingQueryPath).length;
    const called = calls();
    // the next poll, and a restarted collector, wait for the cycle without calling Graph
    assert.equal(await run.collector.runOnce(), 1);
    await run.close();
    emu.advanceTime(899_000);
    const restarted = collector(cfg);
    assert.equal(await restarted.collector.runOnce(), 1);
    assert.match(restarted.collector.runners[0]!.state.lastError!.message, new RegExp(`blocked until ${until}, the tenant's next CPU cycle \\(encoded-powershell got a CPU-quota 429\\): no query runs before then; encoded-powershell wait`));
    assert.equal(calls(), called, 'Graph not asked while the quota blocks');
    emu.advanceTime(2_000);
    assert.equal(await restarted.collector.runOnce(), 0, 'after the cycle the query runs');
    assert.ok(arrived().length > 5);
    await restarted.close();
  });

  it('a result at the row limit is asked for again in halves: nothing is cut off', async () => {
    const cfg = config();
    const run = collector(cfg, new HuntingCollector({ maxRows: 10 }));
    const start = emu.now();
    assert.equal(await run.collector.runOnce(), 0, run.lines.join('\n'));
    assert.deepEqual(reportIds(), matching(emu.huntingRows(start - 60 * minute, start)).map((r) => r.ReportId as number));
    assert.ok(emu.served.requests.filter((q) => q.path === runHuntingQueryPath).length > 3, 'split into several calls');
    await run.close();
  });

  it('the running-time budget: once the last hour used it, the next queries wait for a later poll and status says so', async () => {
    writeFileSync(join(dir, 'second.kql'), readFileSync(join(dir, example), 'utf8').replace('name: encoded-powershell', 'name: second'));
    const cfg = config();
    // every query takes at least 30 ms; the budget allows 10 ms an hour: the first runs, the second waits
    emu.setFaults('slow:ms=30:count=0:on=hunting');
    const run = collector(cfg, new HuntingCollector({ runningMsPerHour: 10 }));
    assert.equal(await run.collector.runOnce(), 1);
    const error = run.collector.runners[0]!.state.lastError!;
    assert.equal(error.class, 'throttled');
    assert.match(error.message, /hunting running-time budget used up .*: second and the queries after it wait for the next poll/);
    // status shows each query's position
    assert.match(error.message, new RegExp(`1 of 2 queries ran: encoded-powershell ran, rows to ${cursorOf(cfg).queries['encoded-powershell']!.watermark}; second waits, rows to \\(never run\\)`));
    assert.deepEqual(Object.keys(cursorOf(cfg).queries), ['encoded-powershell']);
    await run.close();
    // a restart does not give the hour's running time back
    const restarted = collector(cfg, new HuntingCollector({ runningMsPerHour: 10 }));
    assert.equal(await restarted.collector.runOnce(), 1);
    assert.match(restarted.collector.runners[0]!.state.lastError!.message, /hunting running-time budget used up .*: second and the queries after it wait/);
    assert.deepEqual(Object.keys(cursorOf(cfg).queries), ['encoded-powershell']);
    await restarted.close();
    // an hour later it is free again: a query runs
    const before = cursorOf(cfg).queries['encoded-powershell']!.lastRun;
    emu.advanceTime(3600_000);
    const later = collector(cfg, new HuntingCollector({ runningMsPerHour: 10 }));
    assert.equal(await later.collector.runOnce(), 1, 'one query runs, then the budget is used up again');
    assert.ok(cursorOf(cfg).queries['encoded-powershell']!.lastRun > before);
    await later.close();
  });

  it('Graph takes a Graph token only: a Defender-scoped token gets 401', async () => {
    const c = config().connectors[0]!;
    const client = new DefenderClient(c, { tokens: new TokenProvider(c), baseUrl: c.graphBaseUrl });
    await assert.rejects(
      client.request({ method: 'POST', path: runHuntingQueryPath, body: { Query: 'DeviceProcessEvents | take 1' }, family: 'hunting', retry: false }),
      (e: unknown) => e instanceof DefenderApiError && e.status === 401 && /audience/.test(e.message),
    );
    client.close();
  });

  it('`test` checks the Graph token for ThreatHunting.Read.All and runs one small query', async () => {
    const run = async (e: Emulator) => {
      const file = join(dir, 'test.yaml');
      writeFileSync(file, stringify({ stateDir: join(dir, 'state'), connectors: [{ ...e.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', contentTypes: ['hunting'], huntingDir: dir }] }));
      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => (text += d.toString()));
      const code = await testCommand({ config: file, json: true, out, env: { EMU_SECRET: e.clientSecret } });
      return { code, check: (JSON.parse(text) as CheckOutput).connectors[0]!.checks.find((c) => c.id === 'api:hunting')! };
    };
    const ok = await run(emu);
    assert.equal(ok.code, 0);
    assert.equal(ok.check.result, 'pass', ok.check.detail);
    const lacking = await startEmulator({ seed: 5, alerts: 0, machines: 1, vulnerabilities: 0, graphRoles: [] });
    try {
      const bad = await run(lacking);
      assert.equal(bad.code, 1);
      assert.equal(bad.check.result, 'fail');
      assert.match(bad.check.detail, /the Graph token lacks ThreatHunting\.Read\.All/);
      assert.match(bad.check.fix!, /Microsoft Graph → Application permissions → ThreatHunting\.Read\.All/);
    } finally {
      await lacking.close();
    }
  });
});
