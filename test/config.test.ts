import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConfigText, ConfigError, loadConfig } from '../plugin/config/load.js';
import { documentedDefenderHosts } from '../plugin/config/endpoints.js';
import { redact } from '../plugin/log.js';
import { testCertificate } from './helpers/local-https.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'config');
// Inline texts are checked as if they were this file, so relative paths resolve into the fixtures.
const file = join(fixtures, 'inline', 'defender.yaml');
const env = { ACME_SECRET: 'env-secret-value-17' };

/** One valid connector (lines 2–6), `extra` is appended to it (line 7 onwards), `top` goes before. */
function cfg(extra = '', top = ''): string {
  return `${top}connectors:
  - name: acme-mde
    tenant: acme
    clientId: 00000000-0000-0000-0000-000000000000
    directoryId: 11111111-1111-1111-1111-111111111111
    clientSecret: \${env:ACME_SECRET}
${extra}`;
}

type Expected = { pointer: string; line: number | undefined; message: string };

function problemsOf(text: string, e: NodeJS.ProcessEnv = env): Expected[] {
  const r = checkConfigText(file, text, e);
  if (r.problems.length) assert.equal(r.config, undefined, 'a config with problems must not be returned');
  return r.problems.map((p) => ({ pointer: p.pointer, line: p.line, message: p.message }));
}

const documented =
  'expected a documented Defender API host (e.g. api.security.microsoft.com, api-us.securitycenter.microsoft.com, api-gov.securitycenter.microsoft.us)';
const nameChars = 'must not contain "/", "\\" or ":" (the name is part of file names and of --reset-cursor NAME:CONTENT)';
const second = `  - name: other
    tenant: other
    clientId: 00000000-0000-0000-0000-000000000000
    directoryId: 11111111-1111-1111-1111-111111111111
    clientSecret: \${env:ACME_SECRET}
`;
const filter = (conditions: string) => `    logFilters:\n      - name: f\n        conditions:\n${conditions}`;

