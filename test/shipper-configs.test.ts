import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { packageRoot } from '../plugin/paths.js';
import { tagFor, tagSuffix, type OutRecord } from '../plugin/output/sink.js';
import { StdoutSink } from '../plugin/output/stdout.js';
import { forwardDefaults } from '../plugin/output/forward.js';
import { checkAlertUpdateRequest } from '../plugin/respond/validate.js';

// Checks fluent.conf.example and fluent-bit.yaml.example against what the plugin emits: every tag
// of plugin/output/sink.ts (prefix microsoft_defender) reaches the outputs DESIGN.md assigns it.

const prefix = 'microsoft_defender';
const fluentConfText = readFileSync(join(packageRoot, 'fluent.conf.example'), 'utf8');
const fluentBitText = readFileSync(join(packageRoot, 'fluent-bit.yaml.example'), 'utf8');

// --- Fluentd config format (the subset the example uses) ----------------------------------------

interface Section {
  name: string;
  arg: string;
  params: Record<string, string>;
  children: Section[];
  line: number;
}

/** Parses Fluentd's config syntax: `<name arg>` … `</name>`, `key value`, `#` comments. */
function parseFluentd(text: string, file = 'fluent.conf'): Section {
  const root: Section = { name: 'ROOT', arg: '', params: {}, children: [], line: 0 };
  const stack = [root];
  text.split('\n').forEach((raw, i) => {
    const line = stripComment(raw).trim();
    if (!line) return;
    const at = `${file}:${i + 1}`;
    const close = /^<\/([\w@]+)\s*>$/.exec(line);
    if (close) {
      const top = stack.pop();
      if (!top || top === root || top.name !== close[1]) throw new Error(`${at}: </${close[1]}> does not close <${top?.name}>`);
      return;
    }
    const open = /^<([\w@]+)(?:\s+([^>]*))?>$/.exec(line);
    if (open) {
      const section: Section = { name: open[1]!, arg: (open[2] ?? '').trim(), params: {}, children: [], line: i + 1 };
      stack.at(-1)!.children.push(section);
      stack.push(section);
      return;
    }
    const param = /^(\S+)\s+(.*)$/.exec(line) ?? /^(\S+)$/.exec(line);
    if (!param || line.startsWith('<')) throw new Error(`${at}: cannot parse "${line}"`);
    stack.at(-1)!.params[param[1]!] = unquote((param[2] ?? '').trim());
  });
  if (stack.length !== 1) throw new Error(`${file}: <${stack.at(-1)!.name}> (line ${stack.at(-1)!.line}) is never closed`);
  return root;
}

/** A `#` starts a comment at the line start or after whitespace, outside quotes (`"#{ENV[…]}"` is not one). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/**
 * Fluentd's tag pattern (lib/fluent/match.rb GlobMatchPattern): `*` one tag part, `**` zero or
 * more parts (`a.**` matches `a` too), `{x,y}` alternatives, `/re/` a regexp.
 */
