// Log filters: compiled per connector into a predicate over output records; all conditions of a
// filter must hold; the name of the first matching filter is returned (the collector drops and counts).
import assert from 'node:assert/strict';
import { checkLogFilterFields, checkLogFilters, compileLogFilters } from '../plugin/config/log-filters.js';
import type { LogFilter } from '../plugin/generated/config.js';
import { checkConfigText } from '../plugin/config/load.js';
import { loadMapper, logFilterFieldProblems, outputFields } from '../plugin/transform/transforms.js';
import { loadTransformDir } from '../plugin/transform/load.js';
import { transformsDir } from '../plugin/paths.js';

const alert = {
  // as the shipped transforms map a Low alert (severity 0–100)
  severity: 35,
  event_score: 30,
  srcip_host: 'wks-0142.corp.fabrikam.test',
  user_list: ['jdoe', 'svc_backup'],
  xdr_event: { tactic: { id: 'TA0002', name: 'Execution' } },
  microsoft_defender: { detectionSource: 'WindowsDefenderAv', category: 'Malware', machineId: 'abc' },
};

function match(conditions: LogFilter['conditions'], record: Record<string, unknown> = alert, content: 'alerts' | 'host' = 'alerts'): string | undefined {
  const pred = compileLogFilters([{ name: 'f', conditions }]);
  assert.ok(pred);
  return pred(content, record);
}

