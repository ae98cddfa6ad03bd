import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { DefenderClient } from '../plugin/defender/client.js';
import { startEmulator, type Emulator } from '../plugin/emulate/index.js';
import { checkConfigText } from '../plugin/config/load.js';
import { stringify } from 'yaml';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real HTTP CONNECT proxy on 127.0.0.1 that records the tunnels it opened. */
async function connectProxy(): Promise<{ url: string; tunnels: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('proxy', function () {
  this.timeout(30_000);
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ seed: 11, alerts: 5, machines: 2, vulnerabilities: 5 });
  });
  after(async () => {
    await emu.close();
  });

  it('token and API calls go through the configured proxy (CONNECT tunnel, TLS end to end)', async () => {
    const proxy = await connectProxy();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'df-proxy-'));
      const { config } = checkConfigText(join(dir, 'd.yaml'), stringify({ connectors: [{ ...emu.connectorConfig('p'), clientSecret: '${env:S}', proxy: proxy.url }] }), { S: emu.clientSecret });
      const client = new DefenderClient(config!.connectors[0]!);
      const res = await client.request<{ value: unknown[] }>({ path: '/api/alerts', query: { $top: 2 } });
      assert.equal(res.body.value.length, 2);
      client.close();
      const target = new URL(emu.url).host;
      // the emulator is both the authority and the API: one origin, so one shared agent whose
      // keep-alive tunnel may carry the token call and the API call; the agent has no other route
      assert.ok(proxy.tunnels.length >= 1, `token and API tunnels: ${proxy.tunnels.join(', ')}`);
      assert.ok(proxy.tunnels.every((t) => t === target));
    } finally {
      await proxy.close();
    }
  });
});
