// `npm run test:fluentd`: fluent.conf.example run in a REAL Fluentd (not part of `npm test`).
//
// Fluentd comes from ../shared/tools/real-fluentd (Debian's Ruby gems and a fluent/fluentd source
// snapshot; REAL_FLUENTD_TOOL names another run.sh, FLUENTD_TAG another release: v1.14.4 by default,
// v1.15.3 passes too). Without it the suite says why and skips.
// The example runs as written, with only what cannot run here swapped: the data-lake outputs
// (OpenSearch) become `@type file`, ports and paths point at this test's own, `defender-fluent` is
// this checkout's CLI, and in_exec's run_interval is 2s. The collector runs under in_exec against
// the built-in emulator, the response sidecar is the real server.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { loadConfig } from '../../plugin/config/load.js';
import { DefenderClient, type RequestOptions } from '../../plugin/defender/client.js';
import type { ActionClient } from '../../plugin/defender/machine-actions.js';
import { startEmulator, type Emulator } from '../../plugin/emulate/index.js';
import { createLogger } from '../../plugin/log.js';
import { ForwardSink } from '../../plugin/output/forward.js';
import { tagSuffix, type OutRecord } from '../../plugin/output/sink.js';
import { packageRoot } from '../../plugin/paths.js';
import { RespondServer } from '../../plugin/respond/server.js';
import { fluentdPattern, parseFluentd, type Section } from '../helpers/fluentd-config.js';
import { MemorySink } from '../helpers/memory-sink.js';
import { auditLines, loadFixture } from '../respond-helpers.js';
import { freePort } from '../helpers/free-port.js';
import { until } from '../helpers/until.js';

const tool = process.env.REAL_FLUENTD_TOOL ?? join(packageRoot, '..', 'shared', 'tools', 'real-fluentd', 'run.sh');
const sharedKey = 'fluentd-test-shared-key';
const unreadable = { id: 'c'.repeat(40), failing: true };
const respondToken = 'fluentd-test-respond-token-0123456789';

type Line = Record<string, unknown> & { fluent_tag: string; fluent_time: string };

/**
 * Every event written by the file output `prefix` in `dir`: its files, or (`buffered`, once Fluentd
 * has stopped) the chunks in its file buffer (a persistent buffer is not flushed at shutdown).
 * Both hold formatted lines: JSON, or out_file's own `time<TAB>tag<TAB>JSON`.
 */
function readLines(dir: string, prefix: string, buffered = false): Line[] {
  const files = (d: string, keep: (f: string) => boolean) => (existsSync(d) ? readdirSync(d).filter((f) => keep(f) && f.endsWith('.log')).map((f) => join(d, f)) : []);
  return (buffered ? files(join(dir, prefix), (f) => f.startsWith('buffer.')) : files(dir, (f) => f.startsWith(prefix)))
    .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Line);
}

