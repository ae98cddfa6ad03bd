// `defender-fluent emulate` as the CLI runs it: prints URL, CA file and a connector snippet that the
// project's own config loader accepts; stops on abort; rejects bad options with exit code 2.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { emulateCommand, type Emulator } from '../plugin/emulate/index.js';
import { checkConfigText } from '../plugin/config/load.js';
import { call, msalFor, msalToken, trustingAgent } from '../plugin/emulate/testing.js';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { FetchNetworkClient } from '../plugin/defender/auth.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

describe('defender-fluent emulate (command)', () => {
  let stateDir: string;
  before(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'emulate-cli-'));
  });
  after(() => rmSync(stateDir, { recursive: true, force: true }));

  it('prints the URL, CA file and a connector the config loader accepts, serves, and stops on abort', async () => {
    const out = capture();
    const stop = new AbortController();
    let emu: Emulator | undefined;
    const ready = new Promise<Emulator>((resolve) => {
      void emulateCommand({ port: '0', alerts: '12', machines: '3', vulns: '5', seed: '8', updatesPerMinute: '0', faults: '503:count=1:after=1', rateScale: '0.5', stateDir, out: out.stream, signal: stop.signal, onReady: resolve }).then((code) => {
        exitCode = code;
      });
    });
    let exitCode: number | undefined;
    emu = await ready;
    const text = out.text();
    assert.match(text, new RegExp(`listening on https://127\\.0\\.0\\.1:${emu.port}`));
    assert.ok(text.includes(join(stateDir, 'emulator-cert.pem')));
    assert.ok(existsSync(emu.caFile));
    assert.match(text, /faults\s+503:count=1:after=1/);
    assert.ok(text.includes(`export DEFENDER_EMULATOR_SECRET='${emu.clientSecret}'`));
    // the YAML block after "Connector for defender.yaml" is a connectors list
    const yamlBlock = text.split('(under connectors:):\n')[1]!.split('\n\n')[0]!;
    const connectors = parse(yamlBlock) as Array<Record<string, unknown>>;
    assert.equal(connectors[0]!.apiEndpoint, emu.url);
    assert.equal(connectors[0]!.directoryId, emu.tenantId);
    assert.equal(connectors[0]!.clientSecret, '${env:DEFENDER_EMULATOR_SECRET}');
    const configText = `stateDir: ${join(stateDir, 'state')}\nconnectors:\n${yamlBlock}\n`;
    const checked = checkConfigText(join(stateDir, 'defender.yaml'), configText, { DEFENDER_EMULATOR_SECRET: emu.clientSecret });
    assert.deepEqual(checked.problems, []);
    const connector = checked.config!.connectors[0]!;
    assert.equal(connector.apiBaseUrl, emu.url);
    assert.equal(connector.authorityUrl, emu.url);

    // the same values get a token and data, the way the collector's TokenProvider does it
    const agent = trustingAgent(emu);
    const app = new ConfidentialClientApplication({
      auth: { clientId: connector.clientId, clientSecret: connector.clientSecret, authority: `${connector.authorityUrl}/${connector.directoryId}`, knownAuthorities: [new URL(connector.authorityUrl).host] },
      system: { networkClient: new FetchNetworkClient(agent, 30_000) },
    });
    const token = await msalToken(app);
    assert.equal((await call(emu, agent, token, '/api/alerts')).json().value.length, 12);
    assert.equal((await call(emu, agent, token, '/api/alerts')).status, 503, 'the --faults list is armed');

    stop.abort();
    for (let i = 0; i < 100 && exitCode === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(exitCode, 0);
    assert.match(out.text(), /emulator stopped/);
    await assert.rejects(call(emu, agent, token, '/api/alerts'));
  });

  it('--page-cap / --page-cap-next-link: list pages hold at most N items whatever $top says, and link the rest', async () => {
    const stop = new AbortController();
    const emu = await new Promise<Emulator>((resolve) => {
      void emulateCommand({ port: '0', alerts: '12', machines: '3', updatesPerMinute: '0', pageCap: '5', pageCapNextLink: true, stateDir, out: capture().stream, signal: stop.signal, onReady: resolve });
    });
    try {
      const agent = trustingAgent(emu);
      const token = await msalToken(msalFor(emu, agent));
      const page = (await call(emu, agent, token, '/api/alerts?$top=10')).json();
      assert.equal(page.value.length, 5);
      assert.equal(new URL(page['@odata.nextLink']).searchParams.get('$skip'), '5');
    } finally {
      stop.abort();
    }
  });

  it('rejects bad options with exit code 2 and says which option and why', async () => {
    const err = capture();
    const code = await emulateCommand({ port: '70000', alerts: 'many', faults: 'explode', pageCap: '0', err: err.stream, out: capture().stream });
    assert.equal(code, 2);
    assert.match(err.text(), /--port: expected an integer from 0 to 65535, got "70000"/);
    assert.match(err.text(), /--alerts: expected an integer/);
    assert.match(err.text(), /--faults: fault "explode": unknown kind/);
    assert.match(err.text(), /--page-cap: expected an integer from 1 to 10000, got "0"/);
  });
});
