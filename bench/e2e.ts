// End to end: alerts and hosts from the emulator (child process, rate limits off, alerts
// prebuilt) through the real collector (Collector + DefenderClient + shipped transforms +
// ForwardSink; child process) into a forward server with acknowledgements (child process): the
// native-speed stand-in for Fluent Bit (headline), then the JS FluentServer (bench/README.md, §2).
// Each collector run is a fresh process: its CPU time and peak RSS (kernel high-water mark) are its own.
//   node --import tsx bench/run.ts --only e2e [--alerts 100000] [--machines 20000] [--profile]
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { forwardServerProblem, forwardServerStats, runCollectorChild, startEmulatorChild, startFluentChild, type EmulatorStats, type ForwardServerChild } from './lib/children.js';
import { hotSpots } from './lib/profile.js';
import { fmt, type BenchOutput } from './lib/report.js';
import type { CollectorRunArgs, CollectorRunResult } from './proc/collector.js';
import type { ForwardServerStats } from './proc/fluent.js';

export interface E2eOptions {
  alerts?: number;
  machines?: number;
  /** also run the alerts collection under --cpu-prof and report where its time goes */
  profile?: boolean;
}

const rssOf = (r: CollectorRunResult) => Math.max(r.memory.hwmMB ?? 0, r.memory.sampledPeakMB);

interface Delivery {
  run: CollectorRunResult;
  /** received, serverCpuMs, decodedEntries: this run's share of the server's counters */
  received: number;
  serverCpuMs: number;
  decodedEntries: number;
  /** the server's counters after the run */
  server: ForwardServerStats;
}

/**
 * One collector run into `server`. Fails at once if the server reports a malformed chunk, and
 * after the run unless the server acknowledged exactly the records the collector sent.
 */
async function deliverTo(server: ForwardServerChild, args: Omit<CollectorRunArgs, 'output'>, execArgv: string[] = []): Promise<Delivery> {
  const before = await forwardServerStats(server);
  const problem = forwardServerProblem(server);
  const run = await runCollectorChild({ ...args, output: { type: 'forward', port: server.info.port } }, execArgv, problem);
  const after = await forwardServerStats(server);
  const failure = await problem();
  if (failure) throw new Error(`e2e: ${failure}`);
  const received = after.entries - before.entries;
  if (received !== run.recordsOut) throw new Error(`e2e: the ${after.mode} forward server received ${received} records, the collector sent ${run.recordsOut}`);
  return { run, received, serverCpuMs: after.cpuMs - before.cpuMs, decodedEntries: after.decodedEntries - before.decodedEntries, server: after };
}

const serverNote = (d: Delivery) =>
  `server CPU ${fmt(d.serverCpuMs / 1000, 2)} s (${fmt((d.serverCpuMs * 1000) / d.received, 1)} µs per record` +
  (d.server.mode === 'stand-in' ? `; ${fmt(d.decodedEntries)} of the records also decoded whole and checked; ${d.server.repeatedChunks} re-sent chunks counted once so far)` : ')');

