// A transform file is data: field names, constants, templates and lookup tables must never run as
// code in the compiled function. These tests feed crafted strings both straight to the compiler
// (bypassing the load-time checks) and through the loader (a template's literal text is allowed).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transformsDir } from '../plugin/paths.js';
import { compileRules } from '../plugin/transform/compile.js';
import type { RuleIR } from '../plugin/transform/load.js';
import { buildLookup } from '../plugin/transform/lookups.js';
import { loadMapper } from '../plugin/transform/transforms.js';

const g = globalThis as Record<string, unknown>;
const ctx = { connector: 'c1', tenant: 't1', tagPrefix: 'microsoft_defender', writeTime: 1 };
const payloads = [
  '"]; globalThis.__pwned = 1; //',
  "']; globalThis.__pwned = 1; //",
  '`; globalThis.__pwned = 1; `',
  '${globalThis.__pwned = 1}',
  '\\"]; globalThis.__pwned = 1; //',
  '*/ globalThis.__pwned = 1; /*',
  '\u2028globalThis.__pwned = 1;\u2029',
  '}); globalThis.__pwned = 1; ({',
];
// one segment whatever the text holds (the loader would split on dots and reject unknown names)
const path = (text: string) => ({ text, segs: [{ name: text, each: false }] });

describe('transform compiler: file content never executes', () => {
  beforeEach(() => delete g.__pwned);
  after(() => delete g.__pwned);

  for (const bad of payloads) {
    it(`crafted strings stay data: ${JSON.stringify(bad).slice(0, 40)}`, () => {
      const problems: never[] = [];
      const table = buildLookup('t', 'x.json', '', { entries: { [bad]: bad } }, problems);
      assert.ok(table);
      const rules: RuleIR[] = [
        { kind: 'const', target: [bad], value: bad },
        { kind: 'const', target: ['nested', bad, 'x'], value: { [bad]: [bad] } },
        { kind: 'from', target: ['copied'], alts: [{ path: path(bad), steps: [] }], arrayCopy: false },
        { kind: 'from', target: ['looked'], alts: [{ path: path('k'), steps: [{ lookup: table }] }], arrayCopy: false },
        { kind: 'template', target: ['tpl'], parts: [bad, { path: path(bad), steps: [] }, bad] },
        { kind: 'collect', target: ['list'], sources: [{ path: path(bad) }], steps: [] },
        { kind: 'const', target: ['guarded'], value: 1, when: [{ path: path(bad), op: 'equals', value: bad, negate: false }] },
        { kind: 'const', target: ['guarded_in'], value: 1, when: [{ path: path(bad), op: 'in', value: [bad], negate: false }] },
        { kind: 'from', target: ['dflt'], alts: [{ path: path('missing'), steps: [] }], arrayCopy: false, default: bad },
      ];
      const { fn, source } = compileRules(rules);
      assert.equal(g.__pwned, undefined, 'compiling ran code');
      const out = fn({ [bad]: `value ${bad}`, k: bad }, ctx);
      assert.equal(g.__pwned, undefined, 'mapping ran code');
      assert.equal(out[bad], bad);
      assert.deepEqual((out.nested as Record<string, unknown>)[bad], { x: { [bad]: [bad] } });
      assert.equal(out.copied, `value ${bad}`);
      assert.equal(out.looked, bad);
      assert.equal(out.tpl, `${bad}value ${bad}${bad}`);
      assert.deepEqual(out.list, [`value ${bad}`]);
      assert.equal(out.guarded, undefined);
      assert.equal(out.dflt, bad);
      // The generated source holds the payload only inside JSON string literals.
      assert.ok(!source.includes(bad) || source.includes(JSON.stringify(bad).slice(1, -1)));
      assert.equal(fn({ [bad]: bad }, ctx).guarded, 1);
      assert.equal(fn({ [bad]: bad }, ctx).guarded_in, 1);
    });
  }

  it('refuses prototype targets instead of writing them', () => {
    assert.throws(() => compileRules([{ kind: 'const', target: ['__proto__', 'polluted'], value: 1 }]), /forbidden target/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('a "__proto__" field in the API entity is kept as data, not as a prototype', () => {
    const r = loadMapper();
    assert.ok(r.ok);
    const entity = JSON.parse('{"id":"m1","lastSeen":"2025-06-10T05:12:44Z","__proto__":{"polluted":true}}') as Record<string, unknown>;
    const [rec] = r.mapper.map('host', entity, ctx);
    const raw = rec?.record.microsoft_defender as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(raw), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(raw, '__proto__')?.value, { polluted: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  describe('through the loader', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'transforms-inj-'));
      cpSync(transformsDir, dir, { recursive: true });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('a crafted template literal loads and renders as text', () => {
      const file = join(dir, 'alerts.syslog.json');
      const t = JSON.parse(readFileSync(file, 'utf8'));
      const i = t.fields.findIndex((f: { target: string }) => f.target === 'xdr_event.display_name');
      const crafted = '"); globalThis.__pwned = 1; (" `${{globalThis.__pwned = 1}}` {title}';
      t.fields[i] = { target: 'xdr_event.display_name', template: crafted };
      writeFileSync(file, JSON.stringify(t));
      const r = loadMapper(dir);
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      const [rec] = r.mapper.map('alerts', { id: 'a1', title: 'T', lastUpdateTime: '2025-06-10T08:14:24.61Z' }, ctx);
      assert.equal(g.__pwned, undefined);
      assert.equal((rec?.record.xdr_event as Record<string, unknown>).display_name, '"); globalThis.__pwned = 1; (" `${globalThis.__pwned = 1}` T');
    });

    it('a crafted target or source name is rejected at load time and never compiled', () => {
      const file = join(dir, 'host.syslog.json');
      const t = JSON.parse(readFileSync(file, 'utf8'));
      t.fields.push({ target: '"]; globalThis.__pwned = 1; //', from: 'id' });
      t.fields.push({ target: 'srcip_host', from: '"]; globalThis.__pwned = 1; //' });
      writeFileSync(file, JSON.stringify(t));
      const r = loadMapper(dir);
      assert.equal(r.ok, false);
      assert.equal(g.__pwned, undefined);
      if (!r.ok) {
        assert.ok(r.problems.some((p) => p.pointer.endsWith('/target') && /is not a field of SyslogRecord/.test(p.message)));
        assert.ok(r.problems.some((p) => p.pointer.endsWith('/from') && /malformed path/.test(p.message)));
      }
    });
  });
});
