import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { packageRoot } from '../plugin/paths.js';
import { RawForwardServer } from './forward-helpers.js';

/**
 * SIGTERM with batches in flight: the collector stops polling, waits up to shutdownTimeoutSeconds
 * for acknowledgements, commits what was acknowledged, and exits 0; what never got an ack is not
 * committed (its cursor stays where it was).
 */
describe('SIGTERM with batches in flight (child process, forward output)', function () {
  this.timeout(60_000);
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ seed: 21, alerts: 50, machines: 0, vulnerabilities: 1, rateScale: 0.01 });
  });
  after(async () => {
    await emu.close();
  });

  async function runUntilFirstPacket(server: RawForwardServer) {
    const dir = mkdtempSync(join(tmpdir(), 'df-term-'));
    const config = join(dir, 'defender.yaml');
    writeFileSync(
      config,
      stringify({
        stateDir: './state',
        logLevel: 'warn',
        shutdownTimeoutSeconds: 3,
        output: { type: 'forward', host: '127.0.0.1', port: server.port, ackTimeoutSeconds: 60 },
        connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', contentTypes: ['alerts'], lookbackHours: 24 }],
      }),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', join(packageRoot, 'plugin', 'cli.ts'), 'run', '--config', config], {
      env: { ...process.env, EMU_SECRET: emu.clientSecret },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 300 && server.packets.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(server.packets.length > 0, `the collector sent a batch: ${stderr}`);
    const signalled = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    return { code, waitedMs: Date.now() - signalled, cursorFile: join(dir, 'state', 'cursors', 'emu.alerts.json'), stderr };
  }

  it('an acknowledgement arriving within the shutdown window is committed; exit 0', async () => {
    const server = await new RawForwardServer({ ackDelay: () => 1500 }).start();
    try {
      const r = await runUntilFirstPacket(server);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(r.cursorFile), 'the acknowledged batch was committed');
      // The window may be unfinished (its end is proven by one more page, which the stop cut off):
      // then the cursor names it as partial and its journal lists every alert acknowledged in it.
      const cursor = JSON.parse(readFileSync(r.cursorFile, 'utf8')) as { watermark: string; partial?: { start: string; end: string } };
      if (cursor.partial) {
        const journaled = readFileSync(r.cursorFile.replace(/\.json$/, '.window'), 'utf8').split('\n').filter(Boolean);
        const ids = new Set(journaled.map((k) => k.slice(0, k.lastIndexOf('|'))));
        const missing = server.ids().filter((id) => !ids.has(id));
        assert.ok(server.ids().length > 0 && missing.length === 0, `acknowledged alerts missing from the window journal: ${missing.join(', ')}`);
      } else assert.ok(Date.parse(cursor.watermark) > Date.now() - 120_000);
    } finally {
      await server.stop();
    }
  });

  it('no acknowledgement within shutdownTimeoutSeconds: exit 0 after the deadline, nothing committed', async () => {
    const server = await new RawForwardServer({ ackDelay: () => null }).start();
    try {
      const r = await runUntilFirstPacket(server);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.waitedMs >= 2500, `waited ${r.waitedMs} ms for acknowledgements (shutdownTimeoutSeconds: 3)`);
      assert.ok(!existsSync(r.cursorFile), 'the unacknowledged batch moved no cursor');
    } finally {
      await server.stop();
    }
  });
});