const bad: { name: string; text: string; env?: NodeJS.ProcessEnv; expect: Expected[] }[] = [
  {
    name: 'YAML syntax error (bad indentation)',
    text: 'connectors:\n  - name: acme-mde\n   tenant: acme\n',
    expect: [{ pointer: '', line: 3, message: 'YAML: Sequence item without - indicator' }],
  },
  {
    name: 'YAML syntax error (unterminated quote)',
    text: 'stateDir: "./state\nconnectors: []\n',
    expect: [{ pointer: '', line: 3, message: 'YAML: Missing closing "quote' }] // the parser reports the end of the unterminated string,
  },
  {
    name: 'duplicate YAML key (named)',
    text: cfg('', 'stateDir: ./a\nstateDir: ./b\n'),
    expect: [{ pointer: '', line: 2, message: 'YAML: duplicate key "stateDir" (map keys must be unique)' }],
  },
  { name: 'missing connectors', text: 'stateDir: ./state\n', expect: [{ pointer: '/connectors', line: 1, message: 'is required' }] },
  { name: 'empty connectors', text: 'connectors: []\n', expect: [{ pointer: '/connectors', line: 1, message: 'must NOT have fewer than 1 items' }] },
  { name: 'unknown top-level key', text: cfg('', 'colour: blue\n'), expect: [{ pointer: '/colour', line: 1, message: 'unknown key "colour"' }] },
  { name: 'unknown connector key', text: cfg('    colour: blue\n'), expect: [{ pointer: '/connectors/0/colour', line: 7, message: 'unknown key "colour"' }] },
  {
    name: 'missing name, tenant, clientId, directoryId, clientSecret',
    text: 'connectors:\n  - intervalMinutes: 5\n',
    expect: ['name', 'tenant', 'clientId', 'directoryId', 'clientSecret'].map((k) => ({ pointer: `/connectors/0/${k}`, line: 2, message: 'is required' })),
  },
  {
    name: 'non-GUID clientId',
    text: cfg().replace('clientId: 00000000-0000-0000-0000-000000000000', 'clientId: acme-app'),
    expect: [{ pointer: '/connectors/0/clientId', line: 4, message: 'must be a GUID (8-4-4-4-12 hex digits, e.g. 00000000-0000-0000-0000-000000000000)' }],
  },
  {
    name: 'name with a multibyte character',
    text: cfg().replace('name: acme-mde', 'name: acmé-mde'),
    expect: [{ pointer: '/connectors/0/name', line: 2, message: 'must be printable ASCII without spaces (no multibyte characters)' }],
  },
  { name: 'name with "/"', text: cfg().replace('name: acme-mde', 'name: acme/mde'), expect: [{ pointer: '/connectors/0/name', line: 2, message: nameChars }] },
  { name: 'name with ":"', text: cfg().replace('name: acme-mde', 'name: "acme:mde"'), expect: [{ pointer: '/connectors/0/name', line: 2, message: nameChars }] },
  {
    name: 'duplicate connector names (message names the first one)',
    text: cfg(second + second.replace('name: other', 'name: acme-mde')),
    expect: [{ pointer: '/connectors/2/name', line: 12, message: 'duplicate connector name "acme-mde" (also /connectors/0/name)' }],
  },
  {
    name: 'functions [respond] without collect',
    text: cfg('    functions: [respond]\n'),
    expect: [{ pointer: '/connectors/0/functions', line: 7, message: '"respond" requires "collect" in the same connector' }],
  },
  {
    name: 'unknown function',
    text: cfg('    functions: [collect, isolate]\n'),
    expect: [{ pointer: '/connectors/0/functions/1', line: 7, message: 'must be one of "collect", "respond"' }],
  },
  { name: 'lookbackHours 731', text: cfg('    lookbackHours: 731\n'), expect: [{ pointer: '/connectors/0/lookbackHours', line: 7, message: 'must be <= 730' }] },
  { name: 'intervalMinutes 0', text: cfg('    intervalMinutes: 0\n'), expect: [{ pointer: '/connectors/0/intervalMinutes', line: 7, message: 'must be >= 1' }] },
  {
    name: 'contentTypes with an unknown type',
    text: cfg('    contentTypes: [alerts, incidents]\n'),
    expect: [{ pointer: '/connectors/0/contentTypes/1', line: 7, message: 'must be one of "alerts", "host", "vulnerabilities", "machineActions", "hunting"' }],
  },
  {
    name: 'apiEndpoint not documented',
    text: cfg('    apiEndpoint: defender.example.com\n'),
    expect: [
      {
        pointer: '/connectors/0/apiEndpoint',
        line: 7,
        message: `${documented}; got "defender.example.com" (set allowCustomEndpoint: true only for emulators or proxies)`,
      },
    ],
  },
  {
    name: 'documented apiEndpoint on a non-default port',
    text: cfg('    apiEndpoint: https://api.security.microsoft.com:8443\n'),
    expect: [
      {
        pointer: '/connectors/0/apiEndpoint',
        line: 7,
        message: `${documented}; got "api.security.microsoft.com" (set allowCustomEndpoint: true only for emulators or proxies)`,
      },
    ],
  },
  {
    name: 'apiEndpoint http:// URL',
    text: cfg('    apiEndpoint: http://api.security.microsoft.com\n'),
    expect: [{ pointer: '/connectors/0/apiEndpoint', line: 7, message: 'must use https:// (got http://)' }],
  },
  {
    name: 'apiEndpoint with a path',
    text: cfg('    apiEndpoint: https://api.security.microsoft.com/api/alerts\n'),
    expect: [
      {
        pointer: '/connectors/0/apiEndpoint',
        line: 7,
        message: 'must be a host name or https://host without a path (got "https://api.security.microsoft.com/api/alerts")',
      },
    ],
  },
  {
    name: 'authorityHost unknown',
    text: cfg('    authorityHost: https://login.example.com\n'),
    expect: [
      {
        pointer: '/connectors/0/authorityHost',
        line: 7,
        message: 'expected login.microsoftonline.com or login.microsoftonline.us; got "login.example.com" (set allowCustomEndpoint: true only for emulators or proxies)',
      },
    ],
  },
  {
    name: '${env:X} missing names X',
    text: cfg(),
    env: {},
    expect: [{ pointer: '/connectors/0/clientSecret', line: 6, message: 'environment variable ACME_SECRET is not set (referenced as ${env:ACME_SECRET})' }],
  },
  {
    name: '${env:X} set but empty names X',
    text: cfg(),
    env: { ACME_SECRET: '' },
    expect: [{ pointer: '/connectors/0/clientSecret', line: 6, message: 'environment variable ACME_SECRET is set but empty (referenced as ${env:ACME_SECRET})' }],
  },
  {
    name: '${file:path} of an empty file',
    text: cfg().replace('${env:ACME_SECRET}', '${file:../secrets/empty.txt}'),
    expect: [{ pointer: '/connectors/0/clientSecret', line: 6, message: `secret file ${join(fixtures, 'secrets', 'empty.txt')} is empty` }],
  },
  {
    name: '${file:path} missing names the resolved path',
    text: cfg().replace('${env:ACME_SECRET}', '${file:secrets/nope.txt}'),
    expect: [{ pointer: '/connectors/0/clientSecret', line: 6, message: `cannot read secret file ${join(fixtures, 'inline', 'secrets', 'nope.txt')}: ENOENT` }],
  },
  {
    name: 'caFile missing',
    text: cfg('    caFile: ../nope-ca.pem\n'),
    expect: [{ pointer: '/connectors/0/caFile', line: 7, message: `file not found: ${join(fixtures, 'nope-ca.pem')}` }],
  },
  {
    name: 'output.type unknown',
    text: cfg('', 'output:\n  type: kafka\n'),
    expect: [{ pointer: '/output/type', line: 2, message: 'must be one of "stdout", "forward" (got "kafka")' }],
  },
  {
    name: 'forward username without password',
    text: cfg('', 'output:\n  type: forward\n  username: fluent\n'),
    expect: [{ pointer: '/output/password', line: 2, message: 'is required when username is set' }],
  },
  {
    name: 'logFilters: bad regex',
    text: cfg(filter('          - { field: severity, op: regex, value: "(High" }\n')),
    expect: [
      {
        pointer: '/connectors/0/logFilters/0/conditions/0/value',
        line: 10,
        message: 'must be a valid regular expression (Invalid regular expression: /(High/: Unterminated group)',
      },
    ],
  },
  {
    name: 'logFilters: `in` without a list',
    text: cfg(filter('          - { field: severity, op: in, value: High }\n')),
    expect: [{ pointer: '/connectors/0/logFilters/0/conditions/0/value', line: 10, message: 'for "in" must be a non-empty list' }],
  },
  {
    name: 'logFilters: 11 conditions',
    text: cfg(filter('          - { field: severity, op: eq, value: High }\n'.repeat(11))),
    expect: [{ pointer: '/connectors/0/logFilters/0/conditions', line: 10, message: 'must NOT have more than 10 items' }],
  },
  {
    name: 'respond token naming an unknown connector',
    text: cfg('', 'respond:\n  tokens:\n    - name: soc\n      token: ${env:ACME_SECRET}\n      connectors: [acme-mde, contoso]\n'),
    expect: [{ pointer: '/respond/tokens/0/connectors/1', line: 5, message: 'no connector named "contoso" (known: acme-mde)' }],
  },
  {
    name: 'state: an unknown type names the known ones',
    text: cfg('', 'state: { type: redis }\n'),
    expect: [{ pointer: '/state/type', line: 1, message: 'must be one of "file", "postgres" (got "redis")' }],
  },
  {
    name: 'state: a URL that is not postgres://, a lease too short',
    text: cfg('', 'state: { type: postgres, url: "mysql://u:p@db/x", leaseSeconds: 1 }\n'),
    expect: [
      { pointer: '/state/url', line: 1, message: 'must be a postgres:// (or postgresql://) URL' },
      { pointer: '/state/leaseSeconds', line: 1, message: 'must be >= 5' },
    ],
  },
];