function fluentdPattern(pat: string): RegExp {
  if (pat.startsWith('/') && pat.endsWith('/') && pat.length > 1) return new RegExp(`^${pat.slice(1, -1)}$`);
  const stack: string[][] = [];
  const regex = [''];
  let dot = false;
  let escape = false;
  const append = (s: string) => (regex[regex.length - 1] += s);
  const union = (parts: string[]) => `(?:${parts.join('|')})`;
  for (let i = 0; i < pat.length; ) {
    const c = pat[i]!;
    if (escape) {
      append(c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      escape = false;
      i++;
      continue;
    }
    if (pat.startsWith('**', i)) {
      if (dot) append('(?![^.])');
      dot = false;
      if (pat[i + 2] === '.') {
        append('(?:.*\\.|^)');
        i += 3;
      } else {
        append('.*');
        i += 2;
      }
      continue;
    }
    if (dot) {
      append('\\.');
      dot = false;
    }
    if (c === '\\') escape = true;
    else if (c === '.') dot = true;
    else if (c === '*') append('[^.]*');
    else if (c === '{') {
      stack.push([]);
      regex.push('');
    } else if (c === '}' && stack.length) {
      stack.at(-1)!.push(regex.pop()!);
      append(union(stack.pop()!));
    } else if (c === ',' && stack.length) {
      stack.at(-1)!.push(regex.pop()!);
      regex.push('');
    } else if (/[A-Za-z0-9_]/.test(c)) append(c);
    else append(`\\${c}`);
    i++;
  }
  while (stack.length) {
    stack.at(-1)!.push(regex.pop()!);
    append(union(stack.pop()!));
  }
  return new RegExp(`^${regex.at(-1)}$`);
}

/** `<match a b>`: any of the space-separated patterns. */
function fluentdMatches(arg: string, tag: string): boolean {
  return arg.split(/\s+/).filter(Boolean).some((p) => fluentdPattern(p).test(tag));
}

/** A Ruby regexp literal `/…/` as a JS RegExp (the syntax the examples use is common to both). */
function rubyRegexp(literal: string): RegExp {
  const m = /^\/(.*)\/([imx]*)$/.exec(literal);
  assert.ok(m, `not a regexp literal: ${literal}`);
  return new RegExp(m[1]!, m[2]!.replace('x', ''));
}

interface Route {
  outputs: string[];
  /** `<label> <match pattern>` of every <match> the event went through */
  via: string[];
}

/** Follows one event through the config: filters (grep) and first-match <match>, copy, relabel. */
function routeFluentd(root: Section, tag: string, record: Record<string, unknown>): Route {
  const labels = new Map(root.children.filter((s) => s.name === 'label').map((s) => [s.arg, s]));
  const forward = root.children.find((s) => s.name === 'source' && s.params['@type'] === 'forward');
  assert.ok(forward, 'a <source> @type forward');
  const route: Route = { outputs: [], via: [] };
  const flow = (scope: Section) => {
    for (const s of scope.children) {
      if (s.name === 'filter' && fluentdMatches(s.arg, tag)) {
        if (s.params['@type'] === 'grep' && !grepKeeps(s, record)) return;
      } else if (s.name === 'match' && fluentdMatches(s.arg, tag)) {
        route.via.push(`${scope.arg || 'ROOT'} ${s.arg}`);
        return output(s);
      }
    }
  };
  const output = (s: Section): void => {
    if (s.params['@type'] === 'copy') return s.children.filter((c) => c.name === 'store').forEach(output);
    if (s.params['@type'] === 'relabel') {
      const label = labels.get(s.params['@label']!);
      assert.ok(label, `<label ${s.params['@label']}> exists`);
      return flow(label);
    }
    route.outputs.push(s.params['@id'] ?? `@type ${s.params['@type']}`);
  };
  flow(forward.params['@label'] ? labels.get(forward.params['@label'])! : root);
  return route;
}

function grepKeeps(filter: Section, record: Record<string, unknown>): boolean {
  const test = (s: Section) => rubyRegexp(s.params.pattern!).test(String(record[s.params.key!] ?? ''));
  const regexps = filter.children.filter((c) => c.name === 'regexp');
  const excludes = filter.children.filter((c) => c.name === 'exclude');
  return regexps.every(test) && !excludes.some(test);
}

function sizeBytes(v: string): number {
  const m = /^(\d+)\s*([kmg]?)b?$/i.exec(v.trim());
  assert.ok(m, `size ${v}`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
}

// --- what the plugin emits, and where DESIGN.md sends it -----------------------------------------

const critical = { severity: 80, event_score: 80, event_score_band: 'critical', microsoft_defender: { id: 'da1', machineId: 'm1' } };
const major = { severity: 60, event_score: 60, event_score_band: 'major', microsoft_defender: { id: 'da2', machineId: 'm1' } };
const generic = { msg_class: 'x' };

type Destination = 'syslog' | 'assets' | 'contain';
const cases: { suffix: keyof typeof tagSuffix; record: Record<string, unknown>; expect: Destination[]; note: string }[] = [
  { suffix: 'alerts', record: critical, expect: ['syslog', 'contain'], note: 'critical alert' },
  { suffix: 'alerts', record: major, expect: ['syslog'], note: 'major alert' },
  { suffix: 'hostSyslog', record: generic, expect: ['syslog'], note: '' },
  { suffix: 'hostAssets', record: generic, expect: ['assets'], note: '' },
  { suffix: 'vulnerabilities', record: generic, expect: ['syslog'], note: '' },
  { suffix: 'machineActions', record: generic, expect: ['syslog'], note: '' },
  { suffix: 'hunting', record: generic, expect: ['syslog'], note: '' },
  { suffix: 'status', record: generic, expect: ['syslog'], note: '' },
  { suffix: 'audit', record: generic, expect: ['syslog'], note: '' },
];

describe('shipper configs route every tag the plugin emits', () => {
  it('the cases cover every tagSuffix of plugin/output/sink.ts', () => {
    assert.deepEqual([...new Set(cases.map((c) => c.suffix))].sort(), Object.keys(tagSuffix).sort());
  });

  describe('fluent.conf.example (Fluentd)', () => {
    const conf = parseFluentd(fluentConfText);
    const names: Record<Destination, string> = { syslog: 'out_syslog_index', assets: 'out_assets_index', contain: 'out_response_sidecar' };

    for (const c of cases) {
      const tag = tagFor(prefix, tagSuffix[c.suffix]);
      it(`${tag}${c.note ? ` (${c.note})` : ''} -> ${c.expect.join(' + ')}`, () => {
        const route = routeFluentd(conf, tag, c.record);
        assert.deepEqual(route.outputs.sort(), c.expect.map((d) => names[d]).sort());
        assert.ok(!route.via.includes('@DEFENDER **'), `routed explicitly, not by the catch-all (via ${route.via.join(' / ')})`);
      });
    }

    it('an unknown tag under the prefix is kept (catch-all), not dropped', () => {
      const route = routeFluentd(conf, `${prefix}.something.new`, generic);
      assert.deepEqual(route.outputs, [names.syslog]);
      assert.equal(route.via[0], '@DEFENDER **');
    });

    it('in_forward: 127.0.0.1, shared_key from the environment, limits above the sink’s', () => {
      const src = conf.children.find((s) => s.name === 'source' && s.params['@type'] === 'forward')!;
      assert.equal(src.params.bind, '127.0.0.1');
      const security = src.children.find((s) => s.name === 'security');
      assert.ok(security, '<security>');
      assert.match(security.params.shared_key!, /^#\{ENV\['\w+'\]\}$/);
      assert.notEqual(security.params.self_hostname, forwardDefaults.clientHostname);
      assert.ok(sizeBytes(src.params.chunk_size_limit!) > forwardDefaults.maxBatchBytes);
    });

    it('out_http to the sidecar: POST /v1/fluent/contain, JSON array, Bearer token from the environment', () => {
      const contain = conf.children.find((s) => s.name === 'label' && s.arg === '@CONTAIN')!;
      const http = contain.children.find((s) => s.name === 'match')!;
      assert.equal(http.params['@type'], 'http');
      assert.equal(http.params.endpoint, 'http://127.0.0.1:8686/v1/fluent/contain');
      assert.equal(http.params.http_method, 'post');
      assert.equal(http.params.json_array, 'true');
      const headers = JSON.parse(http.params.headers!) as Record<string, string>;
      assert.match(headers.Authorization!, /^Bearer #\{ENV\['\w+'\]\}$/);
    });

    it('the SOC close route: in_http -> status Resolved -> out_http POST /v1/fluent/update-alert (JSON array, Bearer token, 429/503 retried); the records it sends pass the update-alert check', () => {
      const block = /# --- BEGIN SOC close route ---\n([\s\S]*?)# --- END SOC close route ---/.exec(fluentConfText);
      assert.ok(block, 'marked block');
      const soc = parseFluentd(block[1]!.replace(/^#( |$)/gm, ''), 'fluent.conf.example (SOC close block)');
      const source = soc.children.find((s) => s.name === 'source')!;
      assert.equal(source.params['@type'], 'http');
      assert.equal(source.params.bind, '127.0.0.1');
      const label = soc.children.find((s) => s.name === 'label' && s.arg === source.params['@label'])!;
      const filter = label.children.find((s) => s.name === 'filter')!;
      const http = label.children.find((s) => s.name === 'match')!;
      assert.equal(filter.arg, http.arg, 'the filter sees what the match sends');
      assert.equal(http.params['@type'], 'http');
      assert.equal(http.params.endpoint, 'http://127.0.0.1:8686/v1/fluent/update-alert');
      assert.equal(http.params.http_method, 'post');
      assert.equal(http.params.json_array, 'true');
      assert.deepEqual(http.params.retryable_response_codes!.split(',').map(Number).sort(), [429, 503]);
      const headers = JSON.parse(http.params.headers!) as Record<string, string>;
      assert.match(headers.Authorization!, /^Bearer #\{ENV\['\w+'\]\}$/);
      // the documented SOC record, as the record_transformer leaves it, is a valid update-alert body
      const added = filter.children.find((s) => s.name === 'record')!.params;
      assert.equal(added.status, 'Resolved');
      const curl = /-d '(\{.*\})'/.exec(fluentConfText);
      assert.ok(curl, 'an example record');
      const example = JSON.parse(curl[1]!.replace('…', '0123456789')) as Record<string, unknown>;
      assert.equal(checkAlertUpdateRequest({ ...example, ...added }).status, 'Resolved');
    });

    it('the in_exec alternative parses the stdout sink’s NDJSON into tag, millisecond time and record', async () => {
      const block = /# --- BEGIN in_exec alternative ---\n([\s\S]*?)# --- END in_exec alternative ---/.exec(fluentConfText);
      assert.ok(block, 'marked block');
      const exec = parseFluentd(block[1]!.replace(/^#( |$)/gm, ''), 'fluent.conf.example (in_exec block)');
      const source = exec.children.find((s) => s.name === 'source')!;
      assert.equal(source.params['@type'], 'exec');
      assert.match(source.params.command!, /^defender-fluent run --once --output stdout --config \S+$/);
      assert.ok(source.params.run_interval);
      const parse = source.children.find((s) => s.name === 'parse')!;
      const extract = source.children.find((s) => s.name === 'extract')!;
      assert.equal(parse.params.time_key, 'time');
      assert.equal(parse.params.time_format, '%Q'); // epoch milliseconds, from the string capture
      assert.equal(extract.params.tag_key, 'tag');
      const unwrap = exec.children.find((s) => s.name === 'label' && s.arg === source.params['@label'])!;
      const parser = unwrap.children.find((s) => s.name === 'filter')!;
      assert.equal(parser.params.key_name, 'record');
      assert.equal(parser.params.reserve_time, 'true');
      assert.equal(unwrap.children.find((s) => s.name === 'match')!.params['@label'], '@DEFENDER');

      // the real stdout sink output through the expression
      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => (text += d.toString()));
      const records: OutRecord[] = Object.values(tagSuffix).map((s, i) => ({
        tag: tagFor(prefix, s),
        time: 1_764_300_000_001 + i * 111,
        record: { id: `r${i}`, text: 'quote " brace } unicode é', nested: { a: [1, { b: '}' }] } },
      }));
      const sink = new StdoutSink(out);
      await sink.deliver(records);
      await sink.close(1000);
      const re = rubyRegexp(parse.params.expression!);
      const lines = text.trimEnd().split('\n');
      assert.equal(lines.length, records.length);
      lines.forEach((line, i) => {
        const m = re.exec(line);
        assert.ok(m?.groups, `line ${i + 1} matches`);
        assert.equal(m.groups.tag, records[i]!.tag);
        assert.equal(Number(m.groups.time), records[i]!.time);
        assert.deepEqual(JSON.parse(m.groups.record!), records[i]!.record);
      });
    });
  });

  describe('fluent-bit.yaml.example (Fluent Bit)', () => {
    interface Plugin {
      name: string;
      match?: string;
      match_regex?: string;
      alias?: string;
      rule?: string;
      [k: string]: unknown;
    }
    const doc = parseYaml(fluentBitText) as { pipeline: { inputs: Plugin[]; filters?: Plugin[]; outputs: Plugin[] } };
    const names: Record<Destination, string> = { syslog: 'syslog_index', assets: 'assets_index', contain: 'response_sidecar' };

    /** Fluent Bit's router: `*` matches any characters (dots too); or match_regex. */
    const fits = (p: Plugin, tag: string) => {
      if (p.match_regex) return new RegExp(p.match_regex).test(tag);
      if (p.match === undefined) return false;
      const re = new RegExp(`^${p.match.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
      return re.test(tag);
    };

    /** Every output that receives the event; rewrite_tag re-emits copies at the start of the pipeline. */
    const route = (tag: string, record: Record<string, unknown>, depth = 0): string[] => {
      assert.ok(depth < 5, 'rewrite_tag loop');
      const outputs: string[] = [];
      for (const f of doc.pipeline.filters ?? []) {
        if (!fits(f, tag) || f.name !== 'rewrite_tag') continue;
        const [key, regex, newTag, keep] = f.rule!.split(/\s+/);
        const m = new RegExp(regex!).exec(String(record[key!.replace(/^\$/, '')] ?? ''));
        if (!m) continue;
        outputs.push(...route(newTag!.replace(/\$(\d)/g, (_, n: string) => m[Number(n)] ?? ''), record, depth + 1));
        if (keep === 'false') return outputs;
      }
      for (const o of doc.pipeline.outputs) if (fits(o, tag)) outputs.push(o.alias ?? o.name);
      return outputs;
    };

    for (const c of cases) {
      const tag = tagFor(prefix, tagSuffix[c.suffix]);
      it(`${tag}${c.note ? ` (${c.note})` : ''} -> ${c.expect.join(' + ')}`, () => {
        assert.deepEqual(route(tag, c.record).sort(), c.expect.map((d) => names[d]).sort());
      });
    }

    it('forward input: 127.0.0.1, shared key from the environment, no tag override, buffer above the sink’s batches', () => {
      const fwd = doc.pipeline.inputs.find((i) => i.name === 'forward')!;
      assert.equal(fwd.listen, '127.0.0.1');
      assert.match(String(fwd.shared_key), /^\$\{\w+\}$/);
      assert.notEqual(fwd.self_hostname, forwardDefaults.clientHostname);
      assert.equal(fwd.tag, undefined);
      assert.ok(sizeBytes(String(fwd.buffer_max_size)) > forwardDefaults.maxBatchBytes);
    });

    it('http output to the sidecar with a Bearer token from the environment', () => {
      const http = doc.pipeline.outputs.find((o) => o.alias === names.contain)!;
      assert.equal(http.name, 'http');
      assert.equal(`${String(http.host)}:${String(http.port)}${String(http.uri)}`, '127.0.0.1:8686/v1/fluent/contain');
      assert.equal(http.format, 'json');
      assert.match(String(http.header), /^Authorization Bearer \$\{\w+\}$/);
    });
  });

  it('Fluentd tag patterns behave like Fluentd’s', () => {
    const yes: [string, string][] = [
      ['a.*', 'a.b'], ['a.**', 'a'], ['a.**', 'a.b.c'], ['**', 'x.y'], ['a.{b,c}', 'a.c'], ['a.{b,c}.**', 'a.b.d.e'], ['**.z', 'z'], ['**.z', 'x.y.z'], ['/a\\.(b|c)/', 'a.c'],
    ];
    const no: [string, string][] = [['a.*', 'a.b.c'], ['a.*', 'a'], ['a.**', 'ab'], ['a.{b,c}', 'a.d'], ['a.b', 'a.bc'], ['**.z', 'xz']];
    for (const [p, t] of yes) assert.ok(fluentdPattern(p).test(t), `${p} matches ${t}`);
    for (const [p, t] of no) assert.ok(!fluentdPattern(p).test(t), `${p} does not match ${t}`);
  });
});
