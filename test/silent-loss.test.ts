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
import { TokenProvider } from '../plugin/defender/auth.js';
import { DefenderClient } from '../plugin/defender/client.js';
import type { DefenderApiError, TokenError } from '../plugin/defender/errors.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../plugin/emulate/index.js';
import { pollOnce } from './helpers/collect.js';
import { createLogger } from '../plugin/log.js';
import { RespondServer } from '../plugin/respond/server.js';
import { PassThrough, Writable } from 'node:stream';
import { StdoutSink } from '../plugin/output/stdout.js';
import { call } from './respond-helpers.js';
import { MemorySink } from './helpers/memory-sink.js';

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

describe('silent loss: a vulnerability export page cut short or malformed is asked for again', function () {
  this.timeout(60_000);

  for (const fault of ['truncate:bytes=2500', 'malformed', 'novalue:shape=null']) {
    it(`${fault.split(':')[0]}: the poll succeeds and every record arrives once, none of the cut page twice`, () =>
      withEmulator({ vulnerabilities: 20, faults: `${fault}:on=vulnerabilities:after=1` }, async (emu) => {
        const config = configFor(emu, 'vulnerabilities', { vulnerabilityPageSize: 8 });
        // slices of one record: part of the cut page is delivered before the cut
        const run = await poll(config, new VulnerabilitiesCollector(1));
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.equal(Object.values(emu.faultsFired()).reduce((a, b) => a + b, 0), 1);
        const ids = run.sink.records().map((r) => String(r.id));
        assert.equal(ids.length, 20, 'each record once');
        assert.deepEqual(new Set(ids), emu.served.vulnerabilityIds);
        assert.ok(cursorOf(config, 'vulnerabilities').baselineAt, 'the export is complete');
      }));
  }

  it('a page that never comes whole fails the poll after the retries, with the cursor at the last whole page', () =>
    withEmulator({ vulnerabilities: 20, faults: 'truncate:bytes=2500:on=vulnerabilities:after=1:count=0' }, async (emu) => {
      const config = configFor(emu, 'vulnerabilities', { vulnerabilityPageSize: 8 });
      const run = await poll(config, new VulnerabilitiesCollector(1));
      assert.equal(run.failed, 1);
      assert.match(run.states[0]!.lastError!.message, /truncated|cut short/);
      assert.equal(emu.faultsFired().truncate, 6, 'asked for 5 more times');
      assert.equal(cursorOf(config, 'vulnerabilities').progress?.kind, 'full');
      assert.equal(new Set(run.sink.records().map((r) => String(r.id))).size, run.sink.received.length, 'nothing delivered twice');
    }));
});

describe('silent loss: a server trickling its answer', function () {
  this.timeout(60_000);

  it('alerts: a page that is never silent but never done is given up after pageTimeoutSeconds and asked for again', () =>
    withEmulator({ faults: 'trickle:bytes=100:ms=50:on=alerts' }, async (emu) => {
      const config = configFor(emu, 'alerts', { requestTimeoutSeconds: 5, pageTimeoutSeconds: 1 });
      const run = await poll(config, new AlertsCollector());
      assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
      assert.equal(emu.faultsFired().trickle, 1);
      assert.ok(run.lines.some((l) => /took more than 1 s to send the page \(pageTimeoutSeconds\)/.test(l)), 'the stall is logged with its reason');
      assert.equal(run.sink.received.length, inWindow(emu), 'each alert once');
    }));

  it('vulnerabilities: one that trickles every time fails the poll with class timeout; the cursor stays', () =>
    withEmulator({ faults: 'trickle:bytes=100:ms=50:on=vulnerabilities:count=0' }, async (emu) => {
      const config = configFor(emu, 'vulnerabilities', { requestTimeoutSeconds: 5, pageTimeoutSeconds: 1 });
      const run = await poll(config, new VulnerabilitiesCollector());
      assert.equal(run.failed, 1);
      assert.equal(run.states[0]!.lastError!.class, 'timeout');
      assert.match(run.states[0]!.lastError!.message, /pageTimeoutSeconds/);
      assert.equal(existsSync(cursorFile(config, 'vulnerabilities')), false);
    }));

  it('a plain call and a token request must come whole within requestTimeoutSeconds, trickled or not', () =>
    withEmulator({ faults: 'trickle:bytes=10:ms=400:on=machineactions:count=0' }, async (emu) => {
      const connector = configFor(emu, 'host', { requestTimeoutSeconds: 1 }).connectors[0]!;
      const client = new DefenderClient(connector);
      // without retries (the `test` command's provider): one attempt tells
      const tokens = new TokenProvider(connector);
      try {
        await assert.rejects(client.request({ path: '/api/machineactions', retry: false }), (e: DefenderApiError) => e.errorClass === 'timeout' && /timed out/.test(e.message));
        emu.setFaults('trickle:bytes=10:ms=400:on=token:count=0');
        await assert.rejects(tokens.getToken(), (e: TokenError) => e.errorClass === 'timeout');
      } finally {
        client.close();
        tokens.close();
      }
    }));

  it('the time the pipeline holds the collector back does not count against pageTimeoutSeconds', () =>
    withEmulator({ vulnerabilities: 400 }, async (emu) => {
      const config = configFor(emu, 'vulnerabilities', { pageTimeoutSeconds: 1 });
      // 8 slices of 50 (the page arrives in several chunks), each acknowledged 250 ms later: 2 s of our own backpressure on one page
      const sink = new (class extends MemorySink {
        override async deliver(batch: Parameters<MemorySink['deliver']>[0]) {
          await new Promise((r) => setTimeout(r, 250));
          return super.deliver(batch);
        }
      })();
      const run = await pollOnce(config, new VulnerabilitiesCollector(50, 1), { now: START, sink });
      assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
      assert.equal(run.sink.received.length, 400);
      assert.equal(emu.served.requests.filter((r) => r.api === 'vulnerabilities').length, 1, 'one call: the page was not given up');
    }));
});

