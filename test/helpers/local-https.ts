import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

let cached: Promise<{ key: string; cert: string; caFile: string }> | undefined;

/** One self-signed certificate for 127.0.0.1 per test run, with its PEM written for caFile. */
export function testCertificate(): Promise<{ key: string; cert: string; caFile: string }> {
  cached ??= (async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      curve: 'P-256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }],
    } as Parameters<typeof generate>[1]);
    const caFile = join(mkdtempSync(join(tmpdir(), 'df-cert-')), 'ca.pem');
    writeFileSync(caFile, pems.cert);
    return { key: pems.private, cert: pems.cert, caFile };
  })();
  return cached;
}

/** A real HTTPS server on 127.0.0.1 (ephemeral port) for transport-level behaviour nock cannot fake. */
export async function localHttps(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ origin: string; caFile: string; close(): Promise<void> }> {
  const { key, cert, caFile } = await testCertificate();
  const server = https.createServer({ key, cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    caFile,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
