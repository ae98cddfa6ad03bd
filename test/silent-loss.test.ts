// Silent-loss paths found from outside (issue 15), through the emulator over HTTPS: pages capped
// below $top (with and without @odata.nextLink) on alerts and machines, and 200 answers without a
// `value` array on alerts, machines and vulnerability export pages.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AlertsCollector } from '../plugin/collect/alerts.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { HostCollector } from '../plugin/collect/host.js';
import type { CollectorTask } from '../plugin/collect/task.js';
import { VulnerabilitiesCollector } from '../plugin/collect/vulnerabilities.js';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../plugin/emulate/index.js';
import { pollOnce } from './helpers/collect.js';

const START = Date.parse('2026-03-02T10:00:00Z');

async function withEmulator(opts: EmulatorOptions, fn: (emu: Emulator) => Promise<void>): Promise<void> {
  const emu = await startEmulator({ seed: 15, alerts: 30, machines: 5, vulnerabilities: 20, startTime: START, freezeClock: true, ...opts });
  try {
    await fn(emu);
  } finally {
    await emu.close();
  }
}

function configFor(emu: Emulator, content: 'alerts' | 'host' | 'vulnerabilities', extra: Record<string, unknown> = {}): Config {
  const stateDir = mkdtempSync(join(tmpdir(), 'df-silent-loss-'));
  const text = stringify({ stateDir, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:S}', contentTypes: [content], lookbackHours: 3, requestTimeoutSeconds: 10, ...extra }] });
  const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { S: emu.clientSecret });
  if (!config) throw new Error(`config invalid: ${JSON.stringify(problems)}`);
  return config;
}

const cursorFile = (config: Config, content: 'alerts' | 'host' | 'vulnerabilities') => new CursorStore(config.stateDir).file('emu', content);
const cursorOf = (config: Config, content: 'alerts' | 'host' | 'vulnerabilities') => JSON.parse(readFileSync(cursorFile(config, content), 'utf8')) as Record<string, any>;
/** the alert versions inside the first poll's window (lookbackHours 3 before START; some were updated after START) */
const inWindow = (emu: Emulator) => emu.alertVersions().filter((a) => Date.parse(a.lastUpdateTime) >= START - 3 * 3600_000 && Date.parse(a.lastUpdateTime) < START).length;
const distinct = (records: Record<string, unknown>[]) => new Set(records.map((r) => `${String(r.id)}|${String(r.lastUpdateTime)}`)).size;

async function poll(config: Config, task: CollectorTask) {
  return pollOnce(config, task, { now: START });
}

describe('silent loss: pages capped below $top', function () {
  this.timeout(60_000);

  for (const nextLink of [false, true]) {
    const how = nextLink ? 'linked with @odata.nextLink' : 'without a nextLink';
    it(`machines: 3 000 served in pages of 1 000 (${how}) are all delivered and all in the digests`, () =>
      withEmulator({ machines: 3000, pageCap: 1000, pageCapNextLink: nextLink }, async (emu) => {
        const config = configFor(emu, 'host');
        const run = await poll(config, new HostCollector());
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.equal(new Set(run.sink.records().map((r) => r.id)).size, 3000);
        assert.equal(cursorOf(config, 'host').machines, 3000);
      }));

    it(`alerts: a window of 2 500 in pages of 1 000 under $top=10 000 (${how}) is delivered whole before the cursor moves`, () =>
      withEmulator({ alerts: 2500, pageCap: 1000, pageCapNextLink: nextLink }, async (emu) => {
        const config = configFor(emu, 'alerts');
        const run = await poll(config, new AlertsCollector());
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.ok(inWindow(emu) > 2400);
        assert.equal(distinct(run.sink.records()), inWindow(emu));
        assert.equal(run.sink.received.length, inWindow(emu), 'each alert once: the re-read margin is skipped');
        assert.equal(cursorOf(config, 'alerts').watermark, new Date(START).toISOString());
      }));
  }

  it('alerts: a cap far below the re-read margin (pages of 30, margin 100) still reads the window whole, without a call per alert', () =>
    withEmulator({ alerts: 600, pageCap: 30 }, async (emu) => {
      const config = configFor(emu, 'alerts');
      const run = await poll(config, new AlertsCollector());
      assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
      assert.equal(run.sink.received.length, inWindow(emu));
      assert.equal(distinct(run.sink.records()), inWindow(emu));
      // a short page steps back by at most half of itself: 15 new alerts a call, not one
      const calls = emu.served.requests.filter((r) => r.api === 'alerts').length;
      assert.ok(calls <= Math.ceil(inWindow(emu) / 15) + 2, `calls: ${calls}`);
    }));
});

