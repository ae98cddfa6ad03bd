import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { packageRoot, schemaDir } from '../plugin/paths.js';
import { tagFor, tagSuffix, type OutRecord } from '../plugin/output/sink.js';
import { StdoutSink, stdoutLine } from '../plugin/output/stdout.js';
import { forwardDefaults } from '../plugin/output/forward.js';
import { commentedBlock, fluentdMatches, fluentdPattern, parseFluentd, rubyRegexp, type Section } from './helpers/fluentd-config.js';
import { createLogger } from '../plugin/log.js';
import { RespondServer } from '../plugin/respond/server.js';
import { MemorySink } from './helpers/memory-sink.js';
import { call, loadFixture, respondConfig, tokens } from './respond-helpers.js';
import { checkAlertUpdateRequest } from '../plugin/respond/validate.js';

// Checks fluent.conf.example and fluent-bit.yaml.example against what the plugin emits: every tag
// of plugin/output/sink.ts (prefix microsoft_defender) reaches the outputs DESIGN.md assigns it.

const prefix = 'microsoft_defender';
const fluentConfText = readFileSync(join(packageRoot, 'fluent.conf.example'), 'utf8');
const fluentBitText = readFileSync(join(packageRoot, 'fluent-bit.yaml.example'), 'utf8');

interface Route {
  outputs: string[];
  /** `<label> <match pattern>` of every <match> the event went through */
  via: string[];
  /** set when an event came back to a <match> it had already passed with the same tag */
  loop?: string;
}

/**
 * Follows one event through the config as Fluentd routes it (docs: "Config File Syntax", "Routing"):
 * within a label (or the top level) filters apply in order and the FIRST matching <match> takes the
 * event; copy, relabel, and exec_filter, which emits what its child returns under its `tag` (or
 * into its @label) from the top again. `from` is where the event enters: the forward source's
 * label by default, 'ROOT' for an input without @label.
 */
function routeFluentd(root: Section, tag: string, record: Record<string, unknown>, from?: 'ROOT'): Route {
  const labels = new Map(root.children.filter((s) => s.name === 'label').map((s) => [s.arg, s]));
  const route: Route = { outputs: [], via: [] };
  const seen = new Set<string>();
  const flow = (scope: Section, tag: string): void => {
    for (const s of scope.children) {
      if (s.name === 'filter' && fluentdMatches(s.arg, tag)) {
        if (s.params['@type'] === 'grep' && !grepKeeps(s, record)) return;
      } else if (s.name === 'match' && fluentdMatches(s.arg, tag)) {
        const at = `${scope.arg || 'ROOT'} ${s.arg}`;
        if (seen.has(`${at} ${tag}`)) {
          route.loop = `${tag} came back to <match ${s.arg}>`;
          return;
        }
        seen.add(`${at} ${tag}`);
        route.via.push(at);
        return output(s, tag);
      }
    }
  };
  const labelled = (name: string | undefined): Section => {
    if (!name) return root;
    const label = labels.get(name);
    assert.ok(label, `<label ${name}> exists`);
    return label;
  };
  const output = (s: Section, tag: string): void => {
    if (s.params['@type'] === 'copy') return s.children.filter((c) => c.name === 'store').forEach((c) => output(c, tag));
    if (s.params['@type'] === 'relabel') return flow(labelled(s.params['@label']), tag);
    if (s.params['@type'] === 'exec_filter') {
      assert.ok(s.params.tag, 'exec_filter has a tag for what its child returns');
      return flow(labelled(s.params['@label']), s.params.tag);
    }
    route.outputs.push(s.params['@id'] ?? `@type ${s.params['@type']}`);
  };
  if (from === 'ROOT') flow(root, tag);
  else {
    const forward = root.children.find((s) => s.name === 'source' && s.params['@type'] === 'forward');
    assert.ok(forward, 'a <source> @type forward');
    flow(labelled(forward.params['@label']), tag);
  }
  return route;
}

/**
 * Fluentd's TimeParser for the strptime conversions the examples use (%Y %m %d %H %M %S, %L
 * milliseconds, %z: Z or ±hh[:]mm), literal characters otherwise. Epoch milliseconds.
 */
