// The RecordMapper the collector calls, its runtime output check, conversions, reload and the
// detection-engineer commands (preview, docs).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { packageRoot, transformsDir } from '../plugin/paths.js';
import { clean, dnsDomain, epochMs, inIpClasses, ip, lower, mac, urlHost } from '../plugin/transform/convert.js';
import { addedByCollector, compileCleaner } from '../plugin/transform/compile.js';
import { readEntities } from '../plugin/transform/input.js';
import { loadSchema } from '../plugin/schema-check.js';
import { readdirSync } from 'node:fs';
import { defaultFieldsDoc, docsCommand, renderFieldsDoc } from '../plugin/transform/docs.js';
import { loadTransformDir } from '../plugin/transform/load.js';
import { previewCommand } from '../plugin/transform/preview.js';
import { TransformMapper } from '../plugin/transform/transform-mapper.js';
import { createLogger } from '../plugin/log.js';
import { loadMapper, TransformReloader } from '../plugin/transform/transforms.js';
import { indexValidator } from '../plugin/transform/transform-mapper.js';

const fixture = (name: string) => JSON.parse(readFileSync(join(packageRoot, 'test', 'golden', name), 'utf8'));
const ctx = { connector: 'eu-prod', tenant: 'Fabrikam', tagPrefix: 'acme.defender', writeTime: 1750000000000 };

