// Hundreds of tenants (issue 12): 1 000 connectors, each polling every minute, in one `run` process
// against one emulator (rate limits off; every connector is a distinct name on the emulator's tenant).
// One full catch-up (the first poll of every connector × content type), then two steady intervals.
// The reference CPU per record is the issue's single-connector figure, measured the same way: `run
// --once` of one connector against a tenant of 500 alerts, 200 machines and 2 000 vulnerability records.
//   node --import tsx bench/run.ts --only tenants [--tenants 1000]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { StatusFile } from '../plugin/status/store.js';
import { startEmulatorChild, type EmulatorInfo, type EmulatorStats } from './lib/children.js';
import { fmt, type BenchOutput } from './lib/report.js';

export interface TenantsOptions {
  tenants?: number;
}

/** Per tenant: small, so that 1 000 of them stay a few minutes of work on two shared cores. */
const perTenant = { alerts: 50, machines: 20, vulnerabilities: 100 };
const intervalMinutes = 1;
const intervalMs = intervalMinutes * 60_000;
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

interface RunChild {
  proc: ChildProcess;
  /** stdout lines (records) so far */
  records(): number;
  /** CPU ms since start and RSS, as last reported */
  last: { cpuMs: number; rssMB: number };
  /** kernel's RSS high-water mark of the child, MB */
  hwmMB(): number;
  rssMB(): number;
  exit: Promise<number | null>;
  stderrTail: string[];
}

function startRun(configFile: string, once: boolean): RunChild {
  const proc = fork(fileURLToPath(new URL(`./proc/run${ext}`, import.meta.url)), [configFile, ...(once ? ['--once'] : [])], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let lines = 0;
  createInterface({ input: proc.stdout! }).on('line', () => lines++);
  const stderrTail: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    stderrTail.push(l);
    if (stderrTail.length > 20) stderrTail.shift();
  });
  const child: RunChild = {
    proc,
    records: () => lines,
    last: { cpuMs: 0, rssMB: 0 },
    hwmMB: () => procStatusMB(proc.pid!, 'VmHWM'),
    rssMB: () => procStatusMB(proc.pid!, 'VmRSS'),
    // 'close': stdout fully read too
    exit: new Promise((resolve) => proc.once('close', (code) => resolve(code))),
    stderrTail,
  };
  proc.on('message', (m: { cpuMs: number; rssMB: number }) => (child.last = m));
  return child;
}

function procStatusMB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function writeConfig(dir: string, emu: EmulatorInfo, tenants: number): string {
  const file = join(dir, 'defender.yaml');
  const connector = { ...emu.connector, clientSecret: '${env:BENCH_EMULATOR_SECRET}', intervalMinutes };
  const connectors = Array.from({ length: tenants }, (_, i) => ({ ...connector, name: `tenant-${i + 1}`, tenant: `Tenant ${i + 1}` }));
  writeFileSync(file, stringify({ stateDir: join(dir, 'state'), logLevel: 'error', statusIntervalMinutes: 60, connectors }));
  return file;
}

const readStatus = (dir: string): StatusFile | undefined => {
  try {
    return JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as StatusFile;
  } catch {
    return undefined; // not written yet, or being replaced
  }
};

/** lastAttempt per task from status.json */
function attempts(status: StatusFile | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, c] of Object.entries(status?.connectors ?? {})) for (const [t, s] of Object.entries(c.contentTypes)) if (s?.lastAttempt) out.set(`${name}:${t}`, s.lastAttempt);
  return out;
}

/** The largest defender_fluent_poll_lag_seconds in the collector's metrics snapshot. */
function maxLagSeconds(dir: string): number {
  try {
    const json = JSON.parse(readFileSync(join(dir, 'state', 'metrics.json'), 'utf8')) as { name: string; values: { value: number }[] }[];
    return Math.max(0, ...(json.find((m) => m.name === 'defender_fluent_poll_lag_seconds')?.values.map((v) => v.value) ?? []));
  } catch {
    return 0;
  }
}

/** The tenant of the issue's measurements. */
const referenceTenant = { alerts: 500, machines: 200, vulnerabilities: 2000 };

