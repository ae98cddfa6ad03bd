// Transform benchmark: records/s on one core for each shipped transform on realistic records
// (alerts with 5 evidence items), and the same alert mapping written in JSONata for comparison.
// Both must produce equal output on the sample before any timing starts.
//   node --import tsx bench/transform.ts [--seconds 2]      (or: node --import tsx bench/run.ts --only transforms)
// Targets (issue 3): compiled alerts ≥ 200 000 records/s and ≥ 20× JSONata.
// bench/run.ts imports transformBench(); run directly, this file prints its own report.
import assert from 'node:assert/strict';
import jsonata from 'jsonata';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { packageRoot, transformsDir } from '../plugin/paths.js';
import { addedByCollector } from '../plugin/transform/compile.js';
import { clean, dnsDomain, epochMs, hostLabel, inIpClasses, integer, ip, mac, slug, urlHost } from '../plugin/transform/convert.js';
import { readEntities } from '../plugin/transform/input.js';
import { alertJson } from '../plugin/emulate/data.js';
import { World } from '../plugin/emulate/store.js';
import { loadTransformDir } from '../plugin/transform/load.js';
import { loadMapper } from '../plugin/transform/transforms.js';
import type { CompiledTransform } from '../plugin/transform/transform-mapper.js';

let seconds = 2;
const golden = (p: string) => JSON.parse(readFileSync(join(packageRoot, 'test', 'golden', p), 'utf8'));
const ctx = { connector: 'bench', tenant: 'Bench Tenant', tagPrefix: 'microsoft_defender', writeTime: 1750000000000 };

// ---- realistic samples ---------------------------------------------------------------------
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const SAMPLES = 2000;
const base = golden('alerts.syslog/fixture-page1.input.json').value[0] as Obj;
const nullEvidence = Object.fromEntries(Object.keys(base.evidence[0]).map((k) => [k, null]));
function alert(i: number): Obj {
  const a = structuredClone(base);
  a.id = `da6388539174026${String(i).padStart(5, '0')}_-1187734598`;
  a.incidentId = 48000 + i;
  a.lastUpdateTime = new Date(Date.UTC(2025, 5, 10, 8, 0, 0) + i * 1234).toISOString().replace('Z', '1234Z');
  a.computerDnsName = `wks-${String(i % 500).padStart(4, '0')}.corp.fabrikam.test`;
  a.machineId = (i.toString(16) + a.machineId).slice(0, 40);
  a.evidence.push(
    { ...nullEvidence, entityType: 'Ip', evidenceCreationTime: a.lastUpdateTime, ipAddress: i % 2 ? `203.0.113.${i % 250}` : `20.${i % 200}.14.${i % 250}` },
    { ...nullEvidence, entityType: 'Url', evidenceCreationTime: a.lastUpdateTime, url: `http://c2-${i % 97}.example.test/stage2.ps1` },
  );
  // the machine as the inventory attaches it (a VirtualBox host-only adapter listed first)
  const ip4 = `10.1.${i % 200}.${i % 250}`;
  a._machine = {
    lastIpAddress: ip4,
    ipAddresses: [
      { ipAddress: '192.168.56.1', macAddress: '0A0027000011', type: 'Ethernet', operationalStatus: 'Up' },
      { ipAddress: '127.0.0.1', type: 'SoftwareLoopback', operationalStatus: 'Up' },
      { ipAddress: ip4, macAddress: '00155D0A1B2C', type: 'Ethernet', operationalStatus: 'Up' },
    ],
    osPlatform: 'Windows11',
    osArchitecture: '64-bit',
    deviceValue: 'High',
    exposureLevel: 'Medium',
    riskScore: 'Low',
    machineTags: ['finance'],
    rbacGroupName: 'Workstations-EU',
  };
  return JSON.parse(JSON.stringify(a)); // fresh, JSON-shaped objects like the API parser yields
}
const machines = golden('host.syslog/fixture-machines.input.json').value as Obj[];
const vulns = [...golden('vulnerabilities.syslog/fixture-export-page.input.json').value, ...golden('vulnerabilities.syslog/fixture-delta-page.input.json').value] as Obj[];
const samples: Record<string, Obj[]> = {
  alerts: Array.from({ length: SAMPLES }, (_, i) => alert(i)),
  host: Array.from({ length: SAMPLES }, (_, i) => JSON.parse(JSON.stringify({ ...machines[i % machines.length], id: `${i}`.padStart(40, 'a') }))),
  vulnerabilities: Array.from({ length: SAMPLES }, (_, i) => JSON.parse(JSON.stringify({ ...vulns[i % vulns.length], id: `v${i}` }))),
};
/**
 * The emulator's alerts, as the e2e benchmark gets them: category, OS, evidence types and fields vary
 * from alert to alert as in a tenant (the sample above is one alert with a few fields changed, which
 * keeps V8's inline caches monomorphic and flatters the transform). No machine inventory attached.
 */
