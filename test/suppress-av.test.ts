import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { stringify } from 'yaml';
import type { Config } from '../plugin/config/load.js';
import { registry } from '../plugin/status/metrics.js';
import { StatusStore } from '../plugin/status/store.js';
import { detectionEventIds, isAvDetection, suppressAvCommand, suppressStream, TenantGate } from '../plugin/status/suppress-av.js';
import { clientId, clientSecret, tenantId } from './helpers/entra.js';
import { checkConfigText } from '../plugin/config/load.js';

const channel = 'Microsoft-Windows-Windows Defender/Operational';

/** A config with two collecting tenants (acme, globex), written to a temp folder. */
function setup(): { file: string; config: Config } {
  const dir = mkdtempSync(join(tmpdir(), 'df-suppress-'));
  const conn = (name: string, tenant: string) => ({ name, tenant, apiEndpoint: 'api.security.microsoft.com', clientId, directoryId: tenantId, clientSecret: '${env:TEST_SECRET}' });
  const text = stringify({ stateDir: join(dir, 'state'), logLevel: 'info', connectors: [conn('acme-mde', 'acme'), conn('globex-mde', 'globex')] });
  const file = join(dir, 'defender.yaml');
  writeFileSync(file, text);
  const { config, problems } = checkConfigText(file, text, { TEST_SECRET: clientSecret });
  if (!config) throw new Error(JSON.stringify(problems));
  return { file, config };
}

function markGreen(config: Config, connector: string, now = Date.now()): void {
  const store = new StatusStore(config.stateDir, { now: () => now });
  for (const t of ['alerts', 'host', 'vulnerabilities'] as const) store.recordSuccess(connector, t, { records: 1, filtered: 0, failed: 0 });
  store.save();
}

function markRed(config: Config, connector: string): void {
  const store = new StatusStore(config.stateDir);
  store.recordFailure(connector, 'alerts', new Error('HTTP 401'));
  store.save();
}

// Shapes of the common shippers: Fluentd in_windows_eventlog2 (EventID string), Fluent Bit
// winevtlog (EventID number), Winlogbeat (winlog.*).
const lines = {
  detectionFluentd: JSON.stringify({ tenant_name: 'acme', Channel: channel, EventID: '1116', ProviderName: 'Microsoft-Windows-Windows Defender', Description: 'malware detected' }),
  detectionFluentBit: JSON.stringify({ tenant_name: 'acme', Channel: channel, EventID: 1117, Computer: 'wks-0142' }),
  detectionWinlogbeat: JSON.stringify({ tenant_name: 'acme', winlog: { channel, event_id: 1006 } }),
  scanEvent: JSON.stringify({ tenant_name: 'acme', Channel: channel, EventID: 1001 }),
  otherChannel: JSON.stringify({ tenant_name: 'acme', Channel: 'Security', EventID: 1116 }),
  otherTenant: JSON.stringify({ tenant_name: 'globex', Channel: channel, EventID: 1116 }),
  noTenant: JSON.stringify({ Channel: channel, EventID: 1116 }),
  notJson: 'Windows Defender said {oops',
  spacing: '{ "tenant_name" : "acme" ,  "Channel": "Microsoft-Windows-Windows Defender/Operational", "EventID": 1015 }',
};
const all = Object.values(lines);

async function run(config: Config, input: string[]): Promise<{ out: string[]; dropped: number }> {
  const output = new PassThrough();
  let text = '';
  output.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const counts = await suppressStream(Readable.from([input.join('\n') + '\n']), output, new TenantGate(config));
  return { out: text.split('\n').filter((l) => l !== ''), dropped: counts.dropped };
}

describe('suppress-av (exec_filter)', () => {
  it('recognises the detection event ids of Microsoft\'s list and nothing else', () => {
    assert.deepEqual([...detectionEventIds].sort(), [1006, 1007, 1008, 1015, 1116, 1117, 1118, 1119]);
    for (const id of [1000, 1001, 1002, 1005, 1009, 1013, 1120, 1150, 2000, 5001, 5007]) assert.equal(isAvDetection({ Channel: channel, EventID: id }), false, String(id));
    assert.equal(isAvDetection({ channel: channel.toLowerCase(), event_id: ' 1119 ' }), true);
  });

  it('green tenant: drops its AV detection events and passes every other line byte for byte', async () => {
    const { config } = setup();
    markGreen(config, 'acme-mde');
    const { out, dropped } = await run(config, all);
    assert.equal(dropped, 4);
    assert.deepEqual(out, [lines.scanEvent, lines.otherChannel, lines.otherTenant, lines.noTenant, lines.notJson]);
  });

  it('red tenant: passes everything', async () => {
    const { config } = setup();
    markGreen(config, 'acme-mde');
    markRed(config, 'acme-mde');
    const { out, dropped } = await run(config, all);
    assert.equal(dropped, 0);
    assert.deepEqual(out, all);
  });

  it('stale green (no poll within two intervals) counts as red', async () => {
    const { config } = setup();
    markGreen(config, 'acme-mde', Date.now() - 11 * 60_000);
    assert.equal((await run(config, all)).dropped, 0);
  });

  it('missing status.json (unknown): passes everything', async () => {
    const { config } = setup();
    const { out, dropped } = await run(config, all);
    assert.equal(dropped, 0);
    assert.deepEqual(out, all);
  });

  it('a tenant whose connector does not collect alerts is never suppressed', async () => {
    const { config } = setup();
    const noAlerts: Config = { ...config, connectors: config.connectors.map((c) => ({ ...c, contentTypes: ['host' as const] })) };
    markGreen(config, 'acme-mde');
    assert.equal((await run(noAlerts, all)).dropped, 0);
  });

  it('suppressAvCommand: reads stdin, writes kept lines, logs and exports the counts, exits 0', async () => {
    const { file, config } = setup();
    markGreen(config, 'globex-mde');
    const output = new PassThrough();
    let out = '';
    output.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const log = new PassThrough();
    let logText = '';
    log.on('data', (c: Buffer) => (logText += c.toString('utf8')));
    const before = (await registry.getSingleMetric('defender_fluent_av_events_suppressed_total')!.get()).values.find((v) => v.labels.tenant === 'globex')?.value ?? 0;
    // the command loads the file as the CLI does: ${env:TEST_SECRET} from the environment
    process.env.TEST_SECRET = clientSecret;
    let code: number;
    try {
      code = await suppressAvCommand({ config: file, input: Readable.from([`${lines.otherTenant}\n${lines.detectionFluentd}\n`]), output, logStream: log });
    } finally {
      delete process.env.TEST_SECRET;
    }
    assert.equal(code, 0);
    assert.equal(out, `${lines.detectionFluentd}\n`);
    const end = logText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'suppress-av: end of input')!;
    assert.equal(end.dropped, 1);
    assert.deepEqual(end.droppedByTenant, { globex: 1 });
    const after = (await registry.getSingleMetric('defender_fluent_av_events_suppressed_total')!.get()).values.find((v) => v.labels.tenant === 'globex')!.value;
    assert.equal(after - before, 1);
  });

  it('suppressAvCommand: a broken config exits 2 and passes nothing through silently', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-suppress-bad-'));
    writeFileSync(join(dir, 'defender.yaml'), 'connectors: []\n');
    const log = new PassThrough();
    let logText = '';
    log.on('data', (c: Buffer) => (logText += c.toString('utf8')));
    assert.equal(await suppressAvCommand({ config: join(dir, 'defender.yaml'), input: Readable.from(['x\n']), output: new PassThrough(), logStream: log }), 2);
    assert.match(logText, /connectors/);
  });
});
