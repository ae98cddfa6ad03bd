// The emulator's self-signed certificate (selfsigned 5). Kept in a state folder so a restarted
// emulator keeps the same CA file, and the printed caFile / NODE_EXTRA_CA_CERTS stay valid.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** PEM file with the certificate: the CA a client must trust */
  caFile: string;
}

const CERT = 'emulator-cert.pem';
const KEY = 'emulator-key.pem';

function stillUsable(certPem: string): boolean {
  try {
    const x = new X509Certificate(certPem);
    const left = Date.parse(x.validTo) - Date.now();
    return left > 7 * 24 * 3600_000 && (x.subjectAltName ?? '').includes('IP Address:127.0.0.1');
  } catch {
    return false;
  }
}

export async function loadOrCreateCertificate(dir: string): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, CERT);
  const keyFile = join(dir, KEY);
  if (existsSync(caFile) && existsSync(keyFile)) {
    const cert = readFileSync(caFile, 'utf8');
    if (stillUsable(cert)) return { cert, key: readFileSync(keyFile, 'utf8'), caFile };
  }
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: 'defender-fluent emulator' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600_000),
    extensions: [
      // Self-signed and used directly as the trust anchor, so it is its own CA.
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
    ],
  });
  // Written next to the target and renamed into place, so a reader never sees half a file.
  const tmpKey = `${keyFile}.${process.pid}.tmp`;
  const tmpCert = `${caFile}.${process.pid}.tmp`;
  writeFileSync(tmpKey, pems.private, { mode: 0o600 });
  writeFileSync(tmpCert, pems.cert, { mode: 0o644 });
  renameSync(tmpKey, keyFile);
  renameSync(tmpCert, caFile);
  return { cert: pems.cert, key: pems.private, caFile };
}