/** The commented block between the BEGIN/END markers, uncommented, in its place. */
function uncomment(text: string, name: string): string {
  return text.replace(new RegExp(`# --- BEGIN ${name} ---\n([\\s\\S]*?)# --- END ${name} ---`), (_, block: string) => block.replace(/^#( |$)/gm, ''));
}

/** A file output standing in for a data-lake index: one JSON line per event, tag and time injected. */
function fileLabel(label: string, id: string, out: string): string {
  return `<label ${label}>
  <match **>
    @type file
    @id ${id}
    path ${join(out, id)}
    append true
    <format>
      @type json
    </format>
    <inject>
      tag_key fluent_tag
      time_key fluent_time
      time_type string
      time_format %Y-%m-%dT%H:%M:%S.%L%z
    </inject>
    <buffer>
      flush_mode interval
      flush_interval 1s
    </buffer>
  </match>
</label>
`;
}

describe('fluent.conf.example in a real Fluentd', function () {
  this.timeout(180_000);
  let fluentd: ChildProcess | undefined;
  let fluentdLog = '';
  let emu: Emulator | undefined;
  let sidecar: RespondServer | undefined;
  let work: string | undefined;
  let fluentdLib: string;
  let dir: string | undefined;
  let out: string;
  let stateDir: string;
  let forwardPort: number;
  let windowsPort: number;
  let userPort: number;
  let socPort: number;

  before(async function () {
    work = mkdtempSync(join(tmpdir(), 'df-real-fluentd-'));
    const prepared = existsSync(tool) ? spawnSync(tool, ['prepare'], { env: { ...process.env, RF_WORKDIR: work }, encoding: 'utf8' }) : undefined;
    if (!prepared || prepared.status !== 0) {
      const why = prepared ? (prepared.stderr || prepared.stdout).trim().split('\n').at(-1) : `${tool} not found`;
      console.log(`\n  SKIPPED: no real Fluentd here (${why}). See ../shared/tools/real-fluentd/README.md.\n`);
      this.skip();
    }
    const src = readdirSync(work!).find((d) => d.startsWith('src-'))!;
    fluentdLib = join(work!, src, 'lib');
    dir = mkdtempSync(join(tmpdir(), 'df-fluentd-example-'));
    out = join(dir, 'out');
    stateDir = join(dir, 'state');
    [forwardPort, windowsPort, userPort, socPort] = [await freePort(), await freePort(), await freePort(), await freePort()];

    emu = await startEmulator({ seed: 7, alerts: 60, machines: 5, vulnerabilities: 50, rateScale: 0.01 });
    const configFile = join(dir, 'defender.yaml');
    writeFileSync(
      configFile,
      stringify({
        stateDir,
        logLevel: 'warn',
        connectors: [{ ...emu.connectorConfig('emu'), clientSecret: '${env:EMU_SECRET}', functions: ['collect', 'respond'], lookbackHours: 24 }],
        respond: {
          listen: '127.0.0.1:0',
          tokens: [{ name: 'fluentd', token: '${env:DEFENDER_RESPOND_TOKEN}', connectors: ['*'], actions: ['contain', 'release', 'update-alert'] }],
          // enabled, dry run, caps of 20: most of the burst below is refused by the cap, a decision
          auto: { enabled: true, dryRun: true, minSeverity: 'Informational', detectionSources: [], maxPerHourPerConnector: 20, maxPerHour: 20 },
        },
      }),
    );
    const env = { ...process.env, EMU_SECRET: emu.clientSecret, DEFENDER_RESPOND_TOKEN: respondToken, FLUENT_SHARED_KEY: sharedKey };
    const { config } = loadConfig(configFile, env);
    // Defender as the emulator serves it, except one machine whose read fails until the test lets it
    // answer (the sidecar cannot check its exclusion tag meanwhile: 503)
    const defender = new DefenderClient(config.connectors[0]!);
    const client: ActionClient = {
      connector: defender.connector,
      request: <T>(o: RequestOptions) => {
        if (o.path !== `/api/machines/${unreadable.id}`) return defender.request<T>(o);
        if (unreadable.failing) return Promise.reject(new Error('connect ECONNREFUSED (test: this machine cannot be read yet)'));
        return Promise.resolve({ status: 200, body: { id: unreadable.id, machineTags: [] } as T });
      },
    };
    sidecar = new RespondServer({ config, sink: new MemorySink(), logger: createLogger('warn', new PassThrough().resume()), clients: new Map([['emu', client]]) });
    const { url } = await sidecar.listen('127.0.0.1:0');

    const cli = `${process.execPath} --import tsx ${join(packageRoot, 'plugin', 'cli.ts')}`;
    let conf = readFileSync(join(packageRoot, 'fluent.conf.example'), 'utf8');
    conf = uncomment(uncomment(uncomment(conf, 'in_exec alternative'), 'suppress-av'), 'SOC close route');
    conf = conf
      .replaceAll('command defender-fluent ', `command ${cli} `)
      .replaceAll('/etc/defender-fluent/defender.yaml', configFile)
      .replace(/^(\s*run_interval) \S+$/m, '$1 2s')
      .replace(/^(\s*port) 24224$/m, `$1 ${forwardPort}`)
      .replace(/^(\s*port) 9880$/m, `$1 ${socPort}`)
      .replaceAll('http://127.0.0.1:8686/', `${url}/`)
      .replaceAll('/var/log/fluent/', `${out}/`);
    const lake = /## 3\. Data lake[\s\S]*?(?=## 5\.)/;
    assert.match(conf, lake);
    conf = conf.replace(lake, fileLabel('@SYSLOG', 'out_syslog_index', out) + fileLabel('@ASSETS', 'out_assets_index', out));
    // where in_windows_eventlog2 would sit: an input at the top level, for the suppress-av path
    conf += `\n<source>\n  @type forward\n  bind 127.0.0.1\n  port ${windowsPort}\n</source>\n`;
    // the example's commented user_auth, switched on, on a port of its own
    conf += `<source>\n  @type forward\n  @label @DEFENDER\n  bind 127.0.0.1\n  port ${userPort}\n  <security>\n    self_hostname fluentd-aggregator\n    shared_key ${sharedKey}\n    user_auth true\n    <user>\n      username defender\n      password pw-fluentd-test\n    </user>\n  </security>\n</source>\n`;
    writeFileSync(join(dir, 'fluent.conf'), conf);

    fluentd = spawn('ruby', ['-I', join(work!, src, 'lib'), join(work!, src, 'bin', 'fluentd'), '-c', join(dir, 'fluent.conf'), '--no-supervisor'], { cwd: packageRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    fluentd.stdout!.on('data', (d: Buffer) => (fluentdLog += d.toString()));
    fluentd.stderr!.on('data', (d: Buffer) => (fluentdLog += d.toString()));
    await until('Fluentd to start', () => fluentdLog.includes('fluentd worker is now running') || (fluentd!.exitCode !== null && assert.fail(fluentdLog)));
  });

  after(async () => {
    if (fluentd && fluentd.exitCode === null) {
      fluentd.kill('SIGTERM');
      await new Promise((r) => fluentd!.once('exit', r));
    }
    await sidecar?.close();
    await emu?.close();
    for (const d of [work, dir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** Stops Fluentd (TERM flushes its buffers) and returns its log. */
  async function stopFluentd(): Promise<string> {
    if (fluentd!.exitCode === null) {
      fluentd!.kill('SIGTERM');
      await new Promise((r) => fluentd!.once('exit', r));
    }
    return fluentdLog;
  }

  async function send(port: number, records: OutRecord[], security?: { sharedKey: string; username?: string; password?: string }) {
    const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port, ...security, clientHostname: 'fluentd-test' });
    try {
      await sink.deliver(records);
    } finally {
      await sink.close(5000);
    }
  }

  it('the tag matcher test/shipper-configs.test.ts routes with agrees with Fluentd’s own (Fluent::MatchPattern)', () => {
    const conf = parseFluentd(readFileSync(join(dir!, 'fluent.conf'), 'utf8'));
    const patterns = new Set(['a.*', 'a.**', '**', 'a.{b,c}', 'a.{b,c}.**', '**.z', '/a\\.(b|c)/', 'winevt.**', 'av_checked.winevt']);
    const visit = (s: Section) => {
      if (s.name === 'match' || s.name === 'filter') s.arg.split(/\s+/).filter(Boolean).forEach((p) => patterns.add(p));
      s.children.forEach(visit);
    };
    visit(conf);
    const tags = [...Object.values(tagSuffix).map((t) => `microsoft_defender.${t}`), 'microsoft_defender', 'microsoft_defender.something.new', 'winevt', 'winevt.raw', 'winevt.deduplicated', 'av_checked.winevt', 'winevtx', 'a', 'a.b', 'a.b.c', 'a.c', 'ab', 'a.d', 'z', 'x.y.z', 'xz', 'defender_contain.alerts'];
    const cases = [...patterns].flatMap((p) => tags.map((t) => [p, t]));
    const ruby = spawnSync('ruby', ['-I', fluentdLib, '-e', 'require "json"; require "fluent/match"; puts JSON.generate(JSON.parse(STDIN.read).map { |p, t| Fluent::MatchPattern.create(p).match(t) })'], { input: JSON.stringify(cases), encoding: 'utf8' });
    assert.equal(ruby.status, 0, ruby.stderr);
    const theirs = JSON.parse(ruby.stdout) as boolean[];
    const differ = cases.filter(([p, t], i) => fluentdPattern(p!).test(t!) !== theirs[i]).map(([p, t]) => `${p} ~ ${t}`);
    assert.deepEqual(differ, [], `${cases.length} pattern/tag pairs`);
  });

  it('in_exec: the collector’s lines parsed by @type json reach the indices with their tag, millisecond time and non-ASCII text intact', async () => {
    let alerts: Line[] = [];
    await until('the first in_exec run', () => {
      alerts = readLines(out, 'out_syslog_index').filter((l) => l.fluent_tag === 'microsoft_defender.syslog.alerts');
      return alerts.length >= emu!.served.alertVersionCount && emu!.served.alertVersionCount > 0;
    });
    const ids = new Set(alerts.map((l) => (l.microsoft_defender as { id: string }).id));
    assert.deepEqual([...emu!.served.alertVersions.keys()].filter((id) => !ids.has(id)), [], 'every alert the emulator served arrived');
    for (const l of alerts) {
      assert.equal(l.tag, undefined, '<extract> took tag out of the record');
      assert.equal(l.time, undefined, 'the parser took time out of the record');
      assert.equal(Date.parse(l.fluent_time), l.timestamp, 'event time = the record’s timestamp, to the millisecond');
    }
    const text = JSON.stringify(readLines(out, 'out_syslog_index'));
    assert.ok(!text.includes('\ufffd'), 'no replacement character');
    assert.match(text, /jörg\.müller|müller|zürich|東京|são-paulo|øresund|kraków|straße|ελλάδα|été|инвойс/, 'non-ASCII text arrived as written');
    await until('assets', () => readLines(out, 'out_assets_index').some((l) => l.fluent_tag === 'microsoft_defender.assets.host'));
  });

  it('out_http: a record the sidecar could not judge (503) is sent again until it is judged, not set aside', async () => {
    const base = loadFixture('alert-record.json') as { microsoft_defender: Record<string, unknown> };
    // no machineTags: the sidecar reads the machine for its exclusion tag, and cannot yet
    const record = { ...base, tenant_name: String(emu!.connectorConfig('emu').tenant), engid_name: 'microsoft_defender_emu', event_score_band: 'critical', microsoft_defender: { ...base.microsoft_defender, id: 'fluentd-retry-0', machineId: unreadable.id } };
    await send(forwardPort, [{ tag: 'microsoft_defender.syslog.alerts', time: 1_764_300_000_000, record }], { sharedKey });
    const judged = () => auditLines(stateDir).filter((l) => l.microsoft_defender.alertId === 'fluentd-retry-0');
    await until('out_http to send it again', () => judged().length >= 2);
    assert.ok(judged().every((a) => a.microsoft_defender.outcome === 'error'));
    assert.match(fluentdLog, /503/);
    unreadable.failing = false;
    await until('the retry to be judged', () => judged().some((a) => a.microsoft_defender.outcome === 'dry_run'));
    assert.doesNotMatch(fluentdLog, /unrecoverable/i);
  });

  it('the SOC close route: a record posted to in_http closes the alert in Defender through out_http and the sidecar', async () => {
    const alert = emu!.alertVersions().find((v) => v.status !== 'Resolved')!;
    const res = await fetch(`http://127.0.0.1:${socPort}/soc.alert_closed`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ connector: 'emu', alertId: alert.id, classification: 'TruePositive', determination: 'Malware', comment: 'closed by the SOC (real Fluentd test)' }),
    });
    assert.equal(res.status, 200, await res.text());
    await until('the alert resolved in Defender', () => emu!.alertVersions().find((v) => v.id === alert.id)!.status === 'Resolved');
    const audit = auditLines(stateDir).filter((l) => l.microsoft_defender.event === 'update_alert' && l.microsoft_defender.alertId === alert.id);
    assert.deepEqual(audit.map((l) => l.microsoft_defender.outcome), ['accepted']);
  });

  it('forward with the shared key, and out_http: a 1.5 MB burst of critical alerts is judged whole by the sidecar (cap refusals answered 200)', async () => {
    const base = loadFixture('alert-record.json') as { microsoft_defender: Record<string, unknown> };
    const tenant = String(emu!.connectorConfig('emu').tenant);
    const burst: OutRecord[] = Array.from({ length: 500 }, (_, i) => ({
      tag: 'microsoft_defender.syslog.alerts',
      time: 1_764_300_000_000 + i,
      record: {
        ...base,
        tenant_name: tenant,
        engid_name: 'microsoft_defender_emu',
        event_score_band: 'critical',
        pad: 'p'.repeat(2000),
        microsoft_defender: { ...base.microsoft_defender, id: `fluentd-burst-${i}`, machineId: i.toString(16).padStart(40, 'b'), machineTags: [] },
      },
    }));
    await send(forwardPort, burst, { sharedKey });
    let judged: ReturnType<typeof auditLines> = [];
    await until('the sidecar to judge the burst', () => {
      judged = auditLines(stateDir).filter((a) => String(a.microsoft_defender.alertId ?? '').startsWith('fluentd-burst-'));
      return judged.length >= burst.length;
    });
    assert.equal(new Set(judged.map((a) => a.microsoft_defender.alertId)).size, burst.length, 'every record judged once');
    assert.ok(judged.some((a) => a.microsoft_defender.outcome === 'refused'), 'the cap refused some');
    let lake: Line[] = [];
    await until('the burst in the Syslog index', () => {
      lake = readLines(out, 'out_syslog_index').filter((l) => String((l.microsoft_defender as { id: string }).id).startsWith('fluentd-burst-'));
      return lake.length >= burst.length;
    });
    assert.equal(lake.length, burst.length);
  });

  it('forward handshake with username and password: delivered; a wrong password is refused with Fluentd’s reason', async () => {
    const status = (i: number): OutRecord => ({ tag: 'microsoft_defender.status', time: 1_764_300_000_000 + i, record: { msg_class: 'microsoft_defender_status', probe: `user-auth-${i}` } });
    await send(userPort, [status(0), status(1)], { sharedKey, username: 'defender', password: 'pw-fluentd-test' });
    await until('the records in the Syslog index', () => readLines(out, 'out_syslog_index').filter((l) => String(l.probe).startsWith('user-auth-')).length === 2);
    const wrong = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: userPort, sharedKey, username: 'defender', password: 'pw-wrong', clientHostname: 'fluentd-test' });
    try {
      void wrong.deliver([status(2)]).catch(() => undefined);
      await until('the refusal', () => /refused the handshake/.test(wrong.state().reason ?? ''));
      assert.match(wrong.state().reason ?? '', /Authentication failed: username\/password mismatch/);
    } finally {
      await wrong.close(0);
    }
  });

  it('suppress-av exec_filter: kept Windows events reach the operator’s output once; AV detections of a green tenant are dropped', async () => {
    await until('a green connector (status.json after the in_exec run)', () => {
      try {
        const status = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { connectors: Record<string, { contentTypes: Record<string, { lastSuccess?: string }> }> };
        return Object.values(status.connectors.emu?.contentTypes ?? {}).filter((c) => c.lastSuccess).length === 3;
      } catch {
        return false;
      }
    });
    const tenant = String(emu!.connectorConfig('emu').tenant);
    const events: OutRecord[] = Array.from({ length: 20 }, (_, i) => ({
      tag: 'winevt.raw',
      time: 1_764_300_000_000 + i,
      record: i % 2 ? { Channel: 'Microsoft-Windows-Windows Defender/Operational', EventID: 1116, tenant_name: tenant, n: i } : { Channel: 'Security', EventID: 4624, tenant_name: tenant, n: i, user: 'jörg.müller' },
    }));
    await send(windowsPort, events);
    const log = await (async () => {
      await new Promise((r) => setTimeout(r, 3000)); // exec_filter flushes every 1s
      return stopFluentd();
    })();
    const kept = [...readLines(out, 'windows-events'), ...readLines(out, 'windows-events', true)];
    assert.deepEqual(kept.map((l) => l.n).sort((a, b) => Number(a) - Number(b)), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    assert.ok(kept.every((l) => l.user === 'jörg.müller'));
    // nothing went wrong on the way: no unrecoverable out_http answer, no chunk moved aside
    assert.doesNotMatch(log, /unrecoverable|backup|\b4\d\d [A-Z][a-z]|no patterns matched|Status code 503 is going to be removed/i, log.slice(-3000));
  });
});