describe('config: bad configs', () => {
  it(`covers at least 20 distinct bad configs (${bad.length})`, () => {
    assert.ok(bad.length >= 20);
    assert.equal(new Set(bad.map((b) => b.text + JSON.stringify(b.env ?? null))).size, bad.length, 'every case has its own text');
  });

  for (const b of bad) {
    it(b.name, () => {
      assert.deepEqual(problemsOf(b.text, b.env), b.expect);
    });
  }

  for (const [endpoint, host, origin] of [
    ['defender.example.com', 'defender.example.com', 'https://defender.example.com'],
    ['127.0.0.1:8443', '127.0.0.1', 'https://127.0.0.1:8443'],
  ]) {
    it(`an undocumented apiEndpoint (${endpoint}) with allowCustomEndpoint: true is a warning, not an error`, () => {
      const r = checkConfigText(file, cfg(`    apiEndpoint: ${endpoint}\n    allowCustomEndpoint: true\n`), env);
      assert.deepEqual(r.problems, []);
      assert.deepEqual(
        r.warnings.map((w) => [w.pointer, w.line, w.message]),
        [['/connectors/0/apiEndpoint', 7, `custom host ${host} in use (allowCustomEndpoint: true); ${documented}`]],
      );
      assert.equal(r.config?.connectors[0]?.apiBaseUrl, origin);
    });
  }

  it('an http:// apiEndpoint stays an error even with allowCustomEndpoint: true', () => {
    assert.deepEqual(problemsOf(cfg('    apiEndpoint: http://127.0.0.1:8080\n    allowCustomEndpoint: true\n')), [
      { pointer: '/connectors/0/apiEndpoint', line: 7, message: 'must use https:// (got http://)' },
    ]);
  });

  it('reports several errors in one file all at once, in file order', () => {
    const path = join(fixtures, 'bad', 'several.yaml');
    const r = checkConfigText(path, readFileSync(path, 'utf8'), {});
    assert.deepEqual(
      r.problems.map((p) => [p.file, p.pointer, p.line]),
      [
        [path, '/colour', 3],
        [path, '/connectors/0/clientId', 7],
        [path, '/connectors/1/apiEndpoint', 12],
        [path, '/connectors/1/clientSecret', 15],
        [path, '/connectors/2/name', 16],
      ],
    );
    assert.equal(r.problems.length, 5);
    assert.match(r.problems[3]!.message, /missing-secret\.txt: ENOENT$/);
    assert.equal(r.problems[4]!.message, 'duplicate connector name "acme-mde" (also /connectors/0/name)');
  });

  it('loadConfig throws ConfigError carrying every problem', () => {
    const path = join(fixtures, 'bad', 'several.yaml');
    assert.throws(
      () => loadConfig(path, {}),
      (e: unknown) => e instanceof ConfigError && e.problems.length === 5 && e.message === `${path}: 5 configuration errors`,
    );
  });

  it('never quotes a resolved secret in a problem or warning', () => {
    const text = cfg('    lookbackHours: 0\n', 'output: { type: forward, password: "${env:ACME_SECRET}" }\n');
    const r = checkConfigText(file, text, env);
    assert.ok(r.problems.length >= 2);
    assert.ok(!JSON.stringify([r.problems, r.warnings]).includes(env.ACME_SECRET));
  });
});