export async function e2eBench(o: E2eOptions = {}): Promise<BenchOutput> {
  const alerts = o.alerts ?? 100_000;
  const machines = o.machines ?? 20_000;
  const rows: BenchOutput['rows'] = [];
  const notes: string[] = [];
  const emu = await startEmulatorChild({ alerts, machines, historyHours: 2, rateLimits: false, prebuildAlerts: true, evidencePerAlert: 5, vulnerabilities: 0, recordVulnerabilityIds: false });
  const standIn = await startFluentChild('stand-in');
  const fluentServer = await startFluentChild('fluent-server');
  try {
    notes.push(`e2e: emulator started in ${fmt(emu.info.startMs / 1000, 1)} s with ${fmt(alerts)} prebuilt alerts (2 h of history) and ${fmt(machines)} machines; rate limits off.`);
    const alertsArgs = { connector: emu.info.connector, contentTypes: ['alerts' as const], lookbackHours: 3, transforms: 'real' as const };
    const checkAlerts = (r: CollectorRunResult) => {
      const n = r.records.alerts ?? 0;
      if (n !== alerts) throw new Error(`e2e: collected ${n} alerts, the emulator holds ${alerts}`);
      return n;
    };

    // The alerts to a null sink first: it also warms the emulator up (JIT), as Defender's own
    // servers always are, so that the headline does not pay for it.
    const an = await runCollectorChild({ ...alertsArgs, output: { type: 'null' } });

    // ---- alerts into the native-speed stand-in (the headline)
    const emuBefore = await emu.call<EmulatorStats>('stats');
    const d = await deliverTo(standIn, alertsArgs);
    const emuCpuMs = (await emu.call<EmulatorStats>('stats')).cpuMs - emuBefore.cpuMs;
    const a = d.run;
    const alertCount = checkAlerts(a);
    const alertRate = alertCount / (a.wallMs / 1000);
    const ev = a.evidence!;
    rows.push({ bench: 'e2e', metric: 'alerts/s (emulator → collector → forward ack; native-speed stand-in server)', value: fmt(alertRate), target: '≥ 50 000', met: alertRate >= 50_000 });
    rows.push({ bench: 'e2e', metric: 'alerts per collector CPU-second', value: fmt(alertCount / (a.cpuMs / 1000)), target: '' });
    rows.push({ bench: 'e2e', metric: 'collector peak RSS, alerts (MB)', value: fmt(rssOf(a)), target: '< 250', met: rssOf(a) < 250 });
    notes.push(
      `e2e alerts (stand-in server: walks and checks every entry, acks after the check): ${fmt(alertCount)} alerts in ${a.pages.alerts} pages, ${fmt(a.wallMs / 1000, 2)} s wall, collector CPU ${fmt(a.cpuMs / 1000, 2)} s; ` +
        `evidence per alert avg ${fmt(ev.items / ev.alerts, 2)} (max ${ev.max}; issue 4 asks for 5 per alert), ~${fmt(ev.sampleBytes / ev.sampled)} B of JSON per alert; ` +
        `forward server acknowledged ${fmt(d.received)} records in ${a.sink?.chunksAcked} chunks (${a.sink?.chunksResent} re-sent), ${serverNote(d)}; ` +
        `peak RSS: VmHWM ${fmt(a.memory.hwmMB ?? NaN)} MB, sampled every 50 ms ${fmt(a.memory.sampledPeakMB)} MB, ${fmt(a.memory.beforeRunMB)} MB before the poll.`,
    );

    // What the three processes cost per alert, and so the most this machine could do with every
    // core busy and none idle: the headline rate measured against its physical ceiling.
    const perAlert = { collector: (a.cpuMs * 1000) / alertCount, emulator: (emuCpuMs * 1000) / alertCount, server: (d.serverCpuMs * 1000) / alertCount };
    const cores = availableParallelism();
    const ceiling = (cores * 1e6) / (perAlert.collector + perAlert.emulator + perAlert.server);
    rows.push({ bench: 'e2e', metric: `ceiling of this machine for that run (${cores} cores ÷ CPU per alert of collector + emulator + server)`, value: fmt(ceiling), target: '' });
    notes.push(
      `e2e alerts, CPU per alert: collector ${fmt(perAlert.collector, 1)} µs, emulator ${fmt(perAlert.emulator, 1)} µs, stand-in server ${fmt(perAlert.server, 1)} µs; ` +
        `${cores} cores fully busy could do at most ${fmt(ceiling)} alerts/s, and the collector alone (one thread) ${fmt(1e6 / perAlert.collector)} alerts/s; ` +
        `even a collector costing nothing would leave the emulator and the server at most ${fmt((cores * 1e6) / (perAlert.emulator + perAlert.server))} alerts/s on ${cores} cores.`,
    );

    // ---- the same alerts into the JS FluentServer
    const f = await deliverTo(fluentServer, alertsArgs);
    const fluentRate = checkAlerts(f.run) / (f.run.wallMs / 1000);
    rows.push({ bench: 'e2e', metric: 'alerts/s through the JS FluentServer (decodes every record)', value: fmt(fluentRate), target: '' });
    notes.push(
      `e2e alerts into the JS FluentServer: ${fmt(f.run.wallMs / 1000, 2)} s wall, collector CPU ${fmt(f.run.cpuMs / 1000, 2)} s (${fmt(alertCount / (f.run.cpuMs / 1000))} alerts per CPU-second), ` +
        `VmHWM ${fmt(f.run.memory.hwmMB ?? NaN)} MB; ${fmt(f.received)} records acknowledged in ${f.run.sink?.chunksAcked} chunks, ${serverNote(f)}.`,
    );

    // ---- the same alerts to a null sink (run first, above): how much of the time is the forward leg
    const nullRate = (an.records.alerts ?? 0) / (an.wallMs / 1000);
    rows.push({ bench: 'e2e', metric: 'alerts/s, same path to a null sink (no forward leg)', value: fmt(nullRate), target: '' });
    notes.push(
      `e2e alerts to a null sink: ${fmt(an.wallMs / 1000, 2)} s wall, collector CPU ${fmt(an.cpuMs / 1000, 2)} s (${fmt((an.records.alerts ?? 0) / (an.cpuMs / 1000))} alerts per CPU-second), VmHWM ${fmt(an.memory.hwmMB ?? NaN)} MB; ` +
        `so the forward leg (msgpack encoding, socket, acks) costs the collector ${fmt(((a.cpuMs - an.cpuMs) * 1000) / alertCount, 1)} µs of CPU per alert and fetch + parse + map ${fmt((an.cpuMs * 1000) / alertCount, 1)} µs.`,
    );

    // ---- hosts (stand-in)
    const hd = await deliverTo(standIn, { connector: emu.info.connector, contentTypes: ['host'], transforms: 'real' });
    const h = hd.run;
    const hostCount = h.records.host ?? 0;
    if (hostCount !== machines) throw new Error(`e2e: collected ${hostCount} machines, the emulator holds ${machines}`);
    const hostRate = hostCount / (h.wallMs / 1000);
    rows.push({ bench: 'e2e', metric: 'hosts/s (each → Syslog + Assets record; stand-in server)', value: fmt(hostRate), target: '' });
    rows.push({ bench: 'e2e', metric: 'hosts per collector CPU-second', value: fmt(hostCount / (h.cpuMs / 1000)), target: '' });
    rows.push({ bench: 'e2e', metric: 'collector peak RSS, hosts (MB)', value: fmt(rssOf(h)), target: '< 250', met: rssOf(h) < 250 });
    notes.push(
      `e2e hosts (stand-in server): ${fmt(hostCount)} machines (${fmt(h.recordsOut)} records) in ${h.pages.host} pages, ${fmt(h.wallMs / 1000, 2)} s wall, collector CPU ${fmt(h.cpuMs / 1000, 2)} s; VmHWM ${fmt(h.memory.hwmMB ?? NaN)} MB; ${serverNote(hd)}.`,
    );

    const es = await emu.call<EmulatorStats>('stats');
    const ss = await forwardServerStats(standIn);
    const fs = await forwardServerStats(fluentServer);
    notes.push(
      `e2e: emulator peak RSS ${fmt(es.maxRssMB)} MB, forward servers' peak RSS: stand-in ${fmt(ss.maxRssMB)} MB, FluentServer ${fmt(fs.maxRssMB)} MB (not counted in the collector's); ` +
        `records per tag at the stand-in: ${Object.entries(ss.tags).map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}; it decoded ${ss.decodedChunks} of ${ss.chunks} chunks whole.`,
    );

    if (o.profile) {
      const dir = mkdtempSync(join(tmpdir(), 'defender-fluent-prof-'));
      try {
        const p = (await deliverTo(standIn, alertsArgs, ['--cpu-prof', '--cpu-prof-dir', dir])).run;
        const hs = hotSpots(dir, 15);
        notes.push(`e2e profile (alerts into the stand-in, --cpu-prof, ${fmt(p.wallMs / 1000, 2)} s wall under the profiler; ${fmt(hs.totalMs)} ms sampled):`);
        notes.push(
          '  by area: ' +
            Object.entries(hs.byArea)
              .sort((x, y) => y[1] - x[1])
              .slice(0, 10)
              .map(([k, v]) => `${k} ${fmt((100 * v) / hs.totalMs, 1)}%`)
              .join(', '),
        );
        for (const s of hs.spots) notes.push(`  ${fmt(100 * s.share, 1).padStart(5)}%  ${fmt(s.selfMs).padStart(6)} ms  ${s.name}  ${s.where}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await fluentServer.stop();
    await standIn.stop();
    await emu.stop();
  }
  return { rows, notes };
}