describe('silent loss: a 200 without a `value` array is a malformed page', function () {
  this.timeout(60_000);
  const shapes = ['empty', 'null', 'scalar', 'other'] as const;

  for (const shape of shapes) {
    it(`alerts (${shape}): asked again once, then the window is delivered whole`, () =>
      withEmulator({ faults: `novalue:shape=${shape}:on=alerts` }, async (emu) => {
        const config = configFor(emu, 'alerts');
        const run = await poll(config, new AlertsCollector());
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.equal(emu.faultsFired().novalue, 1);
        assert.equal(run.sink.received.length, inWindow(emu));
      }));
  }

  it('alerts: one that never goes away fails the poll and the cursor does not move', () =>
    withEmulator({ faults: 'novalue:shape=empty:on=alerts:count=0' }, async (emu) => {
      const config = configFor(emu, 'alerts');
      const run = await poll(config, new AlertsCollector());
      assert.equal(run.failed, 1);
      assert.match(run.states[0]!.lastError!.message, /without a "value" array/);
      assert.ok(emu.faultsFired().novalue! > 1, 'retried before failing');
      assert.equal(run.sink.received.length, 0);
      assert.equal(existsSync(cursorFile(config, 'alerts')), false, 'no cursor written: the window is read again next poll');
    }));

  it('machines: asked again once, then every machine is delivered', () =>
    withEmulator({ machines: 12, faults: 'novalue:shape=null:on=machines' }, async (emu) => {
      const config = configFor(emu, 'host');
      const run = await poll(config, new HostCollector(5));
      assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
      assert.equal(emu.faultsFired().novalue, 1);
      assert.equal(new Set(run.sink.records().map((r) => r.id)).size, 12);
      assert.equal(run.sink.received.length, 24, 'each machine once (Syslog + Assets)');
    }));

  it('machines: one that never goes away fails the poll; the digests are not saved', () =>
    withEmulator({ machines: 12, faults: 'novalue:shape=other:on=machines:after=1:count=0' }, async (emu) => {
      const config = configFor(emu, 'host');
      const run = await poll(config, new HostCollector(5));
      assert.equal(run.failed, 1);
      assert.match(run.states[0]!.lastError!.message, /without a "value" array/);
      assert.equal(existsSync(cursorFile(config, 'host')), false);
    }));

  it('vulnerability export: a page without `value` fails the poll with the cursor at the last whole page; the next poll resumes there', () =>
    withEmulator({ vulnerabilities: 20, faults: 'novalue:shape=scalar:on=vulnerabilities:after=2:count=0' }, async (emu) => {
      const config = configFor(emu, 'vulnerabilities', { vulnerabilityPageSize: 5 });
      const first = await poll(config, new VulnerabilitiesCollector());
      assert.equal(first.failed, 1);
      assert.match(first.states[0]!.lastError!.message, /without a "value" array/);
      assert.equal(first.sink.received.length, 10, 'two whole pages');
      const saved = cursorOf(config, 'vulnerabilities');
      assert.equal(saved.progress?.kind, 'full');
      assert.equal(saved.baselineAt, undefined, 'the export is not taken as finished');

      emu.setFaults('');
      const second = await poll(config, new VulnerabilitiesCollector());
      assert.equal(second.failed, 0, second.states[0]?.lastError?.message);
      assert.equal(second.sink.received.length, 10, 'the rest, from the saved page on');
      assert.ok(cursorOf(config, 'vulnerabilities').baselineAt);
    }));
});
