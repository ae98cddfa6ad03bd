/**
 * ForwardSink throughput: N alert-like records (~2 KB of JSON each, 5 evidence items) delivered
 * to a forward server with acknowledgements on 127.0.0.1, running in a child process so the sink
 * and the server each get a core.
 *
 *   node --import tsx bench/forward.ts [--records 200000] [--batch 5000] [--concurrency 2]
 *                                      [--server fluent|stand-in|both] [--max-batch-bytes 4194304]
 *
 * --server fluent   : the library's FluentServer (decodes every record: on this machine the
 *                     slower side)
 * --server stand-in : the e2e bench's native-speed stand-in (bench/proc/fluent.ts): walks and
 *                     checks every entry without decoding it, decodes one chunk in 20, then acks;
 *                     measures the sink by itself, and fails on a malformed message
 *
 * Prints records/s (wall clock), the sink process's CPU time (records per CPU-second is the
 * sink's own capacity, and stays meaningful when other work shares the cores) and peak RSS.
 * Not part of `npm test`.
 */
import { ForwardSink } from '../plugin/output/forward.js';
import type { OutRecord } from '../plugin/output/sink.js';
import { forwardServerProblem, forwardServerStats, startFluentChild, unlessProblem } from './lib/children.js';
import type { ForwardServerMode } from './proc/fluent.js';