/** `run --once` of one connector against its own emulator with the reference tenant. */
async function referenceRun(dir: string): Promise<{ records: number; cpuMs: number }> {
  const emu = await startEmulatorChild({ ...referenceTenant, rateLimits: false, recordVulnerabilityIds: false });
  try {
    process.env.BENCH_EMULATOR_SECRET = String(emu.info.connector.clientSecret);
    const one = startRun(writeConfig(dir, emu.info, 1), true);
    if ((await one.exit) !== 0) throw new Error(`one connector: run --once failed: ${one.stderrTail.join('\n')}`);
    return { records: one.records(), cpuMs: one.last.cpuMs };
  } finally {
    await emu.stop();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function tenantsBench(o: TenantsOptions = {}): Promise<BenchOutput> {
  const tenants = o.tenants ?? 1000;
  const tasks = tenants * 3;
  const rows: BenchOutput['rows'] = [];
  const notes: string[] = [];
  const emu = await startEmulatorChild({ ...perTenant, rateLimits: false, recordVulnerabilityIds: false });
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'defender-fluent-tenants-'));
    dirs.push(d);
    return d;
  };
  try {
    const one = await referenceRun(tmp());
    const oneCpuPerRecordUs = (one.cpuMs * 1000) / one.records;

    const dir = tmp();
    process.env.BENCH_EMULATOR_SECRET = String(emu.info.connector.clientSecret);
    const run = startRun(writeConfig(dir, emu.info, tenants), false);
    const t0 = Date.now();
    let exited = false;
    void run.exit.then(() => (exited = true));
    // catch-up: until every task has attempted a poll
    let catchupLag = 0;
    let polled = new Map<string, string>();
    while (polled.size < tasks) {
      if (exited) throw new Error(`run exited during the catch-up: ${run.stderrTail.join('\n')}`);
      if (Date.now() - t0 > 15 * 60_000) throw new Error(`catch-up not done after 15 min: ${polled.size} of ${tasks} tasks polled`);
      await sleep(1000);
      polled = attempts(readStatus(dir));
      catchupLag = Math.max(catchupLag, maxLagSeconds(dir));
    }
    const catchup = { ms: Date.now() - t0, cpuMs: run.last.cpuMs, records: run.records(), hwmMB: run.hwmMB() };
    const failed = Object.values(readStatus(dir)!.connectors).flatMap((c) => Object.values(c.contentTypes)).filter((s) => s?.lastError && (!s.lastSuccess || s.lastError.at > s.lastSuccess)).length;

    // steady: two intervals; the second is the one measured (its polls all follow the catch-up's)
    await sleep(intervalMs);
    const before = attempts(readStatus(dir));
    const steady0 = { cpuMs: run.last.cpuMs, records: run.records() };
    let steadyRssMB = 0;
    let hwmMB = catchup.hwmMB;
    const t1 = Date.now();
    while (Date.now() - t1 < intervalMs) {
      if (exited) throw new Error(`run exited during the steady interval: ${run.stderrTail.join('\n')}`);
      await sleep(1000);
      steadyRssMB = Math.max(steadyRssMB, run.rssMB());
      hwmMB = Math.max(hwmMB, run.hwmMB());
    }
    await sleep(2000); // the last polls' status (saved at most once a second)
    const after = attempts(readStatus(dir));
    // every task polled in the interval: the gauge now holds how late each of those polls started
    const steadyLag = maxLagSeconds(dir);
    const polledInInterval = [...after].filter(([task, at]) => before.get(task) !== at).length;
    const steady = { cpuMs: run.last.cpuMs - steady0.cpuMs, records: run.records() - steady0.records };
    run.proc.kill('SIGTERM');
    await run.exit;

    const peakMB = hwmMB;
    const catchupCpuPerRecordUs = (catchup.cpuMs * 1000) / catchup.records;
    const b = 'tenants';
    rows.push(
      { bench: b, metric: `${fmt(tenants)} connectors: peak RSS (MB)`, value: fmt(peakMB), target: '< 600', met: peakMB < 600 },
      { bench: b, metric: `${fmt(tenants)} connectors: steady RSS, max over one interval after the catch-up (MB)`, value: fmt(steadyRssMB), target: '< 400', met: steadyRssMB < 400 },
      { bench: b, metric: `time until every task (${fmt(tasks)}) has polled once (s)`, value: fmt(catchup.ms / 1000, 1), target: '' },
      { bench: b, metric: `tasks polled within the steady interval (${intervalMinutes} min)`, value: `${fmt(polledInInterval)} of ${fmt(tasks)}`, target: 'all', met: polledInInterval === tasks },
      { bench: b, metric: 'largest poll lag: catch-up / polls of the steady interval (s)', value: `${fmt(catchupLag, 1)} / ${fmt(steadyLag, 1)}`, target: '' },
      { bench: b, metric: 'collector CPU per record, catch-up vs one connector (µs)', value: `${fmt(catchupCpuPerRecordUs, 1)} vs ${fmt(oneCpuPerRecordUs, 1)}`, target: '≤ one connector', met: catchupCpuPerRecordUs <= oneCpuPerRecordUs },
    );
    const es = await emu.call<EmulatorStats>('stats');
    notes.push(
      `tenants: ${fmt(tenants)} connectors × 3 content types, intervalMinutes ${intervalMinutes}, default maxConcurrentPolls; emulator (one process, rate limits off) with ${perTenant.alerts} alerts, ${perTenant.machines} machines, ${perTenant.vulnerabilities} vulnerability records, served to every connector; records to stdout (a pipe the bench counts).`,
      `tenants catch-up: ${fmt(catchup.records)} records in ${fmt(catchup.ms / 1000, 1)} s, collector CPU ${fmt(catchup.cpuMs / 1000, 1)} s; ${failed} task(s) whose last poll failed; reference, one connector --once against the issue's tenant (${referenceTenant.alerts} alerts, ${referenceTenant.machines} machines, ${referenceTenant.vulnerabilities} vulnerability records): ${fmt(one.records)} records, CPU ${fmt(one.cpuMs / 1000, 2)} s (config, token and transforms loading included in both, as in the issue's table).`,
      `tenants steady interval: ${fmt(steady.records)} records, collector CPU ${fmt(steady.cpuMs / 1000, 1)} s${steady.records ? ` (${fmt((steady.cpuMs * 1000) / steady.records, 0)} µs per record, per-poll overhead included)` : ''}; emulator: ${fmt(es.requests)} requests, ${fmt(es.tokensIssued)} tokens, CPU ${fmt(es.cpuMs / 1000, 1)} s, peak RSS ${fmt(es.maxRssMB)} MB (not counted).`,
    );
  } finally {
    await emu.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return { rows, notes };
}