describe('config: good configs', () => {
  it('a minimal config gets every default', () => {
    const path = join(fixtures, 'good', 'minimal.yaml');
    const { config, warnings } = loadConfig(path, {});
    assert.deepEqual(warnings, []);
    assert.equal(config.stateDir, join(fixtures, 'good', 'state'));
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.output, { type: 'stdout', tagPrefix: 'microsoft_defender' });
    assert.equal(config.connectors.length, 1);
    const c = config.connectors[0]!;
    assert.deepEqual(c.functions, ['collect']);
    assert.equal(c.intervalMinutes, 5);
    assert.equal(c.lookbackHours, 3);
    assert.deepEqual(c.contentTypes, ['alerts', 'host', 'vulnerabilities']);
    assert.equal(c.allowCustomEndpoint, false);
    assert.equal(c.apiBaseUrl, 'https://api.security.microsoft.com');
    assert.equal(c.authorityUrl, 'https://login.microsoftonline.com');
    assert.equal(c.hostFullRefreshHours, 24);
    assert.equal(c.vulnerabilityBaselineDays, 7);
    assert.deepEqual(c.logFilters, []);
  });

  it('accepts apiEndpoint as an https:// URL (trailing slash, upper case)', () => {
    const r = checkConfigText(file, cfg('    apiEndpoint: HTTPS://API-US.securitycenter.microsoft.com/\n'), env);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.config?.connectors[0]?.apiBaseUrl, 'https://api-us.securitycenter.microsoft.com');
  });

  it(`accepts every documented Defender host (${documentedDefenderHosts.length}), bare and as a URL`, () => {
    assert.ok(documentedDefenderHosts.length >= 10);
    for (const host of documentedDefenderHosts) {
      for (const form of [host, `https://${host}`]) {
        const r = checkConfigText(file, cfg(`    apiEndpoint: ${form}\n`), env);
        assert.deepEqual(r.problems, [], form);
        assert.deepEqual(r.warnings, [], form);
        assert.equal(r.config?.connectors[0]?.apiBaseUrl, `https://${host}`, form);
      }
    }
  });

  it('accepts the US Government authority host', () => {
    const r = checkConfigText(file, cfg('    authorityHost: login.microsoftonline.us\n    apiEndpoint: api-gov.securitycenter.microsoft.us\n'), env);
    assert.deepEqual(r.problems, []);
    assert.equal(r.config?.connectors[0]?.authorityUrl, 'https://login.microsoftonline.us');
  });

  it('a literal clientSecret warns but passes', () => {
    const r = checkConfigText(file, cfg().replace('${env:ACME_SECRET}', 'literal-secret-in-file'), {});
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.warnings.map((w) => [w.pointer, w.line, w.message]),
      [['/connectors/0/clientSecret', 6, 'literal secret in the config file; prefer ${env:NAME} or ${file:/run/secrets/NAME}']],
    );
    assert.equal(r.config?.connectors[0]?.clientSecret, 'literal-secret-in-file');
    // a literal secret is kept out of logs just like a resolved one
    assert.equal(redact('AADSTS7000215: invalid secret literal-secret-in-file'), 'AADSTS7000215: invalid secret [REDACTED]');
  });

  it('literal forward password and respond token warn, and are redacted', () => {
    const top =
      'output: { type: forward, username: fluent, password: literal-forward-password }\n' +
      'respond:\n  tokens:\n    - { name: soc, token: literal-respond-token-0123, connectors: ["*"] }\n';
    const r = checkConfigText(file, cfg('', top), env);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.warnings.map((w) => [w.pointer, w.line]),
      [
        ['/output/password', 1],
        ['/respond/tokens/0/token', 4],
      ],
    );
    assert.equal(redact('x literal-forward-password y literal-respond-token-0123'), 'x [REDACTED] y [REDACTED]');
  });

  it('state: postgres takes defaults; the URL\'s password is redacted, from ${env:} or literal (which warns)', () => {
    const r = checkConfigText(file, cfg('', 'state: { type: postgres, url: "${env:STATE_URL}" }\n'), { ...env, STATE_URL: 'postgres://df:pg-env-password-7@db:5432/df' });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.config?.state, { type: 'postgres', url: 'postgres://df:pg-env-password-7@db:5432/df', leaseSeconds: 30, poolSize: 4 });
    assert.equal(redact('connect failed: pg-env-password-7'), 'connect failed: [REDACTED]');
    const literal = checkConfigText(file, cfg('', 'state: { type: postgres, url: "postgres://df:pg%40literal-pw-8@db/df" }\n'), env);
    assert.deepEqual(literal.warnings.map((w) => [w.pointer, w.message]), [['/state/url', 'literal password in the config file; prefer ${env:NAME} or ${file:/run/secrets/NAME}']]);
    assert.equal(redact('auth failed for pg@literal-pw-8'), 'auth failed for [REDACTED]');
    assert.deepEqual(checkConfigText(file, cfg(), env).config?.state, { type: 'file' });
  });

  it('${env:X} resolves, and the resolved secret is redacted from logs', () => {
    const secret = 'env-secret-for-redaction-31';
    const r = checkConfigText(file, cfg(), { ACME_SECRET: secret });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.config?.connectors[0]?.clientSecret, secret);
    assert.equal(redact(`token request failed: client_secret=${secret}&x=1`), 'token request failed: client_secret=[REDACTED]&x=1');
  });

  it('${file:path} resolves against the config folder, trailing newline trimmed, and is redacted', () => {
    const path = join(fixtures, 'good', 'minimal.yaml');
    const { config } = loadConfig(path, {});
    assert.equal(config.connectors[0]!.clientSecret, 'file-secret-value-42');
    assert.equal(redact('secret file-secret-value-42 leaked'), 'secret [REDACTED] leaked');
  });

  it('resolves caFile against the config folder, and it must be a PEM certificate', async () => {
    const { caFile } = await testCertificate();
    const r = checkConfigText(file, cfg(`    caFile: ${relative(dirname(file), caFile)}\n`), env);
    assert.deepEqual(r.problems, []);
    assert.equal(r.config?.connectors[0]?.caFile, caFile);
    assert.deepEqual(problemsOf(cfg('    caFile: ../secrets/client-secret.txt\n')), [
      { pointer: '/connectors/0/caFile', line: 7, message: `${join(fixtures, 'secrets', 'client-secret.txt')} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)` },
    ]);
  });
});

