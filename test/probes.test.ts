import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkConfigText } from '../plugin/config/load.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import { polls } from '../plugin/status/metrics.js';
import { readiness, startProbeServer, type Readiness } from '../plugin/status/probes.js';
import type { StatusFile } from '../plugin/status/store.js';
import { freePort } from './helpers/free-port.js';

function get(url: string, method = 'GET'): Promise<{ status: number; type?: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const minute = 60_000;
const t0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const content = (over: Record<string, unknown>) => ({ consecutiveFailures: 0, records: { collected: 0, filtered: 0, failed: 0 }, ...over });

describe('run: health listener (/healthz, /readyz, /metrics)', function () {
  this.timeout(60_000);

  describe('readiness', () => {
    const a = { name: 'a', contentTypes: ['alerts' as const], intervalMinutes: 5 };
    const b = { name: 'b', contentTypes: ['alerts' as const, 'host' as const], intervalMinutes: 10 };
    const status = (connectors: StatusFile['connectors']): StatusFile => ({ version: 1, updatedAt: iso(t0), connectors });

    it('a connector not yet polled is ready within its first interval, not after', () => {
      assert.equal(readiness([a], undefined, t0, t0 + 4 * minute).ready, true);
      const late = readiness([a], undefined, t0, t0 + 5 * minute);
      assert.equal(late.ready, false);
      assert.deepEqual(late.connectors[0], { connector: 'a', state: 'red', ready: false, reasons: ['alerts: no poll recorded yet'] });
    });

    it('every connector must be green once past its first interval; each keeps its own interval', () => {
      const s = status({
        a: { contentTypes: { alerts: content({ lastSuccess: iso(t0 + 6 * minute), lastAttempt: iso(t0 + 6 * minute) }) } },
        b: { contentTypes: { alerts: content({ lastSuccess: iso(t0 + minute) }), host: content({ lastError: { class: 'auth', message: 'AADSTS7000215', at: iso(t0 + 2 * minute) } }) } },
      });
      const at7 = readiness([a, b], s, t0, t0 + 7 * minute);
      assert.equal(at7.ready, true, 'b is red but within its 10-minute first interval');
      const at11 = readiness([a, b], s, t0, t0 + 11 * minute);
      assert.equal(at11.ready, false);
      assert.deepEqual(
        at11.connectors.map((c) => [c.connector, c.ready]),
        [
          ['a', true],
          ['b', false],
        ],
      );
      assert.match(at11.connectors[1]!.reasons.join(), /host: last poll failed .*\(auth\): AADSTS7000215/);
    });
  });

  it('health.listen is checked like respond.listen: host:port, port at most 65535', () => {
    const base = { connectors: [{ name: 'a', tenant: 't', clientId: '00000000-0000-0000-0000-000000000000', directoryId: '00000000-0000-0000-0000-000000000000', clientSecret: 'x'.repeat(20) }] };
    const check = (health: unknown) => checkConfigText(join(tmpdir(), 'defender.yaml'), stringify({ ...base, health }), {}).problems.map((p) => `${p.pointer}: ${p.message}`);
    assert.deepEqual(check({ listen: '127.0.0.1:9464' }), []);
    assert.deepEqual(check({ listen: '127.0.0.1:99999' }), ['/health/listen: port 99999 is out of range (1-65535, or 0 for any free port)']);
    assert.match(check({ listen: '9464' }).join(), /^\/health\/listen: /);
    assert.deepEqual(check({}), ['/health/listen: is required']);
  });

  describe('the listener', () => {
    let ready: Readiness = { ready: false, connectors: [{ connector: 'a', state: 'red', ready: false, reasons: ['alerts: no poll recorded yet'] }] };
    let server: { url: string; close(): Promise<void> };
    before(async () => {
      server = await startProbeServer('127.0.0.1:0', { ready: () => ready });
    });
    after(() => server.close());

    it('/healthz answers while the process runs; /readyz says 503 with the reasons, then 200', async () => {
      const live = await get(`${server.url}/healthz`);
      assert.equal(live.status, 200);
      assert.equal((JSON.parse(live.text) as { status: string }).status, 'ok');
      const notYet = await get(`${server.url}/readyz`);
      assert.equal(notYet.status, 503);
      assert.deepEqual(JSON.parse(notYet.text), ready);
      ready = { ready: true, connectors: [{ connector: 'a', state: 'green', ready: true, reasons: [] }] };
      assert.equal((await get(`${server.url}/readyz`)).status, 200);
    });

    it('/metrics serves the process’s Prometheus registry', async () => {
      polls.inc({ connector: 'probe-test', content: 'alerts', outcome: 'success' });
      const m = await get(`${server.url}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.type ?? '', /^text\/plain/);
      assert.match(m.text, /defender_fluent_polls_total\{connector="probe-test",content="alerts",outcome="success"\} \d+/);
    });

    it('anything else: 404; a method other than GET: 405', async () => {
      assert.equal((await get(`${server.url}/v1/status`)).status, 404);
      assert.equal((await get(`${server.url}/healthz`, 'POST')).status, 405);
    });
  });

  describe('defender-fluent run with health.listen (child process)', () => {
    let emu: Emulator;
    before(async () => {
      emu = await startEmulator({ seed: 4, alerts: 20, machines: 3, vulnerabilities: 20, rateScale: 0.01 });
    });
    after(() => emu.close());

    it('serves the probes while it runs: ready once every connector is green, its poll counters on /metrics; stops on SIGTERM', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'df-probes-'));
      const port = await freePort();
      const configFile = join(dir, 'defender.yaml');
      writeFileSync(configFile, stringify({ stateDir: './state', logLevel: 'warn', health: { listen: `127.0.0.1:${port}` }, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', lookbackHours: 24 }] }));
      const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), 'run', '--config', configFile], { cwd: packageRoot, env: { ...process.env, EMU_SECRET: emu.clientSecret }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', r));
      try {
        let ready: { status: number; text: string } | undefined;
        for (let i = 0; i < 200 && ready?.status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 100));
          ready = await get(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
          if (ready?.status === 200) {
            // ready within the first interval is not enough here: wait for green
            const body = JSON.parse(ready.text) as Readiness;
            if (body.connectors[0]!.state !== 'green') ready = undefined;
          }
        }
        assert.equal(ready?.status, 200, stderr);
        assert.equal((await get(`http://127.0.0.1:${port}/healthz`)).status, 200);
        const m = await get(`http://127.0.0.1:${port}/metrics`);
        assert.match(m.text, /defender_fluent_polls_total\{connector="emu",content="alerts",outcome="success"\} [1-9]/);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, stderr);
      await assert.rejects(get(`http://127.0.0.1:${port}/healthz`), /ECONNREFUSED/);
    });

    it('an address it cannot bind: exit 2 naming health.listen, nothing polled', async () => {
      const taken = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => taken.once('listening', r));
      const port = (taken.address() as { port: number }).port;
      const dir = mkdtempSync(join(tmpdir(), 'df-probes-'));
      const configFile = join(dir, 'defender.yaml');
      writeFileSync(configFile, stringify({ stateDir: './state', health: { listen: `127.0.0.1:${port}` }, connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}' }] }));
      const polled = emu.served.pages.alerts;
      const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), 'run', '--once', '--config', configFile], { cwd: packageRoot, env: { ...process.env, EMU_SECRET: emu.clientSecret }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((r) => child.on('exit', r));
      taken.close();
      assert.equal(code, 2, stderr);
      assert.match(stderr, new RegExp(`error: health\\.listen 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
      assert.equal(emu.served.pages.alerts, polled);
    });
  });
});
