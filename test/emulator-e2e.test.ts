import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Collector } from '../plugin/collect/collector.js';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { TokenProvider } from '../plugin/defender/auth.js';
import { TokenError } from '../plugin/defender/errors.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import { captureLogger } from './helpers/collect.js';
import { MemorySink } from './helpers/memory-sink.js';
import { until } from './helpers/until.js';

/** A config for the emulator, through the real loader. */
function emulatorConfig(emu: Emulator, connector: Record<string, unknown> = {}): Config {
  const stateDir = mkdtempSync(join(tmpdir(), 'df-emu-'));
  const text = stringify({ stateDir, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', ...connector }] });
  const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { EMU_SECRET: String(connector.clientSecret ?? emu.clientSecret) });
  if (!config) throw new Error(JSON.stringify(problems));
  return config;
}

describe('against the emulator (real HTTPS, real MSAL)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ seed: 7, alerts: 300, machines: 40, vulnerabilities: 2500, rateScale: 0.01 });
  });
  after(async () => {
    await emu.close();
  });

  it('acquires a token, and names AADSTS7000215 for a wrong secret and AADSTS90002 for an unknown tenant', async () => {
    const good = new TokenProvider(emulatorConfig(emu).connectors[0]!);
    const token = await good.getToken();
    assert.equal(token.split('.').length, 3);
    assert.equal(await good.getToken(), token, 'cached');

    const wrongSecret = new TokenProvider(emulatorConfig(emu, { clientSecret: 'not-the-secret-0000' }).connectors[0]!);
    await assert.rejects(wrongSecret.getToken(), (e: unknown) => e instanceof TokenError && e.aadsts === 'AADSTS7000215' && !e.message.includes('not-the-secret-0000'));

    const wrongTenant = new TokenProvider(emulatorConfig(emu, { directoryId: '00000000-1111-2222-3333-444444444444' }).connectors[0]!);
    await assert.rejects(wrongTenant.getToken(), (e: unknown) => e instanceof TokenError && e.aadsts === 'AADSTS90002');
  });

  it('collects every alert version, machine and vulnerability record the emulator served, mapped by the real transforms', async () => {
    const config = emulatorConfig(emu, { lookbackHours: 24 });
    const loaded = loadMapper();
    assert.ok(loaded.ok);
    const sink = new MemorySink();
    const { logger } = captureLogger();
    const collector = new Collector({ config, sink, mapper: () => loaded.mapper, logger });
    assert.equal(await collector.runOnce(), 0);

    const received = (tag: string) => sink.received.filter((r) => r.tag === tag).map((r) => r.record.microsoft_defender as Record<string, unknown>);
    const alertKeys = new Set(received('microsoft_defender.syslog.alerts').map((a) => `${String(a.id)}|${String(a.lastUpdateTime)}`));
    const served = emu.served.alertVersionKeys();
    assert.ok(served.length >= 300);
    assert.deepEqual(served.filter((k) => !alertKeys.has(k)), [], 'every served alert version arrived');
    assert.equal(alertKeys.size, received('microsoft_defender.syslog.alerts').length, 'no duplicates on a clean run');
    assert.equal(received('microsoft_defender.assets.host').length, 40);
    assert.equal(received('microsoft_defender.syslog.host').length, 40);
    assert.equal(received('microsoft_defender.syslog.vulnerabilities').length, 2500);
    assert.ok(sink.received.every((r) => r.record.transform_error === undefined), 'every record passed its index schema');

    // Later runs resume from the cursors: only what changed since arrives (the current version of each
    // alert changed). The updates share one stamp, the emulator clock's millisecond; a window ends
    // (exclusively) where its poll started, so a poll started in that same millisecond leaves them all
    // to the next one: poll until they are in.
    const updated = [...new Map(emu.updateAlerts(5).map((v) => [v.id, `${v.id}|${v.lastUpdateTime}`])).values()];
    const before = sink.received.length;
    const newAlerts = () => sink.received.slice(before).filter((r) => r.tag === 'microsoft_defender.syslog.alerts').map((r) => r.record.microsoft_defender as Record<string, unknown>);
    await until('the updated alert versions arrive', async () => {
      assert.equal(await collector.runOnce(), 0);
      return newAlerts().length >= updated.length;
    }, 20_000);
    assert.deepEqual(newAlerts().map((a) => `${String(a.id)}|${String(a.lastUpdateTime)}`).sort(), [...updated].sort(), 'the updated versions, each once, and nothing else');
  });
});
