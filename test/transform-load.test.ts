// Load-time checks of transform files and lookups: every mistake is reported with the file, a JSON
// pointer (and line) and a suggestion where one exists, all problems at once.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformsDir } from '../plugin/paths.js';
import { loadMapper, validateTransforms } from '../plugin/transform/transforms.js';
import { copyTransforms, only, readJson, writeJson, writeOverlay } from './helpers/transforms-copy.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dir: string;
const read = (name: string): Json => readJson(dir, name);
const write = (name: string, v: unknown) => writeJson(dir, name, v);
const overlay = (name: string, v: unknown) => writeOverlay(dir, name, v);
const fieldIndex = (t: Json, target: string) => (t.fields as Json[]).findIndex((f) => f.target === target);

describe('transform load-time checks', () => {
  beforeEach(() => {
    dir = copyTransforms();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('the shipped transforms load without problems', () => {
    assert.deepEqual(validateTransforms(transformsDir), []);
    const r = loadMapper(transformsDir);
    assert.ok(r.ok);
    assert.deepEqual(r.mapper.transforms.map((t) => t.name), ['alerts.syslog', 'host.assets', 'host.syslog', 'hunting.syslog', 'machine-actions.syslog', 'vulnerabilities.syslog']);
  });

  it('a misspelled source field is an error with a suggestion, file, pointer and line', () => {
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'srcip_host');
    t.fields[i].from = 'computerDnsNam';
    write('alerts.syslog.json', t);
    const p = only(validateTransforms(dir), 'alerts.syslog.json', `/fields/${i}/from`);
    assert.match(p.message, /unknown field "computerDnsNam" in Alert; did you mean "computerDnsName"\?/);
    assert.ok(p.line && p.line > 1, 'line number given');
    assert.match(readFileSync(join(dir, 'alerts.syslog.json'), 'utf8').split('\n')[(p.line as number) - 1] as string, /computerDnsNam/);
  });

  it('nested and array paths are checked against the item schemas', () => {
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'sha1_list');
    t.fields[i].collect = ['evidence[].shaa1'];
    const j = fieldIndex(t, 'user_name');
    t.fields[j].from = ['relatedUser.usrName'];
    const k = fieldIndex(t, 'file_name');
    t.fields[k].from = 'evidence.fileName';
    write('alerts.syslog.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${i}/collect/0`).message, /"shaa1" under "evidence\[\]".*did you mean "sha1"/);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${j}/from/0`).message, /did you mean "userName"/);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${k}/from`).message, /"evidence" is an array.*"evidence\[\]"/);
  });

  it('a target that is not in the index schema is an error with a suggestion', () => {
    const t = read('host.assets.json');
    const i = fieldIndex(t, 'name');
    t.fields[i].target = 'nmae';
    const j = fieldIndex(t, 'os.platform');
    t.fields[j].target = 'os.platfrom';
    write('host.assets.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'host.assets.json', `/fields/${i}/target`).message, /"nmae" is not a field of AssetRecord; did you mean "name"\?/);
    assert.match(only(problems, 'host.assets.json', `/fields/${j}/target`).message, /"platfrom" is not a field of AssetRecord under "os"; did you mean "platform"\?/);
  });

  it('a type-incompatible target is an error', () => {
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'event_score');
    t.fields[i] = { target: 'event_score', from: 'title' };
    const j = fieldIndex(t, 'event_score_band');
    t.fields[j].lookup = 'alert-status';
    write('alerts.syslog.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${i}/from`).message, /"event_score" is integer in SyslogRecord, but this rule yields string/);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${j}/lookup`).message, /"New" is not a valid "event_score_band".*must be one of "critical"/);
  });

  it('a required output field that no rule sets is an error', () => {
    const t = read('vulnerabilities.syslog.json');
    t.fields = (t.fields as Json[]).filter((f) => f.target !== 'msg_class' && f.target !== 'microsoft_defender');
    write('vulnerabilities.syslog.json', t);
    const problems = validateTransforms(dir).filter((p) => p.pointer === '/fields');
    assert.deepEqual(problems.map((p) => p.message).sort(), [
      'required output field "microsoft_defender" of SyslogRecord is not set by any rule',
      'required output field "msg_class" of SyslogRecord is not set by any rule',
    ]);
  });

  it('unknown and malformed lookups are errors; conversions must fit the value', () => {
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'event_status');
    t.fields[i].lookup = 'alert-statuss';
    write('alerts.syslog.json', t);
    const h = read('host.syslog.json');
    const j = fieldIndex(h, 'os_build');
    h.fields[j].convert = 'ip';
    write('host.syslog.json', h);
    write('lookups/score-bands.json', { bands: [{ min: 'high', value: 'critical' }] });
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${i}/lookup`).message, /unknown lookup table "alert-statuss"; did you mean "alert-status"\?/);
    assert.match(only(problems, 'host.syslog.json', `/fields/${j}/convert`).message, /conversion "ip" needs string, but the value is integer/);
    assert.match(only(problems, 'score-bands.json', '/bands/0/min').message, /must be number/);
  });

  it('schema errors in the file itself: unknown keys get a suggestion, one kind per rule', () => {
    const t = read('host.syslog.json');
    const i = fieldIndex(t, 'srcip_host');
    t.fields[i] = { target: 'srcip_host', form: 'computerDnsName' };
    t.fields.push({ target: 'srcip_host', from: 'computerDnsName', const: 'x' });
    write('host.syslog.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'host.syslog.json', `/fields/${i}/form`).message, /unknown key "form"; did you mean "from"\?/);
    // the schema pass stops here for this file; fix it and the semantic pass reports the double kind
    t.fields[i] = { target: 'srcip_host', from: 'computerDnsName' };
    write('host.syslog.json', t);
    assert.match(only(validateTransforms(dir), 'host.syslog.json', `/fields/${t.fields.length - 1}`).message, /exactly one of "const", "from", "template", "collect", "objects", "score", "raw" \(found const, from\)/);
  });

  it('unknown keys in lookup files and conditions get suggestions too', () => {
    write('lookups/alert-status.json', { entrys: { New: 'New' } });
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'file_name_list');
    t.fields[i].collect[0].where = { path: 'entityType', equal: 'File' };
    write('alerts.syslog.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'alert-status.json', '/entrys').message, /unknown key "entrys"; did you mean "entries"\?/);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${i}/collect/0/where/equal`).message, /did you mean "equals"\?/);
  });

  it('templates: unclosed braces and unknown placeholders are errors', () => {
    const t = read('alerts.syslog.json');
    const i = fieldIndex(t, 'xdr_event.display_name');
    t.fields[i] = { target: 'xdr_event.display_name', template: '{title on {computerDnsName}' };
    const j = fieldIndex(t, 'engid_name');
    t.fields[j].template = 'microsoft_defender_{$conector}';
    write('alerts.syslog.json', t);
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${i}/template`).message, /unknown field "title on \{computerDnsName"/);
    assert.match(only(problems, 'alerts.syslog.json', `/fields/${j}/template`).message, /unknown context value "\$conector"; did you mean "connector"\?/);
  });

  it('invalid JSON names the file and line; problems of several files come all at once', () => {
    writeFileSync(join(dir, 'host.assets.json'), '{\n  "content": "host",\n  "fields": [,]\n}\n');
    const t = read('alerts.syslog.json');
    t.tag = 'hostSyslog';
    write('alerts.syslog.json', t);
    const problems = validateTransforms(dir);
    const json = only(problems, 'host.assets.json', '');
    assert.match(json.message, /invalid JSON/);
    assert.equal(json.line, 3);
    assert.match(only(problems, 'alerts.syslog.json', '/tag').message, /content "alerts" is emitted with tag "alerts"/);
    const r = loadMapper(dir);
    assert.equal(r.ok, false);
  });

  it('a missing transform for a content type is reported', () => {
    rmSync(join(dir, 'vulnerabilities.syslog.json'));
    const problems = validateTransforms(dir);
    assert.equal(problems.length, 1);
    assert.match(problems[0]?.message ?? '', /no transform for content type "vulnerabilities"/);
  });

  it('schema overlays: every mistake in an overlay file is reported with file, pointer and line, all at once', () => {
    overlay('a.json', { schema: 'index/syslog.schema.json', fields: { cost_center: { type: 'string' }, 'ext.acme.ok': { type: 'strin' } } });
    overlay('b.json', { schema: 'defender/alert.schema.json', fields: { title: { type: 'string' }, 'relatedUser[].x': { type: 'string' }, 'evidence.y': { type: 'string' }, _mine: { type: 'string' }, 'evidence[].z[]': { type: 'string' } } });
    overlay('c.json', { schema: 'defender/alrt.schema.json', fields: { x: { type: 'string' } } });
    overlay('c2.json', { schema: 'defender/alert.schema.json', fields: { x: { type: 'string' } }, extra: 1 });
    overlay('d.json', { schema: 'defender/machine.schema.json', fields: {} });
    overlay('e.json', '{\n  "schema": "index/syslog.schema.json",\n  "fields": {\n');
    const problems = validateTransforms(dir);
    assert.match(only(problems, 'a.json', '/fields/cost_center').message, /go under "ext\."/);
    assert.match(only(problems, 'a.json', '/fields/ext.acme.ok').message, /not a valid JSON schema/);
    assert.match(only(problems, 'b.json', '/fields/title').message, /"title" is already in Alert: an overlay adds fields/);
    assert.match(only(problems, 'b.json', '/fields/relatedUser[].x').message, /"relatedUser" is not a list of objects in Alert/);
    assert.match(only(problems, 'b.json', '/fields/evidence.y').message, /"evidence" is an array in Alert: write "evidence\[\]"/);
    assert.match(only(problems, 'b.json', '/fields/_mine').message, /reserved for what the collector attaches/);
    assert.match(only(problems, 'b.json', '/fields/evidence[].z[]').message, /end the path without \[\]/);
    assert.match(only(problems, 'c.json', '/schema').message, /not found under schemas\/; did you mean "defender\/alert\.schema\.json"\?/);
    assert.match(only(problems, 'c2.json', '/extra').message, /unknown key "extra"/);
    assert.match(only(problems, 'd.json', '/fields').message, /must NOT have fewer than 1 properties/);
    const broken = only(problems, 'e.json', '');
    assert.match(broken.message, /invalid JSON/);
    const line = only(problems, 'b.json', '/fields/title').line;
    assert.ok(line && /"title"/.test(readFileSync(join(dir, 'overlays', 'b.json'), 'utf8').split('\n')[line - 1]!), `line ${line} points at the field`);
  });

  it('schema overlays: a rule writing under ext. without an overlay is an error at its target', () => {
    const t = read('alerts.syslog.json');
    t.fields.push({ target: 'ext.acme.vendor_risk', from: 'severity' });
    write('alerts.syslog.json', t);
    const p = only(validateTransforms(dir), 'alerts.syslog.json', `/fields/${t.fields.length - 1}/target`);
    assert.match(p.message, /acme/);
  });
});