describe('silent loss: the token request', function () {
  this.timeout(60_000);
  // every call to the authority (MSAL reads its metadata before the first token request)
  const entraCalls = (emu: Emulator) => emu.served.requests.filter((r) => r.api === 'token').length;

  for (const fault of ['503', '500:count=2', '429', 'reset', 'trickle:bytes=10:ms=400']) {
    it(`${fault}: retried with backoff, and the poll delivers`, () =>
      withEmulator({ faults: `${fault}:on=token` }, async (emu) => {
        const config = configFor(emu, 'alerts', { requestTimeoutSeconds: 1 });
        const run = await poll(config, new AlertsCollector());
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.equal(run.sink.received.length, inWindow(emu));
        assert.ok(run.lines.some((l) => l.includes('token request failed; retrying')));
      }));
  }

  for (const [where, after] of [['metadata', 0], ['token', 1]] as const) {
    it(`an Entra refusal (401 AADSTS7000215) of the ${where} call is not asked again: the poll fails with class auth`, () =>
      withEmulator({ faults: `token-reject:on=token:after=${after}:count=0` }, async (emu) => {
        const config = configFor(emu, 'alerts');
        const run = await poll(config, new AlertsCollector());
        assert.equal(run.failed, 1);
        assert.equal(run.states[0]!.lastError!.class, 'auth');
        assert.match(run.states[0]!.lastError!.message, /AADSTS7000215|Invalid client secret/);
        assert.equal(entraCalls(emu), after + 1);
        if (where === 'token') assert.equal(emu.served.requests.at(-1)?.method, 'POST');
      }));
  }

  it('an outage that outlasts the retries fails the poll with the transient class, after 6 attempts', () =>
    withEmulator({ faults: 'reset:on=token:count=0' }, async (emu) => {
      const config = configFor(emu, 'alerts');
      const run = await poll(config, new AlertsCollector());
      assert.equal(run.failed, 1);
      assert.equal(run.states[0]!.lastError!.class, 'network');
      assert.equal(entraCalls(emu), 6);
    }));
});