function variedAlerts(): Obj[] {
  const world = new World({ seed: 7, tenantId: 'bench-tenant', startMs: Date.UTC(2025, 5, 10), alerts: SAMPLES, machines: 200, historyHours: 2, lateArrivalMs: 0, evidencePerAlert: 5 });
  return world.alerts.map((s) => JSON.parse(alertJson(world.alertBase(s), s, true)) as Obj);
}

/** Content types without a sample of their own (machine actions, hunting rows): the entities of their golden inputs, repeated. */
function goldenSample(transform: string): Obj[] {
  const dir = join(packageRoot, 'test', 'golden', transform);
  const entities = readdirSync(dir)
    .filter((f) => f.endsWith('.input.json'))
    .flatMap((f) => readEntities(readFileSync(join(dir, f), 'utf8'), f));
  return Array.from({ length: SAMPLES }, (_, i) => JSON.parse(JSON.stringify(entities[i % entities.length])) as Obj);
}

// ---- the alert mapping in JSONata (helpers JSONata lacks are bound as functions) ------------
const table = (name: string) => JSON.parse(readFileSync(join(transformsDir, 'lookups', `${name}.json`), 'utf8'));
const lookup = (name: string) => table(name).entries;
const jsonataAlerts = jsonata(`(
  $ne := function($v){ ($v != null and $v != '') ? $v };
  $first := function($a){ $a[$ != null and $ != ''][0] };
  $lk := function($t, $k){ $type($k) = 'string' and $k != '' ? $lookup($t, $k) };
  $list := function($a){ ( $l := $distinct($a[$ != null and $ != '']); $count($l) > 0 ? [$l] ) };
  $objs := function($a){ ( $l := $uniq([$a[$count($keys($)) > 0]]); $count($l) > 0 ? [$l] ) };
  $ev := [evidence];
  $pick := function($conds){ $first($map($conds, function($c){ $ev[$c($)][0] })) };
  $file := $pick([
    function($x){ $x.entityType = 'File' and $x.detectionStatus in ['Detected', 'Blocked', 'Prevented'] },
    function($x){ $x.entityType = 'File' },
    function($x){ $x.entityType = 'Process' and $exists($ne($x.fileName)) }
  ]);
  $process := $pick([function($x){ $x.entityType = 'Process' }]);
  $user := $pick([function($x){ $x.entityType = 'User' and $exists($ne($x.accountName)) }]);
  $ipItem := $pick([function($x){ $isPublic($x.ipAddress) }, function($x){ $exists($ne($x.ipAddress)) }]);
  $urlItem := $pick([function($x){ $exists($ne($x.url)) }]);
  $reg := $pick([function($x){ $exists($ne($x.registryKey)) }]);
  $techs := $map([mitreTechniques][$ != null and $ != ''], $uppercase);
  $sev := $lk($sevTable, severity);
  $fid := $first([$lk($classFid, classification), $lk($detFid, determination), $lk($invFid, investigationState), $lk($evFid, $file.detectionStatus), $lk($srcFid, detectionSource)]);
  $score := $gmean([$sev, $fid]);
  $hasRelated := $exists($ne(relatedUser.userName));
  $m := \`_machine\`;
  $nics := [$m.ipAddresses];
  $usable := function($n){ $not($n.operationalStatus = 'Down') and $not($n.type = 'SoftwareLoopback') and $not($badIp($n.ipAddress)) };
  $nic := $first([$nics[ipAddress = $m.lastIpAddress and $usable($)][0], $nics[operationalStatus = 'Up' and $exists($ne(macAddress)) and $usable($)][0], $nics[$usable($)][0]]);
  {
    "timestamp": $epochMs($first([alertCreationTime, firstEventTime, lastUpdateTime])),
    "write_time": $writeTime,
    "msg_class": "microsoft_defender_alerts",
    "msg_origin": {"source": "microsoft_defender", "vendor": "microsoft", "category": "endpoint", "processor": {"name": "microsoft_defender", "type": "log_collector"}},
    "tenant_name": $tenant,
    "engid_name": "microsoft_defender_" & $connector,
    "alert_id": $ne(id),
    "alert_version": ($ne(id) and $ne(lastUpdateTime)) ? id & "|" & lastUpdateTime,
    "incident_id": $ne(incidentId),
    "detector_id": $lowercase($ne(detectorId)),
    "xdr_event": {
      "display_name": $cut($ne(title), 1024),
      "description": $cut($first([description, title]), 8192),
      "name": $ne(detectorId) ? "microsoft_defender-" & $lowercase(detectorId) : ($slug(title) ? "microsoft_defender-" & $slug(title)),
      "tactic": $first([$first($map($techs, function($t){ $lk($attTactic, $t) })), $lk($catTactic, category)]),
      "technique": $first($map($techs, function($t){ $lk($attTech, $t) })),
      "ttps": $objs($map($techs, function($t){ {"technique": $lk($attTech, $t), "tactic": $lk($attTactic, $t)} })),
      "framework_version": $frameworkVersion
    },
    "severity": $sev,
    "fidelity": $fid,
    "event_score": $score,
    "event_score_band": $band($score),
    "event_status": $lk($status, status),
    "alert_category": $ne(category),
    "detection_source": $ne(detectionSource),
    "threat_name": $first([threatName, threatFamilyName]),
    "classification": $ne(classification),
    "determination": $ne(determination),
    "assigned_to": $ne(assignedTo),
    "investigation_state": $ne(investigationState),
    "alert_creation_time": $epochMs($ne(alertCreationTime)),
    "first_event_time": $epochMs($ne(firstEventTime)),
    "last_event_time": $epochMs($ne(lastEventTime)),
    "resolved_time": $epochMs($ne(resolvedTime)),
    "last_update_time": $epochMs($ne(lastUpdateTime)),
    "host_id": $ne(machineId),
    "srcip_host": $lowercase($ne(computerDnsName)),
    "srcip_host_short": $hostLabel(computerDnsName),
    "srcip_domain": $dnsDomain(computerDnsName),
    "srcip": $first([$ip($nic.ipAddress), $ip($m.lastIpAddress)]),
    "srcmac": $mac($nic.macAddress),
    "os_platform": $ne($m.osPlatform),
    "os_architecture": $first([$lk($arch, $m.osArchitecture), $lk($arch, $m.osProcessor)]),
    "device_value": $ne($m.deviceValue),
    "exposure_level": $ne($m.exposureLevel),
    "risk_score": $ne($m.riskScore),
    "tags": ( $l := [$m.machineTags[$ != null and $ != '']]; $count($l) > 0 ? $l ),
    "rbac_group_name": $first([rbacGroupName, $m.rbacGroupName]),
    "user_name": $hasRelated ? relatedUser.userName : $ne($user.accountName),
    "user_domain": $hasRelated ? $ne(relatedUser.domainName) : $ne($user.domainName),
    "user_list": $list([relatedUser.userName, $ev[entityType = 'User'].accountName, $ev[entityType = 'User'].userPrincipalName]),
    "user_sid_list": $list([$ev[entityType = 'User'].userSid]),
    "file_name": $ne($file.fileName),
    "file_path": $ne($file.filePath),
    "file_hash": $lowercase($first([$file.sha256, $file.sha1])),
    "file_sha1": $lowercase($ne($file.sha1)),
    "file_sha256": $lowercase($ne($file.sha256)),
    "file_detection_status": $ne($file.detectionStatus),
    "process_name": $ne($process.fileName),
    "process_path": $ne($process.filePath),
    "process_id": $integer($process.processId),
    "process_cmdline": $cut($ne($process.processCommandLine), 8192),
    "process_creation_time": $epochMs($ne($process.processCreationTime)),
    "process_sha1": $lowercase($ne($process.sha1)),
    "process_sha256": $lowercase($ne($process.sha256)),
    "parent_process_id": $integer($process.parentProcessId),
    "parent_process_name": $ne($process.parentProcessFileName),
    "parent_process_path": $ne($process.parentProcessFilePath),
    "dstip": $ip($ipItem.ipAddress),
    "dstip_public": $isPublic($ipItem.ipAddress) ? true,
    "url": $cut($ne($urlItem.url), 4096),
    "url_domain": $urlHost($urlItem.url),
    "registry_key": $ne($reg.registryKey),
    "registry_hive": $ne($reg.registryHive),
    "registry_value_name": $ne($reg.registryValueName),
    "registry_value": $ne($reg.registryValue),
    "registry_value_type": $ne($reg.registryValueType),
    "evidence": $objs($map($ev, function($x){ {
      "type": $ne($x.entityType), "created": $epochMs($ne($x.evidenceCreationTime)), "file_name": $ne($x.fileName), "file_path": $ne($x.filePath),
      "sha1": $lowercase($ne($x.sha1)), "sha256": $lowercase($ne($x.sha256)), "detection_status": $ne($x.detectionStatus),
      "process_id": $integer($x.processId), "process_cmdline": $cut($ne($x.processCommandLine), 8192), "process_creation_time": $epochMs($ne($x.processCreationTime)),
      "parent_process_id": $integer($x.parentProcessId), "parent_process_name": $ne($x.parentProcessFileName), "parent_process_path": $ne($x.parentProcessFilePath),
      "ip": $ip($x.ipAddress), "url": $cut($ne($x.url), 4096), "url_domain": $urlHost($x.url),
      "registry_key": $ne($x.registryKey), "registry_hive": $ne($x.registryHive), "registry_value_name": $ne($x.registryValueName), "registry_value": $ne($x.registryValue), "registry_value_type": $ne($x.registryValueType),
      "account_name": $ne($x.accountName), "domain_name": $ne($x.domainName), "user_sid": $ne($x.userSid), "aad_user_id": $ne($x.aadUserId), "user_principal_name": $ne($x.userPrincipalName)
    } })),
    "file_name_list": $list([$ev[entityType = 'File'].fileName]),
    "file_path_list": $list([$ev[entityType = 'File'].filePath]),
    "sha1_list": $list($map([$ev.sha1][$ != null and $ != ''], $lowercase)),
    "sha256_list": $list($map([$ev.sha256][$ != null and $ != ''], $lowercase)),
    "process_name_list": $list([$ev[entityType = 'Process'].fileName]),
    "process_cmdline_list": $list([$ev[entityType = 'Process'].processCommandLine]),
    "parent_process_name_list": $list([$ev.parentProcessFileName]),
    "evidence_ip_list": $list($map([$ev.ipAddress][$ != null and $ != ''], $ip)),
    "url_list": $list([$ev.url]),
    "registry_key_list": $list([$ev.registryKey]),
    "microsoft_defender": $clean($)
  }
)`);
const scoreBands = (table('score-band').bands as { min: number; value: string }[]).sort((a, b) => b.min - a.min);
const publicIp = new Set(['public']);
const unusableIp = new Set(['loopback', 'linkLocal', 'multicast', 'unspecified', 'broadcast', 'reserved']);
const frameworkVersion = (JSON.parse(readFileSync(join(transformsDir, 'alerts.syslog.json'), 'utf8')).fields as { target: string; const?: string }[]).find((f) => f.target === 'xdr_event.framework_version')?.const;
const bindings = {
  writeTime: ctx.writeTime,
  tenant: ctx.tenant,
  connector: ctx.connector,
  frameworkVersion,
  sevTable: lookup('alert-severity'),
  classFid: lookup('alert-classification-fidelity'),
  detFid: lookup('alert-determination-fidelity'),
  invFid: lookup('alert-investigation-fidelity'),
  evFid: lookup('evidence-detection-fidelity'),
  srcFid: lookup('alert-source-fidelity'),
  catTactic: lookup('category-tactic'),
  attTactic: lookup('attack-tactic'),
  attTech: lookup('attack-technique'),
  status: lookup('alert-status'),
  arch: lookup('os-architecture'),
  epochMs: (v: unknown) => (v === undefined ? undefined : epochMs(v)),
  ip: (v: unknown) => ip(v),
  isPublic: (v: unknown) => inIpClasses(v, publicIp),
  badIp: (v: unknown) => inIpClasses(v, unusableIp),
  mac: (v: unknown) => mac(v),
  hostLabel: (v: unknown) => hostLabel(v),
  dnsDomain: (v: unknown) => dnsDomain(v),
  urlHost: (v: unknown) => urlHost(v),
  slug: (v: unknown) => slug(v),
  integer: (v: unknown) => integer(v),
  cut: (v: unknown, n: number) => (typeof v === 'string' && v.length > n ? v.slice(0, n) : v),
  gmean: (xs: unknown[]) => {
    const ns = (xs ?? []).filter((x): x is number => typeof x === 'number');
    return ns.length ? (ns.some((x) => x <= 0) ? 0 : Math.round(Math.exp(ns.reduce((s, x) => s + Math.log(x), 0) / ns.length))) : undefined;
  },
  band: (n: unknown) => (typeof n === 'number' ? scoreBands.find((b) => n >= b.min)?.value : undefined),
  uniq: (xs: unknown[]) => [...new Map((xs ?? []).map((x) => [JSON.stringify(x), x])).values()],
  // the raw copy leaves out what the collector attached (_machine)
  clean: (v: Obj) => clean(Object.fromEntries(Object.entries(v).filter(([k]) => !addedByCollector(k)))),
};

