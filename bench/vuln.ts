// Vulnerability export: 1 000 000 records in pages of 200 000 (the API maximum) from the emulator
// (child process, generated on the fly) through the VulnerabilitiesCollector (streamed pages) to a
// null sink that acknowledges at once, once without mapping and once through the shipped
// transforms. The collector runs in a fresh child process per run (own CPU time and peak RSS).
//   node --import tsx bench/run.ts --only vuln [--vulns 1000000]
import { runCollectorChild, startEmulatorChild, type EmulatorStats } from './lib/children.js';
import { fmt, type BenchOutput } from './lib/report.js';
import type { CollectorRunResult } from './proc/collector.js';

export interface VulnOptions {
  vulns?: number;
}

const rssOf = (r: CollectorRunResult) => Math.max(r.memory.hwmMB ?? 0, r.memory.sampledPeakMB);

export async function vulnBench(o: VulnOptions = {}): Promise<BenchOutput> {
  const vulns = o.vulns ?? 1_000_000;
  const rows: BenchOutput['rows'] = [];
  const notes: string[] = [];
  const emu = await startEmulatorChild({ vulnerabilities: vulns, machines: 1000, alerts: 0, rateLimits: false, recordVulnerabilityIds: false });
  try {
    for (const transforms of ['none', 'real'] as const) {
      const r = await runCollectorChild({ connector: emu.info.connector, contentTypes: ['vulnerabilities'], output: { type: 'null' }, transforms });
      const n = r.records.vulnerabilities ?? 0;
      if (n !== vulns) throw new Error(`vuln: collected ${n} records, the emulator exported ${vulns}`);
      const rate = n / (r.wallMs / 1000);
      const label = transforms === 'none' ? 'null sink' : 'transforms → null sink';
      rows.push({ bench: 'vuln export', metric: `records/s, ${label}`, value: fmt(rate), target: transforms === 'none' ? '≥ 100 000' : '', met: transforms === 'none' ? rate >= 100_000 : undefined });
      rows.push({ bench: 'vuln export', metric: `collector peak RSS, ${label} (MB)`, value: fmt(rssOf(r)), target: '< 300', met: rssOf(r) < 300 });
      notes.push(
        `vuln ${label}: ${fmt(n)} records in ${r.pages.vulnerabilities} pages of ≤ 200 000, ${fmt(r.wallMs / 1000, 2)} s wall, collector CPU ${fmt(r.cpuMs / 1000, 2)} s ` +
          `(${fmt(n / (r.cpuMs / 1000))} records per CPU-second); peak RSS VmHWM ${fmt(r.memory.hwmMB ?? NaN)} MB, sampled ${fmt(r.memory.sampledPeakMB)} MB, ${fmt(r.memory.beforeRunMB)} MB before the poll.`,
      );
    }
    const es = await emu.call<EmulatorStats>('stats');
    notes.push(`vuln: emulator served ${fmt(es.vulnerabilityRecords)} records in ${es.pages.vulnerabilities} pages over both runs; emulator peak RSS ${fmt(es.maxRssMB)} MB (not counted).`);
  } finally {
    await emu.stop();
  }
  return { rows, notes };
}
