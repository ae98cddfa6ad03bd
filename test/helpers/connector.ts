import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkConfigText, type Config, type Connector } from '../../plugin/config/load.js';
import { clientId, clientSecret, tenantId } from './entra.js';

/** A Config built through the real loader (defaults, normalisation), with a fresh stateDir. */
export function testConfig(connector: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Config {
  const stateDir = mkdtempSync(join(tmpdir(), 'df-test-'));
  const text = stringify({
    stateDir,
    connectors: [
      {
        name: 'acme-mde',
        tenant: 'acme',
        apiEndpoint: 'api-us.securitycenter.microsoft.com',
        clientId,
        directoryId: tenantId,
        clientSecret: '${env:TEST_SECRET}',
        ...connector,
      },
    ],
    ...top,
  });
  const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { TEST_SECRET: clientSecret });
  if (!config) throw new Error(`test config invalid: ${JSON.stringify(problems)}`);
  return config;
}

export function testConnector(connector: Record<string, unknown> = {}): Connector {
  return testConfig(connector).connectors[0]!;
}

export const apiOrigin = 'https://api-us.securitycenter.microsoft.com';
