// The transform language's constructs for coherent records, through loadMapper on a transforms
// folder whose alerts transform is written here (tables local to it): named items, lists of
// objects, per-alternative steps, conditions (not, IP classes, equalsPath, startsWith, all-of),
// scores and truncation; and the load-time errors of each. No shipped mapping value is assumed.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transformsDir } from '../plugin/paths.js';
import type { Problem } from '../plugin/schema-check.js';
import { loadMapper, validateTransforms } from '../plugin/transform/transforms.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const envelope = [
  { target: 'timestamp', from: '$writeTime' },
  { target: 'write_time', from: '$writeTime' },
  { target: 'msg_class', const: 'microsoft_defender_alerts' },
  { target: 'msg_origin', const: { source: 'microsoft_defender', vendor: 'microsoft', category: 'endpoint', processor: { name: 'microsoft_defender', type: 'log_collector' } } },
  { target: 'tenant_name', from: '$tenant' },
  { target: 'engid_name', template: 'microsoft_defender_{$connector}' },
  { target: 'microsoft_defender', raw: true },
];
const ctx = { connector: 'c1', tenant: 't1', tagPrefix: 'p', writeTime: 1_700_000_000_000 };

let dir: string;
function transform(extra: Json, fields: Json[]): Json {
  return { content: 'alerts', input: 'defender/alert.schema.json', output: 'index/syslog.schema.json', tag: 'alerts', ...extra, fields: [...envelope, ...fields] };
}
function install(t: Json): void {
  writeFileSync(join(dir, 'alerts.syslog.json'), JSON.stringify(t, null, 2));
}
function map(t: Json, alert: Json): Json {
  install(t);
  const r = loadMapper(dir);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  const [rec] = r.mapper.map('alerts', alert, ctx);
  assert.equal(rec?.record.transform_error, undefined, String(rec?.record.transform_error));
  return rec?.record as Json;
}
function problemsOf(t: Json): Problem[] {
  install(t);
  return validateTransforms(dir);
}

const File = (o: Json) => ({ entityType: 'File', ...o });
const Process = (o: Json) => ({ entityType: 'Process', ...o });
const pickFile = { file: { each: 'evidence', prefer: [[{ path: 'entityType', equals: 'File' }, { path: 'detectionStatus', in: ['Blocked', 'Prevented'] }], { path: 'entityType', equals: 'File' }, { path: 'entityType', equals: 'Process' }] } };
const fileFields = [
  { target: 'file_name', from: '@file.fileName' },
  { target: 'file_hash', from: ['@file.sha256', '@file.sha1'], convert: 'lower' },
];