function strptimeMs(format: string, value: string): number {
  const fields: Record<string, string> = { Y: '(\\d{4})', m: '(\\d{2})', d: '(\\d{2})', H: '(\\d{2})', M: '(\\d{2})', S: '(\\d{2})', L: '(\\d{3})', z: '(Z|[+-]\\d{2}:?\\d{2})' };
  const order: string[] = [];
  const re = format.replace(/%(.)|([^%])/g, (_, f: string | undefined, lit: string | undefined) => {
    if (lit !== undefined) return lit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.ok(fields[f!], `conversion %${f} not supported here`);
    order.push(f!);
    return fields[f!]!;
  });
  const m = new RegExp(`^${re}$`).exec(value);
  assert.ok(m, `${value} does not match ${format}`);
  const v = Object.fromEntries(order.map((f, i) => [f, m[i + 1]!]));
  const zone = !v.z || v.z === 'Z' ? 0 : (v.z[0] === '-' ? -1 : 1) * (Number(v.z.slice(1, 3)) * 60 + Number(v.z.slice(-2))) * 60_000;
  return Date.UTC(Number(v.Y), Number(v.m) - 1, Number(v.d), Number(v.H), Number(v.M), Number(v.S), Number(v.L ?? 0)) - zone;
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

/** A Fluentd time value (`30s`, `5m`, `1h`, `1d`, or seconds) in seconds. */
function durationSeconds(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(v.trim());
  assert.ok(m, `duration ${v}`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const labelNames = (conf: Section) => conf.children.filter((s) => s.name === 'label').map((s) => s.arg);

function sidecarOutput(conf: Section): Section {
  const contain = conf.children.find((s) => s.name === 'label' && s.arg === '@CONTAIN')!;
  return contain.children.find((s) => s.name === 'match')!;
}

/** respond.maxBodyBytes when not set (the schema's default, which the sidecar applies). */
const defaultMaxBodyBytes = (JSON.parse(readFileSync(join(schemaDir, 'config.schema.json'), 'utf8')) as { definitions: { respond: { properties: { maxBodyBytes: { default: number } } } } }).definitions.respond.properties.maxBodyBytes.default;

const makeLines = (): OutRecord[] => [0, 1, 999, 1_764_300_000_001, 1_764_300_059_999].map((time) => ({ tag: 'microsoft_defender.status', time, record: { i: time } }));

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

    it('out_http to the sidecar: POST /v1/fluent/contain, JSON array, Bearer token from the environment, 503 retryable', () => {
      const http = sidecarOutput(conf);
      assert.equal(http.params['@type'], 'http');
      assert.equal(http.params.endpoint, 'http://127.0.0.1:8686/v1/fluent/contain');
      assert.equal(http.params.http_method, 'post');
      assert.equal(http.params.json_array, 'true');
      const headers = JSON.parse(http.params.headers!) as Record<string, string>;
      assert.match(headers.Authorization!, /^Bearer #\{ENV\['\w+'\]\}$/);
      // Fluentd v2 drops 503 from the default list; the sidecar's "retry me" answer must stay retryable
      assert.deepEqual(JSON.parse(http.params.retryable_response_codes!), [503]);
    });

    it('out_http bodies fit the sidecar: a full chunk as out_http’s JSON array is judged, one byte over the limit gets 413', async () => {
      const buffer = sidecarOutput(conf).children.find((c) => c.name === 'buffer')!;
      assert.ok(buffer.params.chunk_limit_size, 'an explicit chunk_limit_size (Fluentd’s default is 8 MB)');
      const chunkLimit = sizeBytes(buffer.params.chunk_limit_size);
      assert.ok(chunkLimit + 2 <= defaultMaxBodyBytes, `${buffer.params.chunk_limit_size} + 2 > ${defaultMaxBodyBytes}`);
      // out_http json_array: each record formatted as JSON plus ",", the body "[" + chunk.chop + "]"
      const alert = { ...loadFixture('alert-record.json'), tenant_name: 'acme', engid_name: 'microsoft_defender_acme-mde' };
      const formatted = JSON.stringify(alert) + ',';
      const chunk = formatted.repeat(Math.floor(chunkLimit / Buffer.byteLength(formatted)));
      const body = `[${chunk.slice(0, -1)}]`;
      const server = new RespondServer({ config: respondConfig(), sink: new MemorySink(), logger: createLogger('warn', new PassThrough().resume()) });
      const { url } = await server.listen('127.0.0.1:0');
      try {
        const full = await call(url, 'POST', '/v1/fluent/contain', { token: tokens.fluent, raw: body, contentType: 'application/json' });
        assert.equal(full.status, 200, full.text.slice(0, 300));
        assert.equal(full.json.results.length, chunk.length / formatted.length, 'every record judged (refused: respond.auto is off)');
        const over = await call(url, 'POST', '/v1/fluent/contain', { token: tokens.fluent, raw: ' '.repeat(defaultMaxBodyBytes + 1), contentType: 'application/json' });
        assert.equal(over.status, 413, 'the sidecar’s default limit is the schema’s');
      } finally {
        await server.close();
      }
    });

    it('the SOC close route: in_http -> status Resolved -> out_http POST /v1/fluent/update-alert (JSON array, Bearer token, 429/503 retried); the records it sends pass the update-alert check', () => {
      const soc = parseFluentd(commentedBlock(fluentConfText, 'SOC close route'), 'fluent.conf.example (SOC close block)');
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
      assert.deepEqual(JSON.parse(http.params.retryable_response_codes!), [429, 503]);
      const buffer = http.children.find((c) => c.name === 'buffer')!;
      assert.ok(sizeBytes(buffer.params.chunk_limit_size!) + 2 <= defaultMaxBodyBytes, 'a chunk fits respond.maxBodyBytes');
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

    it('the in_exec alternative reads the stdout sink’s lines with the JSON parser: tag, millisecond time, record', async () => {
      const exec = parseFluentd(commentedBlock(fluentConfText, 'in_exec alternative'), 'fluent.conf.example (in_exec block)');
      const source = exec.children.find((s) => s.name === 'source')!;
      assert.equal(source.params['@type'], 'exec');
      assert.match(source.params.command!, /^defender-fluent run --once --output stdout --config \S+$/);
      // in_exec first runs the command only after run_interval: keep that wait short
      assert.ok(source.params.run_interval && durationSeconds(source.params.run_interval) <= 60, `run_interval ${source.params.run_interval}`);
      assert.ok(labelNames(conf).includes(source.params['@label']!), 'into a label the file defines');
      const parse = source.children.find((s) => s.name === 'parse')!;
      const extract = source.children.find((s) => s.name === 'extract')!;
      assert.equal(parse.params['@type'], 'json', 'a JSON parser: a regexp on the binary output scrubbed non-ASCII text');
      assert.equal(parse.params.time_type, 'string');

      // the real stdout sink's output through what that parser and <extract> do
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
      const lines = text.trimEnd().split('\n');
      assert.equal(lines.length, records.length);
      lines.forEach((line, i) => {
        const record = JSON.parse(line) as Record<string, unknown>;
        const time = strptimeMs(parse.params.time_format!, String(record[parse.params.time_key!]));
        delete record[parse.params.time_key!]; // keep_time_key false
        const tag = record[extract.params.tag_key!];
        delete record[extract.params.tag_key!]; // keep_tag_key false
        assert.deepEqual({ tag, time, record }, records[i]);
        assert.ok(routeFluentd(conf, records[i]!.tag, record).outputs.length > 0, `${records[i]!.tag} is routed`);
      });
    });

    describe('suppress-av exec_filter (first matching <match> wins)', () => {
      const block = commentedBlock(fluentConfText, 'suppress-av');
      const withBlock = parseFluentd(`${block}\n${fluentConfText}`, 'fluent.conf.example with the suppress-av block');
      const filter = withBlock.children.find((s) => s.name === 'match' && s.params['@type'] === 'exec_filter')!;
      const av = { Channel: 'Microsoft-Windows-Windows Defender/Operational', EventID: 1116, tenant_name: 'acme' };

      it('a Windows event goes through suppress-av once, then to the operator’s own output', () => {
        assert.match(filter.params.command!, /^defender-fluent suppress-av --config \S+$/);
        const route = routeFluentd(withBlock, 'winevt.security', av, 'ROOT');
        assert.equal(route.loop, undefined);
        assert.deepEqual(route.outputs, ['out_windows_events']);
        assert.deepEqual(route.via, [`ROOT ${filter.arg}`, `ROOT ${filter.params.tag}`]);
        assert.ok(!fluentdMatches(filter.arg, filter.params.tag!), `the re-emit tag ${filter.params.tag} lies outside ${filter.arg}`);
      });

      it('the old re-emit tag winevt.deduplicated came back to the same <match>: kept events never left it', () => {
        const old = parseFluentd(`${block.replace(/^(\s*tag) \S+$/m, '$1 winevt.deduplicated')}\n${fluentConfText}`);
        const route = routeFluentd(old, 'winevt.security', av, 'ROOT');
        assert.deepEqual(route.outputs, []);
        assert.match(route.loop ?? '', /winevt\.deduplicated came back to <match winevt\.\*\*>/);
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

    it('the exec alternative’s parser reads the stdout sink’s time (the same strptime conversions as Fluentd’s)', () => {
      const parsers = (parseYaml(fluentBitText) as { parsers: Plugin[] }).parsers;
      const json = parsers.find((p) => p.name === 'defender_json')!;
      assert.equal(json.format, 'json');
      assert.match(fluentBitText, /^ {4}# {3}parser: defender_json$/m, 'the commented exec input uses it');
      const records = makeLines();
      for (const r of records) {
        const line = JSON.parse(stdoutLine(r)) as Record<string, unknown>;
        assert.equal(strptimeMs(String(json.time_format), String(line[String(json.time_key)])), r.time);
      }
      assert.ok(fluentBitText.includes('#   rule: $tag ^(microsoft_defender\\..+)$ $1 false'), 'the commented rewrite_tag routes by the line’s tag');
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
      ['a.*', 'a.b'], ['a.**', 'a'], ['a.**', 'a.b.c'], ['**', 'x.y'], ['a.{b,c}', 'a.c'], ['a.{b,c}.**', 'a.b.d.e'], ['**.z', 'z'], ['**.z', 'x.y.z'], ['/a\\.(b|c)/', 'a.c'], ['winevt.**', 'winevt.deduplicated'],
    ];
    const no: [string, string][] = [['a.*', 'a.b.c'], ['a.*', 'a'], ['a.**', 'ab'], ['a.{b,c}', 'a.d'], ['a.b', 'a.bc'], ['**.z', 'xz'], ['winevt.**', 'av_checked.winevt'], ['winevt.**', 'winevtx']];
    for (const [p, t] of yes) assert.ok(fluentdPattern(p).test(t), `${p} matches ${t}`);
    for (const [p, t] of no) assert.ok(!fluentdPattern(p).test(t), `${p} does not match ${t}`);
  });
});