const modes: Record<string, ForwardServerMode> = { 'stand-in': 'stand-in', fluent: 'fluent-server' };

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** An alert record shaped like the Syslog index contract, ~2 KB of JSON. */
function alertRecord(i: number): Record<string, unknown> {
  const now = 1_764_300_000_000 + i;
  const evidence = [
    { entityType: 'User', evidenceCreationTime: '2026-11-28T05:14:23.05Z', accountName: 'jdoe', domainName: 'FABRIKAM', userSid: 'S-1-5-21-1004336348-1177238915-682003330-51234', userPrincipalName: 'jdoe@fabrikam.test' },
    { entityType: 'Process', evidenceCreationTime: '2026-11-28T05:14:23.21Z', sha1: '0f1e2d3c4b5a69788796a5b4c3d2e1f00a1b2c3d', fileName: 'powershell.exe', filePath: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0', processId: 7312 + i, processCommandLine: 'powershell.exe -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA', detectionStatus: 'Detected' },
    { entityType: 'File', evidenceCreationTime: '2026-11-28T05:14:23.05Z', sha1: 'c3d2e1f00a1b2c3d4e5f60718293a4b5c6d7e8f9', fileName: 'payload.ps1', filePath: 'C:\\Users\\jdoe\\AppData\\Local\\Temp' },
    { entityType: 'Ip', evidenceCreationTime: '2026-11-28T05:14:23.05Z', ipAddress: `203.0.113.${i % 250}` },
    { entityType: 'Url', evidenceCreationTime: '2026-11-28T05:14:23.05Z', url: 'http://malicious.example.test/stage2.bin' },
  ];
  return {
    timestamp: now,
    write_time: now + 1000,
    msg_class: 'microsoft_defender_alerts',
    msg_origin: { source: 'microsoft_defender', vendor: 'microsoft', category: 'endpoint', processor: { name: 'microsoft_defender', type: 'log_collector' } },
    tenant_name: 'fabrikam',
    engid_name: 'microsoft_defender_main',
    severity: 50,
    event_score: 50,
    event_status: 'New',
    hostname: 'wks-0142.corp.fabrikam.test',
    xdr_event: { name: 'Suspicious PowerShell command line', display_name: 'Suspicious PowerShell command line', description: 'A suspicious PowerShell activity was observed on the device.', tactic: { id: 'TA0002', name: 'Execution' }, technique: { id: 'T1059.001', name: 'PowerShell' }, ttps: ['T1059.001', 'T1105'] },
    microsoft_defender: {
      id: `da63885391740261${i}_-1187734598`,
      incidentId: 48211 + i,
      severity: 'Medium',
      status: 'New',
      detectionSource: 'WindowsDefenderAtp',
      category: 'Execution',
      title: 'Suspicious PowerShell command line',
      alertCreationTime: '2026-11-28T05:14:22.3310452Z',
      lastUpdateTime: '2026-11-28T05:14:24.61Z',
      machineId: '4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c',
      computerDnsName: 'wks-0142.corp.fabrikam.test',
      rbacGroupName: 'Workstations-EU',
      mitreTechniques: ['T1059.001', 'T1105'],
      relatedUser: { userName: 'jdoe', domainName: 'FABRIKAM' },
      evidence,
    },
  };
}

async function run(mode: string, total: number, batchSize: number, concurrency: number, maxBatchBytes: number): Promise<void> {
  const server = await startFluentChild(modes[mode]!);
  const count = () => forwardServerStats(server);
  const problem = forwardServerProblem(server);

  // A pool of distinct records reused across batches: the collector produces and drops pages, so
  // the bench must not hold N records in memory (that would measure the bench, not the sink).
  const pool: OutRecord[] = Array.from({ length: batchSize }, (_, i) => ({ tag: 'microsoft_defender.syslog.alerts', time: 1_764_300_000_000 + i, record: alertRecord(i) }));
  const jsonBytes = Buffer.byteLength(JSON.stringify(pool[0]!.record));

  const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port: server.info.port, maxBatchBytes });
  try {
    await unlessProblem(sink.deliver(pool.slice(0, 10)), problem); // connect + warm up
    const warm = (await count()).entries;

    const rssBeforeMB = Math.round(process.memoryUsage().rss / 2 ** 20);
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    let sent = 0;
    const worker = async () => {
      while (sent < total) {
        const n = Math.min(batchSize, total - sent);
        sent += n;
        await sink.deliver(n === batchSize ? pool : pool.slice(0, n));
      }
    };
    await unlessProblem(Promise.all(Array.from({ length: concurrency }, worker)), problem);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const stats = await count();

    const received = stats.entries - warm;
    const rssMB = Math.round(process.resourceUsage().maxRSS / 1024);
    const checked = stats.mode === 'stand-in' ? `, ${stats.decodedChunks} of ${stats.chunks} chunks also decoded whole and checked` : '';
    console.log(
      `${mode.padEnd(8)} ${total} records (~${jsonBytes} B JSON each) in ${seconds.toFixed(2)}s: ` +
        `${Math.round(total / seconds)} records/s, ${(total * jsonBytes / seconds / 1e6).toFixed(0)} MB/s of JSON; ` +
        `sink CPU ${cpuSeconds.toFixed(2)}s = ${Math.round(total / cpuSeconds)} records per sink CPU-second; ` +
        `sink peak RSS ${rssMB} MB (${rssBeforeMB} MB before the run), server peak RSS ${Math.round(stats.maxRssMB)} MB, server CPU ${(stats.cpuMs / 1000).toFixed(2)}s; ` +
        `received ${received}${checked}, chunks ${sink.stats.chunksSent} (re-sent ${sink.stats.chunksResent})`,
    );
    if (received < total) throw new Error(`server received ${received} < ${total}`);
  } finally {
    await sink.close(1000).catch(() => undefined);
    await server.stop();
  }
}

const total = Number(arg('records', '200000'));
const batch = Number(arg('batch', '5000'));
const concurrency = Number(arg('concurrency', '2'));
const maxBatchBytes = Number(arg('max-batch-bytes', '4194304'));
const which = arg('server', 'both');
const runs = which === 'both' ? ['stand-in', 'fluent'] : [which];
for (const mode of runs) if (!modes[mode]) throw new Error(`--server ${mode}: want ${Object.keys(modes).join(', ')} or both`);
console.log(`node ${process.version}, ${total} records, deliver() batches of ${batch}, ${concurrency} concurrent`);
for (const mode of runs) await run(mode, total, batch, concurrency, maxBatchBytes);