describe('config: hostile and broken inputs (issue 15 item 12)', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'df-config-'));

  it('a YAML alias bomb is an error, not a crash', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 8; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const [p] = problemsOf(levels.join('\n') + '\n');
    assert.match(p!.message, /^YAML: Excessive alias count .*too many nodes/);
  });

  it('a stateDir that is a file, holds a lock that is a folder, or lies under /proc is an error naming it', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'afile'), '');
    mkdirSync(join(dir, 'state', 'collector.lock'), { recursive: true });
    const at = (stateDir: string) => problemsOf(cfg('', `stateDir: ${stateDir}\n`)).map((p) => `${p.pointer}: ${p.message}`);
    assert.deepEqual(at(join(dir, 'afile')), [`/stateDir: ${join(dir, 'afile')} is a file, not a folder`]);
    assert.deepEqual(at(join(dir, 'afile', 'sub')), [`/stateDir: ${join(dir, 'afile')} is a file, not a folder`]);
    assert.deepEqual(at(join(dir, 'state')), [`/stateDir: ${join(dir, 'state', 'collector.lock')} is a folder; expected a file (remove it)`]);
    assert.match(at('/proc/self/state')[0]!, /^\/stateDir: \/proc\/self\/state is under \/proc, a kernel pseudo-filesystem/);
    assert.deepEqual(at(join(dir, 'new', 'folder')), [], 'a folder still to be created is fine');
  });

  it('respond: a listen port over 65535 and one token for two entries are errors; 0.0.0.0 without TLS warns', () => {
    const respond = (listen: string, second: string) => `respond:
  listen: ${listen}
  tokens:
    - { name: a, token: '\${env:T1}', connectors: ['*'] }
    - { name: b, token: '\${env:${second}}', connectors: ['*'] }
`;
    const e = { ...env, T1: 'token-one-0123456789', T2: 'token-two-0123456789' };
    const bad = checkConfigText(file, cfg('', respond('127.0.0.1:99999', 'T1')), e);
    assert.deepEqual(
      bad.problems.map((p) => `${p.pointer}: ${p.message}`),
      ['/respond/listen: port 99999 is out of range (1-65535, or 0 for any free port)', '/respond/tokens/1/token: the same token as /respond/tokens/0/token (each entry needs its own token)'],
    );
    assert.doesNotMatch(JSON.stringify(bad.problems), /token-one/, 'the token itself is never printed');
    const open = checkConfigText(file, cfg('', respond('0.0.0.0:8686', 'T2')), e);
    assert.deepEqual(open.problems, []);
    assert.match(open.warnings.map((w) => `${w.pointer}: ${w.message}`).join('\n'), /\/respond\/listen: listens on every interface without TLS/);
  });

  it('${env:} and ${file:} without a name are errors, not a literal secret', () => {
    assert.deepEqual(problemsOf(cfg().replace('${env:ACME_SECRET}', '${env:}')), [
      { pointer: '/connectors/0/clientSecret', line: 6, message: '${env:} names no variable (expected ${env:NAME})' },
    ]);
    assert.match(problemsOf(cfg().replace('${env:ACME_SECRET}', "'x${file:}'"))[0]!.message, /^\$\{file:\} names no file/);
  });

  it('a filter regex that can backtrack exponentially is an error; an ordinary one is fine', () => {
    const filter = (re: string) => `    logFilters:\n      - name: f\n        conditions:\n          - { field: title, op: regex, value: '${re}' }\n`;
    assert.deepEqual(problemsOf(cfg(filter('^(a+)+$'))).map((p) => p.pointer), ['/connectors/0/logFilters/0/conditions/0/value']);
    assert.match(problemsOf(cfg(filter('(x|y+)*z')))[0]?.message ?? '', /exponential time/);
    assert.deepEqual(problemsOf(cfg(filter('^Suspicious (PowerShell|WMI) .*$'))), []);
  });
});
