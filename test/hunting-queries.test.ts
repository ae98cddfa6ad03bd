import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadHuntingQueries, mappableFields, parseHuntingQuery } from '../plugin/collect/hunting-queries.js';
import { validateCommand } from '../plugin/config/validate-command.js';
import { huntingDir } from '../plugin/paths.js';
import { formatProblem } from '../plugin/schema-check.js';
import { previewCommand } from '../plugin/transform/preview.js';

const good = ['// name: logons', '// interval: 1h', '// timeColumn: Timestamp', '// output:', '//   host_id: DeviceId', 'DeviceLogonEvents', '| project Timestamp, DeviceId'];
const problemsOf = (lines: string[]) => parseHuntingQuery('q.kql', lines.join('\n')).problems.map(formatProblem);

describe('hunting query files', () => {
  it('the packaged queries are valid', () => {
    const { queries, problems } = loadHuntingQueries(huntingDir);
    assert.deepEqual(problems, []);
    assert.ok(queries.length >= 1);
  });

  it('reads the header: durations, defaults, mapping, and the KQL below it', () => {
    const { query, problems } = parseHuntingQuery('q.kql', good.join('\n'));
    assert.deepEqual(problems, []);
    assert.equal(query!.intervalMs, 3600_000);
    assert.equal(query!.lookbackMs, 3600_000, 'default lookback 1h');
    assert.equal(query!.overlapMs, 5 * 60_000, 'default overlap 5m');
    assert.deepEqual(query!.output, { host_id: 'DeviceId' });
    assert.equal(query!.kql, 'DeviceLogonEvents\n| project Timestamp, DeviceId');
  });

  it('names the file, the line and the key of every header problem', () => {
    assert.deepEqual(problemsOf(['DeviceLogonEvents']), ['q.kql:1: /: expected a header of `//` comment lines (YAML: name, interval, timeColumn, …) at the top of the file']);
    assert.deepEqual(problemsOf(['// name: logons', '// interval: 90s', '// timeColumn: Timestamp', 'T']), ['q.kql:2: /interval: must match ^[1-9][0-9]*(m|h|d)$']);
    assert.deepEqual(problemsOf(['// name: logons', '// timeColumn: Timestamp', 'T']), ['q.kql:1: /interval: is required']);
    assert.deepEqual(problemsOf(['// name: logons', '// interval: 1h', '// lookback: 31d', '// timeColumn: Timestamp', 'T']), ['q.kql:3: /lookback: at most 30d: advanced hunting keeps 30 days of data']);
    assert.deepEqual(problemsOf([...good.slice(0, 4), '//   hostid: DeviceId', 'T']), [`q.kql:5: /output/hostid: "hostid" is not a field the hunting transform maps; expected one of ${mappableFields.join(', ')}`]);
    assert.deepEqual(problemsOf(['// name: logons', '// interval: 1h', '// timeColumn: Timestamp', '// colour: blue', 'T']), ['q.kql:4: /colour: unknown key "colour"']);
    assert.match(problemsOf(['// name: [unclosed', 'T'])[0]!, /^q\.kql:1: \/: header is not valid YAML/);
    assert.deepEqual(problemsOf(good.slice(0, 5)), ['q.kql:6: /: no query below the header']);
  });

  it('two files with one name are both refused; the others load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-hq-'));
    writeFileSync(join(dir, 'a.kql'), good.join('\n'));
    writeFileSync(join(dir, 'b.kql'), good.join('\n'));
    writeFileSync(join(dir, 'c.kql'), good.join('\n').replace('name: logons', 'name: other'));
    const { queries, problems } = loadHuntingQueries(dir);
    assert.deepEqual(
      queries.map((q) => q.name),
      ['other'],
    );
    assert.deepEqual(
      problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}`),
      ['a.kql:1', 'b.kql:1'],
    );
  });

  it('validate reports the hunting queries of a connector that runs them, with file and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-hq-'));
    writeFileSync(join(dir, 'bad.kql'), good.join('\n').replace('interval: 1h', 'interval: hourly'));
    const cfg = join(dir, 'defender.yaml');
    writeFileSync(
      cfg,
      [
        'connectors:',
        '  - name: acme',
        '    tenant: acme',
        '    clientId: 00000000-0000-0000-0000-000000000000',
        '    directoryId: 00000000-0000-0000-0000-000000000000',
        '    clientSecret: ${env:HQ_SECRET}',
        '    contentTypes: [hunting]',
        `    huntingDir: ${dir}`,
      ].join('\n'),
    );
    process.env.HQ_SECRET = 'x-secret-value';
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    assert.equal(await validateCommand({ config: cfg }, new PassThrough(), err), 2);
    assert.match(text, new RegExp(`${join(dir, 'bad.kql').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: /interval: must match`));
    delete process.env.HQ_SECRET;
  });

  it('preview maps a saved runHuntingQuery answer with the query header; without --query it says what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'df-hq-'));
    const saved = join(dir, 'saved.json');
    const row = { Timestamp: '2024-03-26T09:39:50.7688641Z', DeviceId: 'f46b9bb259ed4a7fb9981b73510e3cc7aa81ec1f', DeviceName: 'Desktop-39G9TGL', AccountName: 'analyst', FileName: 'powershell.exe', ProcessCommandLine: 'powershell.exe -EncodedCommand SQBFAFgA', InitiatingProcessFileName: 'cmd.exe', ReportId: 7 };
    writeFileSync(saved, JSON.stringify({ schema: Object.keys(row).map((name) => ({ name, type: 'String' })), results: [row] }));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    assert.equal(await previewCommand({ content: 'hunting', query: join(huntingDir, 'encoded-powershell.kql'), files: [saved], stdout: out, stderr: new PassThrough() }), 0);
    const record = JSON.parse(text) as Record<string, unknown>;
    assert.equal(record.msg_class, 'microsoft_defender_hunting');
    assert.equal(record.timestamp, Date.parse(row.Timestamp));
    assert.equal(record.host_id, row.DeviceId);
    assert.equal(record.srcip_host, row.DeviceName.toLowerCase());
    const err = new PassThrough();
    let errText = '';
    err.on('data', (d: Buffer) => (errText += d.toString()));
    assert.equal(await previewCommand({ content: 'hunting', files: [saved], stdout: new PassThrough(), stderr: err }), 2);
    assert.match(errText, /needs --query/);
  });
});
