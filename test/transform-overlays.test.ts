// Schema overlays of a transforms directory: new input fields and new output fields under ext.,
// honoured by validate, preview, docs, log filter checks and run (reload). Mistakes in overlay
// files: transform-load.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { LogFilter } from '../plugin/generated/config.js';
import { transformsDir } from '../plugin/paths.js';
import { docsCommand } from '../plugin/transform/docs.js';
import { previewCommand } from '../plugin/transform/preview.js';
import { logFilterFieldProblems, TransformReloader, validateTransforms } from '../plugin/transform/transforms.js';
import { copyTransforms, only, readJson, writeJson, writeOverlay } from './helpers/transforms-copy.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dir: string;
const read = (name: string): Json => readJson(dir, name);
const write = (name: string, v: unknown) => writeJson(dir, name, v);
const overlay = (name: string, v: unknown) => writeOverlay(dir, name, v);
function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const inputOverlay = { schema: 'defender/alert.schema.json', description: 'fields our Defender tenant sends', fields: { vendorRisk: { type: ['integer', 'null'] }, 'evidence[].sigmaRule': { type: ['string', 'null'] } } };
const outputOverlay = { schema: 'index/syslog.schema.json', fields: { 'ext.acme.vendor_risk': { type: 'integer', description: 'our risk model' }, 'ext.acme.sigma_rules': { type: 'array', items: { type: 'string' } } } };

/** alerts.syslog.json with two rules using the overlay fields. */
function addRules() {
  const t = read('alerts.syslog.json');
  t.fields.push({ target: 'ext.acme.vendor_risk', from: 'vendorRisk' }, { target: 'ext.acme.sigma_rules', collect: ['evidence[].sigmaRule'] });
  write('alerts.syslog.json', t);
}

describe('schema overlays', () => {
  beforeEach(() => {
    dir = copyTransforms();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('new input and output fields are mapped by validate, preview and docs, and known to log filters, without touching the package', async () => {
    addRules();
    const before = validateTransforms(dir);
    assert.ok(before.some((p) => /unknown field "vendorRisk"/.test(p.message)), 'without the overlays the rules are errors');
    overlay('acme-input.json', inputOverlay);
    overlay('acme-output.json', outputOverlay);
    assert.deepEqual(validateTransforms(dir), []);

    const input = join(mkdtempSync(join(tmpdir(), 'overlay-input-')), 'alert.json');
    writeFileSync(input, JSON.stringify({ id: 'a1', lastUpdateTime: '2026-03-01T10:00:00Z', title: 't', vendorRisk: 7, evidence: [{ entityType: 'File', sigmaRule: 'r-1' }, { entityType: 'Process', sigmaRule: 'r-2' }] }));
    const out = capture();
    const err = capture();
    assert.equal(await previewCommand({ content: 'alerts', files: [input], transforms: dir, stdout: out.stream, stderr: err.stream, writeTime: 1 }), 0, err.text());
    const record = JSON.parse(out.text()) as Json;
    assert.deepEqual(record.ext, { acme: { vendor_risk: 7, sigma_rules: ['r-1', 'r-2'] } });
    assert.equal(record.microsoft_defender.vendorRisk, 7, 'the raw copy keeps the field');

    const doc = join(dirname(input), 'fields.md');
    assert.equal(await docsCommand({ transforms: dir, out: doc, stdout: capture().stream }), 0);
    const text = readFileSync(doc, 'utf8');
    assert.match(text, /\| `ext\.acme\.vendor_risk` \| integer \| `vendorRisk` \|/);
    assert.match(text, /## Schema overlays[\s\S]*`defender\/alert\.schema\.json` \(`acme-input\.json`\)[\s\S]*\| `evidence\[\]\.sigmaRule` \| string \|/);

    const filters = (op: 'lt' | 'eq', value: unknown) => [{ logFilters: [{ name: 'low-risk', contentTypes: ['alerts'] as ['alerts'], conditions: [{ field: 'ext.acme.vendor_risk', op, value }] as LogFilter['conditions'] }] }];
    assert.deepEqual(logFilterFieldProblems('defender.yaml', filters('lt', 3), dir), []);
    assert.match(only(logFilterFieldProblems('defender.yaml', filters('eq', 'low'), dir), 'defender.yaml', '/connectors/0/logFilters/0/conditions/0/value').message, /"ext\.acme\.vendor_risk" holds integer/);
    assert.equal(readFileSync(join(transformsDir, 'alerts.syslog.json'), 'utf8').includes('vendor_risk'), false);
  });

  it('run: a changed overlay is picked up by a reload, a broken one keeps the previous transforms', () => {
    addRules();
    overlay('acme-input.json', inputOverlay);
    overlay('acme-output.json', outputOverlay);
    const opened = TransformReloader.open(dir);
    assert.ok(opened.ok);
    const reloader = opened.reloader;
    const ctx = { connector: 'c', tenant: 't', tagPrefix: 'p', writeTime: 1 };
    const map = () => reloader.current().map('alerts', { id: 'a', lastUpdateTime: '2026-03-01T10:00:00Z', vendorRisk: 'high' }, ctx)[0]!.record;
    assert.match(String(map().transform_error), /ext\/acme\/vendor_risk must be integer/, 'the overlay type is checked on every record');
    overlay('acme-output.json', { ...outputOverlay, fields: { ...outputOverlay.fields, 'ext.acme.vendor_risk': { type: ['integer', 'string'] } } });
    assert.equal(reloader.reload().ok, true);
    assert.equal(map().transform_error, undefined);
    overlay('acme-output.json', { ...outputOverlay, fields: { severity: { type: 'string' } } });
    assert.equal(reloader.reload().ok, false);
    assert.equal(map().transform_error, undefined, 'previous transforms kept');
  });
});