describe('transform language: coherent records', () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'transforms-dsl-'));
    cpSync(transformsDir, dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('named items', () => {
    const t = transform({ items: pickFile }, fileFields);

    it('take every field from the one element the earliest preference matches', () => {
      const rec = map(t, { evidence: [Process({ fileName: 'p.exe', sha1: 'AA' }), File({ fileName: 'a.dll', sha1: 'BB' }), File({ fileName: 'b.dll', sha256: 'CC', detectionStatus: 'Prevented' })] });
      assert.equal(rec.file_name, 'b.dll');
      assert.equal(rec.file_hash, 'cc');
    });

    it('fall back to later preferences, and never mix fields of two elements', () => {
      assert.equal(map(t, { evidence: [Process({ fileName: 'p.exe', sha1: 'AA' }), File({ fileName: 'a.dll' })] }).file_name, 'a.dll');
      const rec = map(t, { evidence: [Process({ fileName: 'p.exe', sha1: 'AA' }), File({ fileName: 'a.dll' })] });
      assert.equal(rec.file_hash, undefined, 'the File has no hash: the Process hash is not borrowed');
      assert.equal(map(t, { evidence: [Process({ fileName: 'p.exe', sha1: 'AA' })] }).file_hash, 'aa');
      // of several elements matching the same (later) preference, the first is taken
      assert.equal(map(t, { evidence: [Process({ fileName: 'p.exe' }), File({ fileName: 'a.dll' }), Process({ fileName: 'q.exe' }), File({ fileName: 'c.dll' })] }).file_name, 'a.dll');
      assert.equal(map(t, { evidence: [Process({ fileName: 'p.exe' }), Process({ fileName: 'q.exe' })] }).file_name, 'p.exe');
      const none = map(t, { evidence: [{ entityType: 'User', accountName: 'x' }, null, 'junk'] });
      assert.equal(none.file_name, undefined);
      assert.equal(map(t, {}).file_name, undefined);
    });

    it('an unknown item or field is a load error with a suggestion', () => {
      const problems = problemsOf(transform({ items: pickFile }, [{ target: 'file_name', from: '@fil.fileName' }, { target: 'file_path', from: '@file.filePth' }]));
      assert.ok(problems.some((p) => p.pointer === '/fields/7/from' && /unknown item "@fil"; did you mean "file"/.test(p.message)), JSON.stringify(problems));
      assert.ok(problems.some((p) => p.pointer === '/fields/8/from' && /did you mean "filePath"/.test(p.message)), JSON.stringify(problems));
      const bad = problemsOf(transform({ items: { file: { each: 'evidence', prefer: [{ path: 'entityTyp', equals: 'File' }] } } }, []));
      assert.ok(bad.some((p) => p.pointer === '/items/file/prefer/0/path' && /did you mean "entityType"/.test(p.message)), JSON.stringify(bad));
    });
  });

  describe('lists of objects', () => {
    const t = transform({ lookups: { tech: { caseInsensitive: true, entries: { T1: { id: 'T1', name: 'One' }, T9: { id: 'T1', name: 'One' } } } } }, [
      { target: 'evidence', objects: { each: 'evidence', where: { path: 'entityType', equals: 'User', not: true }, fields: { type: 'entityType', file_name: 'fileName', sha1: { from: 'sha1', convert: 'lower' } } } },
      { target: 'xdr_event.ttps', objects: { each: 'mitreTechniques', distinct: true, fields: { technique: { from: '.', lookup: 'tech' } } } },
    ]);

    it('keep the fields of one element together, skip empty and excluded elements; distinct drops repeats', () => {
      const rec = map(t, { mitreTechniques: ['t1', 'T9', 'T404'], evidence: [File({ fileName: 'a', sha1: 'AB' }), { entityType: 'User', accountName: 'u' }, Process({ sha1: 'CD' }), {}, File({ fileName: 'a', sha1: 'ab' })] });
      assert.deepEqual(rec.evidence, [{ type: 'File', file_name: 'a', sha1: 'ab' }, { type: 'Process', sha1: 'cd' }, { type: 'File', file_name: 'a', sha1: 'ab' }], 'without distinct, one object per element: aligned with the raw evidence');
      assert.deepEqual(rec.xdr_event.ttps, [{ technique: { id: 'T1', name: 'One' } }]);
      // null and scalar elements yield nothing (the compiled code skips null elements before reading their fields)
      assert.deepEqual(map(t, { mitreTechniques: [null, 'T1'], evidence: [null, File({ sha1: 'AB' }), 'junk'] }).evidence, [{ type: 'File', sha1: 'ab' }]);
    });

    it('distinct drops repeats in long lists too (first occurrence kept, order kept)', () => {
      const entries = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`T${i}`, { id: `T${i % 50}`, name: `n${i % 50}` }]));
      const long = transform({ lookups: { tech: { entries } } }, [{ target: 'xdr_event.ttps', objects: { each: 'mitreTechniques', distinct: true, fields: { technique: { from: '.', lookup: 'tech' } } } }]);
      const ids = Array.from({ length: 120 }, (_, i) => `T${(i * 7) % 60}`);
      const expected: Json[] = [];
      for (const id of ids) {
        const v = entries[id] as Json;
        if (!expected.some((x) => JSON.stringify(x.technique) === JSON.stringify(v))) expected.push({ technique: v });
      }
      assert.equal(expected.length, 50);
      assert.deepEqual(map(long, { mitreTechniques: ids }).xdr_event.ttps, expected);
    });

    it('a rule writing into an object a lookup set changes that record only, never the table', () => {
      const tt = transform({ lookups: { tac: { entries: { Execution: { id: 'TA0002', name: 'Execution' } } } } }, [
        { target: 'xdr_event.tactic', from: 'category', lookup: 'tac' },
        { target: 'xdr_event.tactic.name', from: 'title' },
      ]);
      install(tt);
      const r = loadMapper(dir);
      assert.ok(r.ok);
      const [first] = r.mapper.map('alerts', { category: 'Execution', title: 'renamed' }, ctx);
      const [second] = r.mapper.map('alerts', { category: 'Execution' }, ctx);
      assert.deepEqual((first?.record as Json).xdr_event.tactic, { id: 'TA0002', name: 'renamed' });
      assert.deepEqual((second?.record as Json).xdr_event.tactic, { id: 'TA0002', name: 'Execution' }, 'the second record gets the table\'s value');
    });

    it('a field the item schema does not have, or an array value, is a load error', () => {
      const problems = problemsOf(transform({}, [{ target: 'evidence', objects: { each: 'evidence', fields: { filename: 'fileName' } } }, { target: 'xdr_event.ttps', objects: { each: 'evidence', fields: { tactic: 'sha1' } } }]));
      assert.ok(problems.some((p) => p.pointer === '/fields/7/objects/fields/filename' && /did you mean "file_name"/.test(p.message)), JSON.stringify(problems));
      assert.ok(problems.some((p) => p.pointer === '/fields/8/objects/fields/tactic' && /is object in SyslogRecord, but this rule yields string/.test(p.message)), JSON.stringify(problems));
      const notList = problemsOf(transform({}, [{ target: 'user_name', objects: { each: 'evidence', fields: { x: 'sha1' } } }]));
      assert.ok(notList.some((p) => p.pointer === '/fields/7/target' && /not a list of objects/.test(p.message)), JSON.stringify(notList));
    });
  });

  describe('conditions', () => {
    const good = [{ path: 'ipAddress', ip: ['loopback', 'linkLocal', 'multicast'], not: true }, { path: 'detectionStatus', equals: 'Down', not: true }];
    const t = transform({}, [
      { target: 'evidence_ip_list', collect: [{ each: 'evidence', where: good, path: 'ipAddress' }], convert: 'ip' },
      { target: 'dstip_public', const: true, when: { path: 'evidence[].ipAddress', ip: ['public'] } },
      { target: 'user_name', from: 'title', when: { path: 'title', equalsPath: 'description' } },
      { target: 'alert_category', from: 'category', when: { path: 'category', startsWith: 'cve-' } },
    ]);

    it('not, IP classes, equalsPath, startsWith and all-of lists select what they say', () => {
      const rec = map(t, {
        title: 'same',
        description: 'same',
        category: 'CVE-1',
        evidence: [{ ipAddress: '::ffff:8.8.8.8' }, { ipAddress: '127.0.0.1' }, { ipAddress: '169.254.3.4' }, { ipAddress: 'fe80::1%3' }, { ipAddress: '224.0.0.251' }, { ipAddress: '10.1.2.3' }, { ipAddress: '10.9.9.9', detectionStatus: 'Down' }, { ipAddress: 'not an ip' }],
      });
      assert.deepEqual(rec.evidence_ip_list, ['8.8.8.8', '10.1.2.3'], 'not an IP: kept by the condition, dropped by the ip conversion');
      assert.equal(rec.dstip_public, true, 'a condition tests the first value at its path');
      assert.equal(rec.user_name, 'same');
      assert.equal(rec.alert_category, 'CVE-1');
      const other = map(t, { title: 'a', description: 'b', category: 'XCVE', evidence: [{ ipAddress: '192.168.1.1' }, { ipAddress: 'fd00::1' }] });
      assert.equal(other.dstip_public, undefined, 'private and unique-local addresses are not public');
      assert.equal(other.user_name, undefined);
      assert.equal(other.alert_category, undefined);
    });

    it('an empty value (null, "") meets a condition exactly as a missing one, with and without not', () => {
      const conds = [
        { target: 'user_name', from: 'title', when: { path: 'category', equals: 'X', not: true } },
        { target: 'user_domain', from: 'title', when: { path: 'category', equals: 'X' } },
        { target: 'alert_category', from: 'title', when: { path: 'status', in: ['New', 'Resolved'], not: true } },
        { target: 'classification', from: 'title', when: { path: 'status', in: ['New'] } },
        { target: 'determination', from: 'title', when: { path: 'detectorId', ip: ['public', 'private'], not: true } },
        { target: 'assigned_to', from: 'title', when: { path: 'detectorId', ip: ['public', 'private'] } },
        { target: 'threat_name', from: 'title', when: { path: 'category', exists: true } },
        { target: 'investigation_state', from: 'title', when: { path: 'status', startsWith: 'N', not: true } },
        { target: 'dstip', from: '@picked.ipAddress' },
      ];
      const picked = { picked: { each: 'evidence', prefer: [{ path: 'entityType', equals: 'Ip' }, [{ path: 'detectionStatus', in: ['Detected'], not: true }, { path: 'ipAddress', exists: true }]] } };
      const tt = transform({ items: picked }, conds);
      const missing = map(tt, { title: 't', evidence: [{ ipAddress: '10.0.0.1' }, { ipAddress: '10.0.0.2', entityType: 'Ip' }] });
      assert.equal(missing.user_name, 't');
      assert.equal(missing.alert_category, 't');
      assert.equal(missing.determination, 't');
      assert.equal(missing.threat_name, undefined);
      assert.equal(missing.investigation_state, 't');
      assert.equal(missing.dstip, '10.0.0.2');
      for (const empty of [null, '']) {
        const rec = map(tt, { title: 't', category: empty, status: empty, detectorId: empty, evidence: [{ ipAddress: '10.0.0.1', entityType: empty, detectionStatus: empty }, { ipAddress: '10.0.0.2', entityType: 'Ip', detectionStatus: empty }] });
        const { microsoft_defender: _raw, ...fields } = rec;
        const { microsoft_defender: _raw2, ...expected } = missing;
        assert.deepEqual(fields, expected, JSON.stringify(empty));
      }
    });

    it('an IP class on a number, or two operators, is a load error', () => {
      const problems = problemsOf(transform({}, [{ target: 'incident_id', from: 'incidentId', when: { path: 'incidentId', ip: ['public'] } }, { target: 'alert_id', from: 'id', when: { path: 'id', equals: 'x', startsWith: 'y' } }]));
      assert.ok(problems.some((p) => p.pointer === '/fields/7/when/ip' && /needs a string/.test(p.message)), JSON.stringify(problems));
      assert.ok(problems.some((p) => p.pointer === '/fields/8/when' && /exactly one of .*found equals, startsWith/.test(p.message)), JSON.stringify(problems));
    });
  });

  describe('alternatives, scores and truncation', () => {
    const lookups = { sev: { entries: { High: 80, Low: 20 } }, conf: { entries: { TruePositive: 100 } }, src: { entries: { X: 45 } }, band: { bands: [{ min: 50, value: 'major' }, { min: 0, value: 'notice' }] } };
    const t = transform({ lookups }, [
      { target: 'severity', from: 'severity', lookup: 'sev' },
      { target: 'fidelity', from: [{ path: 'classification', lookup: 'conf' }, { path: 'detectionSource', lookup: 'src' }] },
      { target: 'event_score', score: { method: 'geometricMean', of: ['severity', 'fidelity'] } },
      { target: 'event_score_band', score: { method: 'max', of: ['event_score'] }, lookup: 'band' },
      { target: 'xdr_event.description', from: 'description', maxLength: 5 },
    ]);

    it('each alternative has its own lookups; the first known wins', () => {
      assert.equal(map(t, { classification: 'TruePositive', detectionSource: 'X' }).fidelity, 100);
      assert.equal(map(t, { classification: 'Unheard', detectionSource: 'X' }).fidelity, 45);
    });

    it('scores combine the output fields that are set, and feed a band lookup', () => {
      const a = map(t, { severity: 'High', detectionSource: 'X' });
      assert.equal(a.event_score, Math.round(Math.sqrt(80 * 45)));
      assert.equal(a.event_score_band, 'major');
      const b = map(t, { severity: 'Low' });
      assert.equal(b.event_score, 20, 'fidelity unknown: severity alone');
      assert.equal(b.event_score_band, 'notice');
      assert.equal(map(t, {}).event_score, undefined);
    });

    it('maxLength cuts long text without splitting a surrogate pair', () => {
      assert.equal(map(t, { description: 'abcdefgh' }).xdr_event.description, 'abcde');
      assert.equal(map(t, { description: 'abcd😀x' }).xdr_event.description, 'abcd');
    });

    it('a score of a text field, or maxLength on a list, is a load error', () => {
      const problems = problemsOf(transform({}, [{ target: 'event_score', score: { method: 'max', of: ['user_name'] } }, { target: 'url_list', collect: ['evidence[].url'], maxLength: 3 }]));
      assert.ok(problems.some((p) => p.pointer === '/fields/7/score/of/0' && /not a number/.test(p.message)), JSON.stringify(problems));
      assert.ok(problems.some((p) => p.pointer === '/fields/8/maxLength' && /applies to "from" and "template" only/.test(p.message)), JSON.stringify(problems));
    });
  });
});