// ---- timing ---------------------------------------------------------------------------------
// The measurement is cut into SLICES slices and the fastest one counts: on a shared VM other
// processes can only slow a slice down, so the best slice is the transform's own speed on one core.
const SLICES = 4;

function rate(fn: (i: number) => unknown): number {
  for (let i = 0; i < 20000; i++) fn(i % SAMPLES); // warm-up: let V8 optimise
  let best = 0;
  let n = 0;
  const budget = BigInt(Math.round((seconds / SLICES) * 1e9));
  for (let s = 0; s < SLICES; s++) {
    const t0 = process.hrtime.bigint();
    let done = 0;
    while (process.hrtime.bigint() - t0 < budget) {
      for (let k = 0; k < 1000; k++, n++, done++) fn(n % SAMPLES);
    }
    best = Math.max(best, done / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return best;
}

async function rateAsync(fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await fn(i % SAMPLES);
  let best = 0;
  let n = 0;
  const budget = BigInt(Math.round((seconds / SLICES) * 1e9));
  for (let s = 0; s < SLICES; s++) {
    const t0 = process.hrtime.bigint();
    let done = 0;
    while (process.hrtime.bigint() - t0 < budget) {
      for (let k = 0; k < 50; k++, n++, done++) await fn(n % SAMPLES);
    }
    best = Math.max(best, done / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return best;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(11);

// One process's rate of the alert transform is one draw: the same code in separate processes (its own
// JIT decisions and heap layout) differed by 5–10 %, which the best slice cannot take out. The
// done-means row is the median over PROCESSES processes (this one and fresh ones run one after
// another, so each has a core to itself).
const PROCESSES = 3;

async function alertRateInProcess(): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, BENCH_ALERT_RATE_SECONDS: String(seconds) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [[rate], [code]] = (await Promise.all([once(child, 'message'), once(child, 'exit')])) as [[number], [number]];
  if (code !== 0) throw new Error(`the alert transform's timing process exited with ${code}`);
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

export interface TransformBenchResult {
  /** records/s of each transform's compiled function, and `${name}+check` with the run-time index schema check */
  rates: Record<string, number>;
  jsonataAlerts: number;
  /** compiled alerts.syslog in each process (the first in this one): rates['alerts.syslog'] is their median */
  alertProcesses: number[];
  /** compiled alerts.syslog ÷ JSONata */
  speedup: number;
  /** the printed report */
  lines: string[];
}

/** Checks JSONata and compiled output are equal on the sample, then times every transform for `secs` seconds each. */
export async function transformBench(opts: { seconds?: number; print?: boolean } = {}): Promise<TransformBenchResult> {
  seconds = opts.seconds ?? 2;
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    if (opts.print) console.log(line);
  };
  const loaded = loadMapper();
  if (!loaded.ok) throw new Error(`transforms do not load: ${JSON.stringify(loaded.problems)}`);
  const { mapper } = loaded;
  assert.equal(loadTransformDir(transformsDir).problems.length, 0);
  const alertsT = mapper.transformsFor('alerts')[0] as CompiledTransform;

  // Equal output on the whole sample before timing (JSON round trip drops key order and undefined).
  for (const a of samples.alerts as Obj[]) {
    const ours = JSON.parse(JSON.stringify(alertsT.fn(a, ctx)));
    const theirs = JSON.parse(JSON.stringify(await jsonataAlerts.evaluate(a, bindings)));
    assert.deepEqual(theirs, ours);
    assert.equal(alertsT.validate(ours), true);
  }
  log(`sample: ${SAMPLES} records per content type; alerts have ${(samples.alerts as Obj[])[0]?.evidence.length} evidence items; JSONata and compiled output equal on all ${SAMPLES} alerts`);
  log(`node ${process.version}, ${seconds}s per measurement (best of ${SLICES} slices), one core; compiled alerts.syslog: median of ${PROCESSES} processes`);
  log('transform                   compiled fn/s   + schema check/s');
  const results: Record<string, number> = {};
  for (const t of mapper.transforms) {
    const list = (samples[t.content] ??= goldenSample(t.name));
    const fnRate = rate((i) => t.fn(list[i] as Obj, ctx));
    const fullRate = rate((i) => mapper.mapOne(t, list[i] as Obj, ctx));
    results[t.name] = fnRate;
    results[`${t.name}+check`] = fullRate;
    log(`${t.name.padEnd(26)}${fmt(fnRate)}        ${fmt(fullRate)}`);
  }
  const alertProcesses = [results['alerts.syslog'] as number];
  while (alertProcesses.length < PROCESSES) alertProcesses.push(await alertRateInProcess());
  results['alerts.syslog'] = median(alertProcesses);
  log(`alerts.syslog compiled in ${PROCESSES} processes: ${alertProcesses.map((r) => fmt(r).trim()).join(', ')} records/s; median ${fmt(median(alertProcesses)).trim()}`);
  const varied = variedAlerts();
  for (const a of varied) assert.equal(alertsT.validate(alertsT.fn(a, ctx)), true, 'every varied alert maps to a valid record');
  results['alerts.syslog, varied alerts'] = rate((i) => alertsT.fn(varied[i] as Obj, ctx));
  results['alerts.syslog, varied alerts+check'] = rate((i) => mapper.mapOne(alertsT, varied[i] as Obj, ctx));
  log(`${'alerts.syslog, varied'.padEnd(26)}${fmt(results['alerts.syslog, varied alerts'])}        ${fmt(results['alerts.syslog, varied alerts+check'])}   (the emulator's alerts: see variedAlerts)`);
  const alerts = samples.alerts as Obj[];
  const jRate = await rateAsync((i) => jsonataAlerts.evaluate(alerts[i] as Obj, bindings));
  log(`${'alerts.syslog (JSONata)'.padEnd(26)}${fmt(jRate)}`);
  const speedup = (results['alerts.syslog'] as number) / jRate;
  log(`compiled vs JSONata (alerts): ${speedup.toFixed(1)}×   (target ≥ 20×)`);
  log(`compiled alerts/s: ${fmt(results['alerts.syslog'] as number).trim()} (target ≥ 200,000); with the run-time index schema check: ${fmt(results['alerts.syslog+check'] as number).trim()}`);
  return { rates: results, alertProcesses, jsonataAlerts: jRate, speedup, lines };
}

if (process.env.BENCH_ALERT_RATE_SECONDS && process.send) {
  seconds = Number(process.env.BENCH_ALERT_RATE_SECONDS);
  const loaded = loadMapper();
  if (!loaded.ok) throw new Error(`transforms do not load: ${JSON.stringify(loaded.problems)}`);
  const { fn } = loaded.mapper.transformsFor('alerts')[0] as CompiledTransform;
  const alerts = samples.alerts as Obj[];
  process.send(rate((i) => fn(alerts[i] as Obj, ctx)));
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await transformBench({ seconds: Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2, print: true });
}
