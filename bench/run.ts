// All benchmarks, one table: `npm run bench` (node --import tsx bench/run.ts).
//   --only transforms,e2e,vuln,api,tenants   run some (each is bounded to about 2 minutes; tenants about 5)
//   --write                          also write bench/results.md after an --only run (a full run always does)
//   --profile                        e2e: also profile the collector (--cpu-prof) and list its hot spots
//   --seconds S                      transforms: seconds per measurement (default 2)
//   --alerts N --machines M          e2e sizes (default 100 000 alerts, 20 000 machines)
//   --vulns N                        vuln export size (default 1 000 000)
//   --polls N --poll-rate-scale F    api: steady-polling run (default 400 polls, windows × 0.05)
//   --catchup-alerts N --rate-scale F  api: 730 h catch-up (default 200 000 alerts, windows × 0.01)
//   --tenants N                      tenants: connectors in one `run` process (default 1 000; about 5 minutes)
//   --replica-connectors N --replica-alerts N --lease-seconds S  replicas: 3 `run` processes on one PostgreSQL, one SIGKILLed (default 6 tenants × 6 000 alerts, lease 10 s)
// Every figure is printed with its target; the same report goes to bench/results.md.
import { writeFileSync } from 'node:fs';
import { machine } from './lib/machine.js';
import { fmt, table, type BenchOutput, type Row } from './lib/report.js';
import { join } from 'node:path';
import { packageRoot } from '../plugin/paths.js';

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));

// Each benchmark's module is loaded when it runs: the transforms are timed in a process that has not
// loaded the emulator, PostgreSQL and the other harnesses (with them loaded, the same alert transform
// measured a few % slower, and a run of --only transforms had no use for them).
async function transforms(): Promise<BenchOutput> {
  const { transformBench } = await import('./transform.js');
  const r = await transformBench({ seconds: num('seconds') ?? 2 });
  const rows: Row[] = [
    { bench: 'transforms', metric: `alerts.syslog records/s (compiled, median of ${r.alertProcesses.length} processes)`, value: fmt(r.rates['alerts.syslog']!), target: '≥ 200 000', met: r.rates['alerts.syslog']! >= 200_000 },
    { bench: 'transforms', metric: 'alerts.syslog vs JSONata', value: `${fmt(r.speedup, 1)}×`, target: '≥ 20×', met: r.speedup >= 20 },
    { bench: 'transforms', metric: 'alerts.syslog (JSONata) records/s', value: fmt(r.jsonataAlerts), target: '' },
  ];
  for (const [name, rate] of Object.entries(r.rates)) {
    if (name === 'alerts.syslog') continue;
    rows.push({ bench: 'transforms', metric: `${name.replace('+check', ' + index schema check')} records/s`, value: fmt(rate), target: '' });
  }
  return { rows, notes: [`transforms: ${r.lines[0]}; ${r.lines[1]}; alerts.syslog (compiled) in each process: ${r.alertProcesses.map((x) => fmt(x)).join(', ')}.`] };
}

const benches: Record<string, () => Promise<BenchOutput>> = {
  transforms,
  e2e: async () => (await import('./e2e.js')).e2eBench({ alerts: num('alerts'), machines: num('machines'), profile: argv.includes('--profile') }),
  vuln: async () => (await import('./vuln.js')).vulnBench({ vulns: num('vulns') }),
  api: async () => (await import('./api.js')).apiBench({ polls: num('polls'), pollRateScale: num('poll-rate-scale'), catchupAlerts: num('catchup-alerts'), rateScale: num('rate-scale') }),
  tenants: async () => (await import('./tenants.js')).tenantsBench({ tenants: num('tenants') }),
  replicas: async () => (await import('./replicas.js')).replicasBench({ connectors: num('replica-connectors'), alerts: num('replica-alerts'), leaseSeconds: num('lease-seconds') }),
};

const only = arg('only')?.split(',').map((s) => s.trim()).filter(Boolean);
for (const name of only ?? []) if (!benches[name]) throw new Error(`--only: unknown benchmark "${name}" (known: ${Object.keys(benches).join(', ')})`);
const selected = only ?? Object.keys(benches);

const header = [`# defender-fluent benchmarks`, '', `- machine: ${machine()}`, `- command: \`${import.meta.url.endsWith('.ts') ? 'node --import tsx bench/run.ts' : 'npm run bench --'}${argv.length ? ` ${argv.join(' ')}` : ''}\``, `- date: ${new Date().toISOString()}`];
console.log(header.join('\n'));
const rows: Row[] = [];
const notes: string[] = [];
for (const name of selected) {
  const t0 = Date.now();
  process.stderr.write(`running ${name}…\n`);
  try {
    const out = await benches[name]!();
    rows.push(...out.rows);
    notes.push(...out.notes, `(${name}: ${fmt((Date.now() - t0) / 1000, 1)} s)`);
  } catch (e) {
    rows.push({ bench: name, metric: 'FAILED', value: (e as Error).message.split('\n')[0]!, target: '', met: false });
    notes.push(`${name} failed: ${(e as Error).stack}`);
  }
}
const report = `${header.join('\n')}\n\n${table(rows)}\n\n${notes.map((n) => (n.startsWith('  ') ? `    ${n.trim()}` : `- ${n}`)).join('\n')}\n`;
console.log(`\n${table(rows)}\n`);
console.log(notes.join('\n'));
if (!only || argv.includes('--write')) {
  writeFileSync(join(packageRoot, 'bench', 'results.md'), report);
  console.log('\nwritten to bench/results.md');
}
// A missed target is a finding, not a crash: only a benchmark that could not run fails the command.
process.exitCode = rows.some((r) => r.metric === 'FAILED') ? 1 : 0;