function mapper(): TransformMapper {
  const r = loadMapper();
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.mapper;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('transform mapper', () => {
  it('alerts: record contract, tag from the prefix, time = creation, last update in its own field', () => {
    const page = fixture('alerts.syslog/fixture-page1.input.json');
    const out = mapper().map('alerts', page.value[0], ctx);
    assert.equal(out.length, 1);
    const [r] = out;
    assert.equal(r?.tag, 'acme.defender.syslog.alerts');
    assert.equal(r?.time, Date.parse(page.value[0].alertCreationTime));
    const rec = r?.record as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(rec.timestamp, r?.time);
    assert.equal(rec.last_update_time, Date.parse(page.value[0].lastUpdateTime));
    assert.equal(rec.write_time, ctx.writeTime);
    assert.equal(rec.tenant_name, 'Fabrikam');
    assert.equal(rec.engid_name, 'microsoft_defender_eu-prod');
    assert.equal(rec.msg_class, 'microsoft_defender_alerts');
    assert.deepEqual(rec.msg_origin, { source: 'microsoft_defender', vendor: 'microsoft', category: 'endpoint', processor: { name: 'microsoft_defender', type: 'log_collector' } });
    assert.equal(rec.microsoft_defender.machineId, '4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c');
    assert.equal(rec.microsoft_defender.assignedTo, undefined, 'nulls removed');
    for (const k of ['severity', 'fidelity', 'event_score']) assert.ok(Number.isInteger(rec[k]) && rec[k] >= 0 && rec[k] <= 100, `${k} is an integer 0–100`);
    assert.ok(['critical', 'major', 'minor', 'notice'].includes(rec.event_score_band));
    assert.equal(rec.transform_error, undefined);
  });

  it('host yields an Assets and a Syslog record, both carrying microsoft_defender.id', () => {
    const m = fixture('host.syslog/fixture-machines.input.json').value[0];
    const out = mapper().map('host', m, ctx);
    assert.deepEqual(out.map((r) => r.tag).sort(), ['acme.defender.assets.host', 'acme.defender.syslog.host']);
    for (const r of out) {
      assert.equal((r.record.microsoft_defender as Record<string, unknown>).id, m.id);
      assert.equal(r.time, Date.parse('2025-06-10T05:12:44.239Z'));
    }
  });

  it('a record failing its index schema is kept, marked with transform_error and counted', () => {
    const mp = mapper();
    const v = fixture('vulnerabilities.syslog/null-cveid.input.json');
    const [r] = mp.map('vulnerabilities', { ...v, cvssScore: '99.5' }, ctx);
    assert.match(String(r?.record.transform_error), /\/cvss_score must be <= 10/);
    assert.equal(r?.record.cvss_score, 99.5);
    assert.equal((r?.record.microsoft_defender as Record<string, unknown>).cvssScore, '99.5');
    assert.equal(mp.stats.snapshot().errors['vulnerabilities.syslog'], 1);
    assert.equal(mp.stats.snapshot().mapped['vulnerabilities.syslog'], 1);
  });

  it("the run-time check (the index schema less what a transform cannot get wrong) gives the full schema's verdict", () => {
    // every golden input, and copies with one field of the wrong type (what an API can send): a
    // top-level one, or one of the first object of a list (an evidence item)
    const odd = (v: unknown): unknown => (typeof v === 'string' ? 12345 : typeof v === 'number' ? 'not a number' : v === null ? 'text' : Array.isArray(v) ? 'text' : typeof v === 'object' ? [1] : null);
    const mistyped = (e: Record<string, unknown>): [string, Record<string, unknown>][] =>
      Object.entries(e).flatMap(([k, v]) => {
        const first = Array.isArray(v) ? (v[0] as Record<string, unknown> | undefined) : undefined;
        const inner = first && typeof first === 'object' ? Object.keys(first).map((f): [string, Record<string, unknown>] => [`${k}[0].${f}`, { ...e, [k]: [{ ...first, [f]: odd(first[f]) }, ...(v as unknown[]).slice(1)] }]) : [];
        return [[k, { ...e, [k]: odd(v) }], ...inner];
      });
    let checked = 0;
    let refused = 0;
    for (const t of mapper().transforms) {
      const full = indexValidator(t.output);
      const folder = join(packageRoot, 'test', 'golden', t.name);
      for (const f of readdirSync(folder).filter((n) => n.endsWith('.input.json'))) {
        for (const e of readEntities(readFileSync(join(folder, f), 'utf8'), f) as Record<string, unknown>[]) {
          for (const [key, entity] of [['', e], ...mistyped(e)] as [string, Record<string, unknown>][]) {
            const record = t.fn(entity, ctx);
            const verdict = full(record);
            assert.equal(t.validate(record), verdict, `${t.name} ${f}${key ? ` with ${key} mistyped` : ''}: ${JSON.stringify(full.errors)}`);
            checked++;
            if (!verdict) refused++;
          }
        }
      }
    }
    assert.ok(checked > 2000 && refused > 500, `${checked} records, ${refused} refused`);
  });

  it('a transform that throws still delivers the raw entity, marked', () => {
    const base = mapper().transformsFor('alerts')[0];
    assert.ok(base);
    const broken = new TransformMapper([{ ...base, fn: () => { throw new Error('boom'); } }]);
    const [r] = broken.map('alerts', { id: 'x', title: null }, ctx);
    assert.match(String(r?.record.transform_error), /transform alerts.syslog failed: boom/);
    assert.deepEqual(r?.record.microsoft_defender, { id: 'x' });
    assert.equal(r?.time, ctx.writeTime);
    assert.equal(broken.stats.snapshot().errors['alerts.syslog'], 1);
  });

  it('the schema-generated raw cleaner gives the same result as the generic one', () => {
    const schemas: Record<string, string> = { 'alerts.syslog': 'defender/alert.schema.json', 'host.syslog': 'defender/machine.schema.json', 'vulnerabilities.syslog': 'defender/vulnerability.schema.json' };
    let checked = 0;
    let withAdded = 0;
    for (const [dir, schema] of Object.entries(schemas)) {
      const cleaner = compileCleaner(loadSchema(schema));
      const folder = join(packageRoot, 'test', 'golden', dir);
      for (const f of readdirSync(folder).filter((n) => n.endsWith('.input.json'))) {
        for (const e of readEntities(readFileSync(join(folder, f), 'utf8'), f)) {
          // fields the collector attaches (the inventory's _machine) are never part of the raw copy
          const fromApi = Object.fromEntries(Object.entries(e).filter(([k]) => !addedByCollector(k)));
          assert.deepEqual(cleaner(e), clean(fromApi), `${dir}/${f}`);
          if (Object.keys(fromApi).length < Object.keys(e).length) withAdded++;
          checked++;
        }
      }
      const odd = JSON.parse('{"id":"x","relatedUser":"not an object","evidence":{"odd":null},"extra":[null,"",{"a":""}],"__proto__":{"p":1}}');
      assert.deepEqual(cleaner(odd), clean(odd));
    }
    assert.ok(checked > 20);
    assert.ok(withAdded > 0, 'a golden case carries an inventory entry');
  });

  it('conversions: both timestamp formats, IP and MAC normalisation', () => {
    assert.equal(epochMs('2025-06-10T08:14:22.3310452Z'), Date.UTC(2025, 5, 10, 8, 14, 22, 331));
    assert.equal(epochMs('2025-06-10 03:02:19'), Date.UTC(2025, 5, 10, 3, 2, 19));
    assert.equal(epochMs('2025-06-09 18:00:00.0000000'), Date.UTC(2025, 5, 9, 18));
    assert.equal(epochMs('2025-06-10T10:14:22+02:00'), Date.UTC(2025, 5, 10, 8, 14, 22));
    assert.equal(epochMs('10/06/2025'), undefined);
    assert.equal(epochMs('2025-02-30T00:00:00Z'), undefined);
    assert.equal(epochMs('2024-02-29 00:00:00'), Date.UTC(2024, 1, 29));
    assert.equal(epochMs('2025-06-10T08:14:22.3Z'), Date.UTC(2025, 5, 10, 8, 14, 22, 300));
    assert.equal(epochMs('2025-06-10T08:14:22.33Z'), Date.UTC(2025, 5, 10, 8, 14, 22, 330));
    assert.equal(epochMs('2025-06-10T08:14:22.Z'), undefined);
    assert.equal(epochMs('2025-06-10T08:14:22.Z'), undefined, 'the same text twice (remembered) gives the same answer');
    // every day of 1899–2100 (leap years, the 1900 / 2000 / 2100 rules) and a spread of times and offsets, against Date.UTC
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    for (let day = Date.UTC(1899, 0, 1), k = 0; day < Date.UTC(2101, 0, 1); day += 86_400_000, k++) {
      const dt = new Date(day);
      const [y, mo, d] = [dt.getUTCFullYear(), dt.getUTCMonth() + 1, dt.getUTCDate()];
      const [h, mi, sec] = [k % 24, (k * 7) % 60, (k * 13) % 60];
      const frac = String(k % 100_000_000).padStart(8, '0').slice(0, k % 9); // no fraction up to 8 digits
      const offMin = ((k % 5) - 2) * 150;
      const off = offMin === 0 ? 'Z' : `${offMin > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(offMin) / 60))}:${pad(Math.abs(offMin) % 60)}`;
      const text = `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(sec)}${frac ? `.${frac}` : ''}${off}`;
      assert.equal(epochMs(text), Date.UTC(y, mo - 1, d, h, mi, sec, Number(`${frac}00`.slice(0, 3))) - offMin * 60_000, text);
    }
    for (const bad of ['2025-06-10T08:14:2x.1Z', '2025-06-10T08:14:22.1x3Z', '2025-06-1xT08:14:22Z', '2025-13-10T08:14:22Z', '2025-06-10T08:60:22Z', '2025-06-10T08:14:22.Z', '2025-06-10T08:14:22ZZ', '+025-06-10T08:14:22Z']) assert.equal(epochMs(bad), undefined, bad);
    assert.equal(ip(' 010.001.002.003 '), '10.1.2.3');
    assert.equal(ip('FE80:0000:0000:0000:1C2D:3E4F:5A6B:7C8D%12'), 'fe80::1c2d:3e4f:5a6b:7c8d');
    assert.equal(ip('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(ip('999.1.1.1'), undefined);
    assert.equal(ip('10.1.0.7'), '10.1.0.7');
    assert.equal(ip('0.0.0.0'), '0.0.0.0');
    assert.equal(ip('10.1.2'), undefined);
    assert.equal(inIpClasses('10.1.2.3', new Set(['private'])), true);
    assert.equal(inIpClasses('10.1.2.3', new Set(['public'])), false, 'remembered: the same address, another question');
    assert.equal(dnsDomain('WKS-1.Corp.Test.'), 'corp.test');
    assert.equal(dnsDomain('wks-1.'), undefined);
    // texts that shared a slot before the slot mix: each answered as itself, however they alternate
    const hashes = ['0F1E2D3C4B5A69788796A5B4C3D2E1F00A1B2C3D', 'C3D2E1F00A1B2C3D4E5F60718293A4B5C6D7E8F9', '9A8B7C6D5E4F30211203F4E5D6C7B8A99A8B7C6D5E4F30211203F4E5D6C7B8A9'];
    for (let i = 0; i < 9; i++) assert.equal(lower(hashes[i % 3]), hashes[i % 3]?.toLowerCase());
    assert.equal(mac('00155D0A1B2C'), '00:15:5d:0a:1b:2c');
    assert.equal(mac('00-15-5D-0A-1B-2C'), '00:15:5d:0a:1b:2c');
    assert.equal(mac('000000000000'), undefined);
    assert.equal(mac('00155D0A1B'), undefined);
  });

  it('urlHost: the host the WHATWG URL parser reads (plain DNS names take a shortcut), lower case', () => {
    const parsed = (s: string) => {
      try {
        const t = s.trim();
        return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(t) ? t : `http://${t}`).hostname.replace(/^\[|\]$/g, '').toLowerCase() || undefined;
      } catch {
        return undefined;
      }
    };
    assert.equal(urlHost('HTTP://C2-7.Example.TEST/stage2.ps1'), 'c2-7.example.test');
    assert.equal(urlHost('evil.example.test/x?y'), 'evil.example.test');
    // the shortcut must give the parser's answer on its edges: numbers as IPv4, punycode, ports, userinfo, other schemes, empty labels
    const parts = ['http://', 'HTTPS://', 'hTtP:', 'http:/', 'ftp://', 'ws://', 'http', '', 'a', 'Z', '0', '9', '0x', '-', '.', 'xn--', 'xn--abc', 'com', 'c2-7', '/', '?', '#', '\\', ':', ':80', '@', '%41', '\t', ' ', 'é', '[::1]', '1.2.3', '255', 'localhost', '_'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % parts.length;
    for (let k = 0; k < 20_000; k++) {
      let s = '';
      for (let j = 0, len = 1 + (k % 6); j < len; j++) s += parts[next()];
      if (s.trim()) assert.equal(urlHost(s), parsed(s), JSON.stringify(s));
    }
  });
});

describe('transform reload', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'transforms-reload-'));
    cpSync(transformsDir, dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const alert = { id: 'a1', title: 'Title', lastUpdateTime: '2025-06-10T08:00:00Z' };
  const file = () => join(dir, 'alerts.syslog.json');
  const setDisplayName = (rule: Record<string, unknown>) => {
    const t = JSON.parse(readFileSync(file(), 'utf8'));
    const i = t.fields.findIndex((f: { target: string }) => f.target === 'xdr_event.display_name');
    t.fields[i] = { target: 'xdr_event.display_name', ...rule };
    writeFileSync(file(), JSON.stringify(t, null, 2));
  };
  const displayName = (r: TransformReloader) => ((r.current().map('alerts', alert, ctx)[0]?.record.xdr_event ?? {}) as Record<string, unknown>).display_name;

  it('a failing reload keeps the previous transforms; a good one applies to the next map', () => {
    const opened = TransformReloader.open(dir);
    assert.ok(opened.ok);
    const r = opened.reloader;
    const first = r.current();
    assert.equal(displayName(r), 'Title');
    setDisplayName({ from: 'titel' });
    const bad = r.reload();
    assert.equal(bad.ok, false);
    assert.match(bad.problems[0]?.message ?? '', /did you mean "title"/);
    assert.equal(r.current(), first, 'previous transforms kept');
    assert.equal(r.failedReloads, 1);
    setDisplayName({ template: 'MDE: {title}' });
    assert.deepEqual(r.reload(), { ok: true, problems: [] });
    assert.notEqual(r.current(), first);
    assert.equal(displayName(r), 'MDE: Title');
    assert.equal(r.mapperFn(), r.current());
  });

  it('watch() reloads when a transform file changes', async () => {
    const opened = TransformReloader.open(dir, { debounceMs: 20 });
    assert.ok(opened.ok);
    const r = opened.reloader;
    const done = new Promise<{ ok: boolean }>((resolve) => r.watch(resolve));
    setDisplayName({ template: 'watched {title}' });
    try {
      assert.equal((await done).ok, true);
      assert.equal(displayName(r), 'watched Title');
    } finally {
      r.unwatch();
    }
  });

  it('logs why a reload failed and samples transform_error records', async () => {
    const log = capture();
    const logger = createLogger('info', log.stream);
    const opened = TransformReloader.open(dir, { logger });
    assert.ok(opened.ok);
    const r = opened.reloader;
    for (let i = 0; i < 3; i++) r.current().map('alerts', { id: `n${i}` }, ctx);
    setDisplayName({ from: 'titel' });
    r.reload();
    await new Promise((resolve) => setImmediate(resolve));
    const lines = log.text().trim().split('\n').map((l) => JSON.parse(l));
    const marked = lines.filter((l) => /transform_error/.test(l.msg));
    assert.equal(marked.length, 1, 'first error logged, the next ones sampled');
    assert.equal(marked[0].transform, 'alerts.syslog');
    const failed = lines.find((l) => /transform reload failed/.test(l.msg));
    assert.ok(failed);
    assert.match(failed.problems[0], /alerts\.syslog\.json:\d+: \/fields\/\d+\/from: unknown field "titel"/);
    assert.equal(r.stats.snapshot().errors['alerts.syslog'], 3);
  });

  it('the initial load refuses broken transforms', () => {
    setDisplayName({ from: 'titel' });
    const opened = TransformReloader.open(dir);
    assert.equal(opened.ok, false);
  });
});

describe('preview command', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'preview-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function run(content: string, files: string[], extra: Record<string, unknown> = {}) {
    const out = capture();
    const err = capture();
    const code = await previewCommand({ content, files, stdout: out.stream, stderr: err.stream, writeTime: 1, ...extra });
    return { code, out: out.text(), err: err.text() };
  }

  it('reads a page, an array, one object and NDJSON; prints valid NDJSON records', async () => {
    const page = fixture('alerts.syslog/fixture-page1.input.json');
    const files = {
      page: JSON.stringify(page),
      array: JSON.stringify(page.value),
      object: JSON.stringify(page.value[0]),
      ndjson: page.value.map((a: unknown) => JSON.stringify(a)).join('\n') + '\n',
    };
    for (const [name, text] of Object.entries(files)) {
      const f = join(dir, `${name}.json`);
      writeFileSync(f, text);
      const r = await run('alerts', [f]);
      assert.equal(r.code, 0, r.err);
      const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines.length, name === 'object' ? 1 : 3, name);
      const validate = indexValidator('index/syslog.schema.json');
      for (const rec of lines) assert.ok(validate(rec), JSON.stringify(validate.errors));
    }
  });

  it('host prints one record per index; --tags adds the Fluent tag', async () => {
    const f = join(dir, 'm.json');
    writeFileSync(f, JSON.stringify(fixture('host.syslog/fixture-machines.input.json')));
    const r = await run('host', [f], { tags: true });
    assert.equal(r.code, 0, r.err);
    const tags = r.out.trim().split('\n').map((l) => JSON.parse(l).tag);
    assert.deepEqual(tags, ['microsoft_defender.assets.host', 'microsoft_defender.syslog.host', 'microsoft_defender.assets.host', 'microsoft_defender.syslog.host', 'microsoft_defender.assets.host', 'microsoft_defender.syslog.host']);
  });

  it('unreadable input and bad content exit 2 (usage), records failing the schema 1, each with a message', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"value": [\n');
    const r1 = await run('alerts', [bad]);
    assert.equal(r1.code, 2);
    assert.match(r1.err, /bad\.json: invalid JSON/);
    const r2 = await run('alert', [bad]);
    assert.equal(r2.code, 2);
    assert.match(r2.err, /--content must be one of alerts, host, vulnerabilities/);
    const r3 = await run('alerts', [join(dir, 'missing.json')]);
    assert.equal(r3.code, 2);
    assert.match(r3.err, /cannot read .*missing\.json/);
    const nulls = join(dir, 'nulls.json');
    writeFileSync(nulls, JSON.stringify({ id: 'x' }));
    const r4 = await run('alerts', [nulls]);
    assert.equal(r4.code, 1);
    assert.match(r4.err, /\/timestamp is required/);
    assert.equal(JSON.parse(r4.out).transform_error, 'index schema check failed: /timestamp is required');
  });
});

describe('docs command', () => {
  it('docs/fields.md is in sync with the transform files (run `defender-fluent docs`)', () => {
    const loaded = loadTransformDir(transformsDir);
    assert.deepEqual(loaded.problems, []);
    assert.equal(readFileSync(join(packageRoot, defaultFieldsDoc), 'utf8'), renderFieldsDoc(loaded.transforms, loaded.lookups));
  });

  it('lists every output field of every transform and writes the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'docs-'));
    try {
      const out = join(dir, 'fields.md');
      const code = await docsCommand({ out, stdout: capture().stream });
      assert.equal(code, 0);
      const text = readFileSync(out, 'utf8');
      for (const t of loadTransformDir(transformsDir).transforms) {
        assert.match(text, new RegExp(`## ${t.name.replace('.', '\\.')}`));
        for (const f of t.source.fields) assert.ok(text.includes(`| \`${f.target}\` |`), `${t.name}: ${f.target}`);
      }
      assert.equal(await docsCommand({ out, check: true, stderr: capture().stream }), 0);
      writeFileSync(out, text + 'edited');
      assert.equal(await docsCommand({ out, check: true, stderr: capture().stream }), 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