describe('silent loss: the sidecar when the isolate answer is lost', function () {
  this.timeout(60_000);
  const token = 'soar-token-0123456789abcdef';

  async function withSidecar(emu: Emulator, fn: (base: string, stateDir: string) => Promise<void>) {
    const stateDir = mkdtempSync(join(tmpdir(), 'df-silent-loss-respond-'));
    const text = stringify({
      stateDir,
      connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:S}', functions: ['collect', 'respond'], requestTimeoutSeconds: 10 }],
      respond: { listen: '127.0.0.1:0', tokens: [{ name: 'soar', token, connectors: ['*'] }] },
    });
    const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { S: emu.clientSecret });
    if (!config) throw new Error(`config invalid: ${JSON.stringify(problems)}`);
    const server = new RespondServer({ config, sink: new MemorySink(), logger: createLogger('error', new PassThrough().resume()) });
    const { url } = await server.listen('127.0.0.1:0');
    try {
      await fn(url, stateDir);
    } finally {
      await server.close();
    }
  }

  const lastAudit = (stateDir: string) => JSON.parse(readFileSync(join(stateDir, 'audit.log'), 'utf8').trim().split('\n').at(-1)!).microsoft_defender;

  it('an isolate whose answer is cut short: the action is looked up and reported accepted, not failed', () =>
    withEmulator({ machines: 3, faults: 'truncate:bytes=40:on=actions' }, async (emu) =>
      withSidecar(emu, async (base, stateDir) => {
        const machineId = emu.machineIds()[0]!;
        const r = await call(base, 'POST', '/v1/actions/contain', { token, body: { connector: 'emu', machineId, comment: 'answer cut' } });
        assert.equal(emu.faultsFired().truncate, 1);
        assert.equal(r.status, 202, JSON.stringify(r.json));
        assert.equal((r.json as any).action.type, 'Isolate');
        assert.equal(lastAudit(stateDir).outcome, 'accepted');
        // asked again: the same action, not a second one
        const again = await call(base, 'POST', '/v1/actions/contain', { token, body: { connector: 'emu', machineId, comment: 'again' } });
        assert.equal((again.json as any).action.id, (r.json as any).action.id);
        assert.equal((again.json as any).created, false);
      })));

  it('an isolate answered with garbage that created nothing is still reported as a failure', () =>
    withEmulator({ machines: 3, faults: 'malformed:on=actions' }, async (emu) =>
      withSidecar(emu, async (base, stateDir) => {
        const machineId = emu.machineIds()[0]!;
        const r = await call(base, 'POST', '/v1/actions/contain', { token, body: { connector: 'emu', machineId, comment: 'garbage' } });
        assert.equal(r.status, 502, JSON.stringify(r.json));
        assert.equal(lastAudit(stateDir).outcome, 'error');
        assert.equal(emu.isIsolated(machineId), false);
      })));
});

describe('silent loss: a closed stdout pipe', function () {
  this.timeout(60_000);

  it('is the pipeline failing (class pipeline), not a bad Defender page asked for again', () =>
    withEmulator({}, async (emu) => {
      const config = configFor(emu, 'alerts');
      const closed = new Writable({
        write(_chunk, _enc, cb) {
          cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        },
      });
      closed.on('error', () => undefined);
      const run = await pollOnce(config, new AlertsCollector(), { now: START, sink: new StdoutSink(closed) });
      assert.equal(run.failed, 1);
      assert.equal(run.states[0]!.lastError!.class, 'pipeline');
      assert.match(run.states[0]!.lastError!.message, /stdout is closed \(EPIPE\)/);
      assert.equal(emu.served.requests.filter((r) => r.api === 'alerts').length, 1, 'the page was not asked for again');
      assert.equal(existsSync(cursorFile(config, 'alerts')), false);
    }));
});

describe('silent loss: a saved export link after apiEndpoint changed', function () {
  this.timeout(60_000);

  it('the export starts over on the configured host instead of failing every interval', () =>
    withEmulator({ vulnerabilities: 20, faults: 'novalue:on=vulnerabilities:after=2:count=0' }, async (old) => {
      const before = configFor(old, 'vulnerabilities', { vulnerabilityPageSize: 5 });
      assert.equal((await poll(before, new VulnerabilitiesCollector())).failed, 1);
      assert.ok(cursorOf(before, 'vulnerabilities').progress?.nextLink.startsWith(old.connectorConfig().apiEndpoint as string));
      await withEmulator({ vulnerabilities: 20 }, async (moved) => {
        const after = { ...before, connectors: [{ ...configFor(moved, 'vulnerabilities', { vulnerabilityPageSize: 5 }).connectors[0]! }] };
        const run = await poll(after, new VulnerabilitiesCollector());
        assert.equal(run.failed, 0, run.states[0]?.lastError?.message);
        assert.ok(run.lines.some((l) => /saved full export page link is on https:\/\/127\.0\.0\.1:\d+, not the configured apiEndpoint/.test(l)));
        assert.equal(new Set(run.sink.records().map((r) => String(r.id))).size, 20, 'the whole export, from the new host');
        assert.ok(cursorOf(after, 'vulnerabilities').baselineAt);
      });
    }));
});