describe('log filters', () => {
  it('no filters compile to no predicate', () => {
    assert.equal(compileLogFilters([]), undefined);
  });

  it('eq / ne, on nested paths and raw API fields', () => {
    assert.equal(match([{ field: 'severity', op: 'eq', value: 35 }]), 'f');
    assert.equal(match([{ field: 'severity', op: 'eq', value: 60 }]), undefined);
    assert.equal(match([{ field: 'xdr_event.tactic.id', op: 'eq', value: 'TA0002' }]), 'f');
    assert.equal(match([{ field: 'microsoft_defender.detectionSource', op: 'ne', value: 'WindowsDefenderAtp' }]), 'f');
    assert.equal(match([{ field: 'microsoft_defender.detectionSource', op: 'ne', value: 'WindowsDefenderAv' }]), undefined);
    assert.equal(match([{ field: 'event_score', op: 'eq', value: '30' }]), 'f', 'a number compares with its text');
  });

  it('in, contains, startsWith, regex, exists', () => {
    assert.equal(match([{ field: 'microsoft_defender.category', op: 'in', value: ['Malware', 'UnwantedSoftware'] }]), 'f');
    assert.equal(match([{ field: 'microsoft_defender.category', op: 'in', value: ['Execution'] }]), undefined);
    assert.equal(match([{ field: 'srcip_host', op: 'contains', value: '.corp.' }]), 'f');
    assert.equal(match([{ field: 'srcip_host', op: 'startsWith', value: 'srv-' }]), undefined);
    assert.equal(match([{ field: 'srcip_host', op: 'regex', value: '^wks-\\d{4}\\.' }]), 'f');
    assert.equal(match([{ field: 'srcip_host', op: 'exists' }]), 'f');
    assert.equal(match([{ field: 'resolved_time', op: 'exists' }]), undefined);
    assert.equal(match([{ field: 'resolved_time', op: 'exists', value: false }]), 'f');
  });

  it('lt / lte / gt / gte compare numbers; a missing or text field never matches', () => {
    const pred = compileLogFilters([{ name: 'low', conditions: [{ field: 'n', op: 'lt', value: 25 }] }, { name: 'high', conditions: [{ field: 'n', op: 'gte', value: 75 }] }]);
    assert.ok(pred);
    assert.equal(pred('alerts', { n: 24 }), 'low');
    assert.equal(pred('alerts', { n: 25 }), undefined);
    assert.equal(pred('alerts', { n: 75 }), 'high');
    assert.equal(pred('alerts', { n: [10, 50] }), 'low', 'any item of a list');
    assert.equal(pred('alerts', { n: '10' }), undefined);
    assert.equal(pred('alerts', {}), undefined);
    const lte = compileLogFilters([{ name: 'x', conditions: [{ field: 'n', op: 'lte', value: 5 }, { field: 'm', op: 'gt', value: 5 }] }]);
    assert.equal(lte?.('alerts', { n: 5, m: 6 }), 'x');
    assert.equal(lte?.('alerts', { n: 5, m: 5 }), undefined);
  });

  it('array fields match when any item matches (ne: when no item equals)', () => {
    assert.equal(match([{ field: 'user_list', op: 'eq', value: 'svc_backup' }]), 'f');
    assert.equal(match([{ field: 'user_list', op: 'startsWith', value: 'svc_' }]), 'f');
    assert.equal(match([{ field: 'user_list', op: 'ne', value: 'svc_backup' }]), undefined);
    assert.equal(match([{ field: 'user_list', op: 'ne', value: 'root' }]), 'f');
  });

  it('all conditions must hold; the first matching filter wins; contentTypes scope a filter', () => {
    const pred = compileLogFilters([
      { name: 'host-only', contentTypes: ['host'], conditions: [{ field: 'srcip_host', op: 'exists' }] },
      { name: 'av-noise', conditions: [{ field: 'microsoft_defender.detectionSource', op: 'eq', value: 'WindowsDefenderAv' }, { field: 'severity', op: 'in', value: [15, 35] }] },
      { name: 'second', conditions: [{ field: 'severity', op: 'eq', value: 35 }] },
    ]);
    assert.ok(pred);
    assert.equal(pred('alerts', alert), 'av-noise');
    assert.equal(pred('alerts', { ...alert, severity: 80 }), undefined);
    assert.equal(pred('host', alert), 'host-only');
  });

  it('filters the records the shipped transforms produce', () => {
    const r = loadMapper();
    assert.ok(r.ok);
    const ctx = { connector: 'c', tenant: 't', tagPrefix: 'microsoft_defender', writeTime: 1 };
    const pred = compileLogFilters([{ name: 'informational', contentTypes: ['alerts'], conditions: [{ field: 'event_score', op: 'lt', value: 25 }] }]);
    assert.ok(pred);
    const info = r.mapper.map('alerts', { id: 'a', severity: 'Informational', lastUpdateTime: '2025-06-10T08:00:00Z' }, ctx)[0];
    const high = r.mapper.map('alerts', { id: 'b', severity: 'High', lastUpdateTime: '2025-06-10T08:00:00Z' }, ctx)[0];
    assert.equal(pred('alerts', info?.record ?? {}), 'informational');
    assert.equal(pred('alerts', high?.record ?? {}), undefined);
  });

  it('semantic checks give pointers (value shape per operator, regex syntax)', () => {
    const problems = checkLogFilters(
      [
        { name: 'a', conditions: [{ field: 'x', op: 'regex', value: '(' }, { field: 'x', op: 'in', value: 'y' }, { field: 'x', op: 'eq' }, { field: 'x', op: 'gte', value: '50' }] },
      ],
      '/connectors/0/logFilters',
    );
    assert.deepEqual(
      problems.map((p) => p.pointer),
      ['/connectors/0/logFilters/0/conditions/0/value', '/connectors/0/logFilters/0/conditions/1/value', '/connectors/0/logFilters/0/conditions/2/value', '/connectors/0/logFilters/0/conditions/3/value'],
    );
    assert.match(problems[3]?.message ?? '', /must be a number/);
    assert.match(problems[0]?.message ?? '', /regular expression/i);
  });

  it('an invalid filter in the config is a config error with a pointer', () => {
    const yaml = [
      'connectors:',
      '  - name: c1',
      '    tenant: t',
      '    clientId: 11111111-2222-3333-4444-555555555555',
      '    directoryId: 11111111-2222-3333-4444-555555555555',
      '    clientSecret: s3cret-value',
      '    logFilters:',
      '      - name: bad',
      '        conditions:',
      '          - { field: severity, op: regex, value: "[" }',
      '          - { field: severity, op: like, value: x }',
    ].join('\n');
    const r = checkConfigText('defender.yaml', yaml, {});
    const pointers = r.problems.map((p) => p.pointer);
    assert.ok(pointers.includes('/connectors/0/logFilters/0/conditions/1/op'), JSON.stringify(r.problems));
  });

  it('a filter field no record has is reported with a suggestion', () => {
    const loaded = loadTransformDir(transformsDir);
    const known = outputFields(loaded.transforms);
    const problems = checkLogFilterFields(
      [
        { name: 'typo', contentTypes: ['alerts'], conditions: [{ field: 'srcip_hots', op: 'exists' }, { field: 'microsoft_defender.anything', op: 'exists' }, { field: 'xdr_event.tactic', op: 'exists' }] },
        { name: 'assets-field-on-alerts', contentTypes: ['alerts'], conditions: [{ field: 'iplist', op: 'exists' }] },
        { name: 'fine-for-host', contentTypes: ['host'], conditions: [{ field: 'iplist', op: 'exists' }] },
      ],
      '/connectors/0/logFilters',
      known,
    );
    assert.deepEqual(
      problems.map((p) => p.pointer),
      ['/connectors/0/logFilters/0/conditions/0/field', '/connectors/0/logFilters/1/conditions/0/field'],
    );
    assert.match(problems[0]?.message ?? '', /did you mean "srcip_host"\?/);
    assert.deepEqual(
      logFilterFieldProblems('defender.yaml', [{ logFilters: [{ name: 'x', conditions: [{ field: 'sevrity', op: 'eq', value: 'x' }] }] }]).map((p) => [p.file, p.pointer]),
      [['defender.yaml', '/connectors/0/logFilters/0/conditions/0/field']],
    );
  });

  it('a filter value the field can never hold is reported at the value, with the field\'s type', () => {
    const known = outputFields(loadTransformDir(transformsDir).transforms);
    const cond = (field: string, op: string, value?: unknown) => ({ name: `${field}-${op}`, contentTypes: ['alerts'], conditions: [{ field, op, value }] });
    const problems = checkLogFilterFields(
      [
        cond('severity', 'eq', 'critical'),
        cond('severity', 'eq', 60),
        cond('severity', 'eq', '60'),
        cond('event_score', 'lt', 25),
        cond('srcip_host', 'gte', 3),
        cond('severity', 'contains', '6'),
        cond('sha1_list', 'eq', 'abc'),
        cond('severity', 'in', [80, 'high']),
        cond('dstip_public', 'eq', true),
        cond('dstip_public', 'eq', 'yes'),
      ] as LogFilter[],
      '/connectors/0/logFilters',
      known,
    );
    assert.deepEqual(
      problems.map((p) => p.pointer.split('/')[4]),
      ['0', '4', '5', '7', '9'],
      JSON.stringify(problems),
    );
    assert.match(problems[0]?.message ?? '', /"severity" holds integer: "critical" never equals one \(the value is a number/);
    assert.ok(problems.every((p) => p.pointer.endsWith('/conditions/0/value')));
  });
});
