/**
 * ForwardSink throughput: N alert-like records (~2 KB of JSON each, 5 evidence items) delivered
 * to a forward server with acknowledgements on 127.0.0.1, running in a child process so the sink
 * and the server each get a core.
 *
 *   node --import tsx bench/forward.ts [--records 200000] [--batch 5000] [--concurrency 2]
 *                                      [--server fluent|ack-only|both] [--max-batch-bytes 4194304]
 *
 * --server fluent   : the library's FluentServer (decodes every record: the realistic receiver
 *                     cost, and on this machine the slower side)
 * --server ack-only : parses only the message framing and acks (measures the sink by itself)
 *
 * Prints records/s (wall clock), the sink process's CPU time (records per CPU-second is the
 * sink's own capacity, and stays meaningful when other work shares the cores) and peak RSS.
 * Not part of `npm test`.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { FluentServer } from '@fluent-org/logger';
import type * as MsgpackModule from '@msgpack/msgpack';
import { ForwardSink } from '../plugin/output/forward.js';
import type { OutRecord } from '../plugin/output/sink.js';

type Mode = 'fluent' | 'ack-only';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

// --- server side (child process) ------------------------------------------------------------------

async function serve(mode: Mode): Promise<void> {
  let count = 0;
  let port: number;
  if (mode === 'fluent') {
    const server = new FluentServer({ listenOptions: { host: '127.0.0.1', port: 0 } });
    server.on('entry', () => count++);
    await server.listen();
    port = server.port!;
  } else {
    const require = createRequire(import.meta.url);
    const msgpack = createRequire(require.resolve('@fluent-org/logger'))('@msgpack/msgpack') as typeof MsgpackModule;
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      const frames = new FrameReader((option) => {
        count += option.size;
        if (option.chunk) socket.write(msgpack.encode({ ack: option.chunk }));
      });
      socket.on('data', (d: Buffer) => frames.push(d));
    });
    await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
    port = (server.address() as { port: number }).port;
  }
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'count') process.send!({ count, rssMB: Math.round(process.resourceUsage().maxRSS / 1024) });
    if (m.cmd === 'exit') process.exit(0);
  });
  process.send!({ port });
}

/**
 * Splits a stream of PackedForward messages `[tag, bin, {size, chunk}]` without decoding the
 * entries and without re-copying a partial message on every read (the msgpack stream decoder
 * does both, which makes a 4 MB message cost O(n²) and would measure the server, not the sink).
 */
class FrameReader {
  private parts: Buffer[] = [];
  private length = 0;
  /** end of the entries of the current message, once its header has been read */
  private binEnd = 0;

  constructor(private readonly onMessage: (option: { size: number; chunk?: string }) => void) {}

  push(data: Buffer): void {
    this.parts.push(data);
    this.length += data.length;
    for (;;) {
      if (this.binEnd === 0 && !this.readHeader()) return;
      if (this.length <= this.binEnd) return;
      const all = this.flat();
      const end = this.readOption(all);
      if (end === 0) return;
      const rest = all.subarray(end);
      this.parts = rest.length ? [rest] : [];
      this.length = rest.length;
      this.binEnd = 0;
    }
  }

  private flat(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.length)];
    return this.parts[0]!;
  }

  /** Reads `[` tag, bin header; false if more bytes are needed. */
  private readHeader(): boolean {
    if (this.length < 16) return false;
    const h = this.flat();
    if (h[0] !== 0x93) throw new Error('not a PackedForward message');
    let p = 1;
    const t = h[p]!;
    if ((t & 0xe0) === 0xa0) p += 1 + (t & 0x1f);
    else if (t === 0xd9) p += 2 + h[p + 1]!;
    else if (t === 0xda) p += 3 + h.readUInt16BE(p + 1);
    else throw new Error('unexpected tag type');
    if (h.length < p + 5) return false;
    const b = h[p]!;
    if (b === 0xc4) this.binEnd = p + 2 + h[p + 1]!;
    else if (b === 0xc5) this.binEnd = p + 3 + h.readUInt16BE(p + 1);
    else if (b === 0xc6) this.binEnd = p + 5 + h.readUInt32BE(p + 1);
    else throw new Error('unexpected entries type');
    return true;
  }

  /** Reads the option map {size, chunk}; returns the message end, or 0 if more bytes are needed. */
  private readOption(all: Buffer): number {
    let p = this.binEnd;
    const need = (n: number) => p + n <= all.length;
    if (!need(1)) return 0;
    const n = all[p++]! & 0x0f;
    const out: { size: number; chunk?: string } = { size: 0 };
    for (let i = 0; i < n; i++) {
      if (!need(1)) return 0;
      const kl = all[p]! & 0x1f;
      if (!need(2 + kl)) return 0;
      const key = all.toString('latin1', p + 1, p + 1 + kl);
      p += 1 + kl;
      const v = all[p]!;
      if (key === 'size') {
        const len = v < 0x80 ? 1 : v === 0xcc ? 2 : v === 0xcd ? 3 : 5;
        if (!need(len)) return 0;
        out.size = len === 1 ? v : len === 2 ? all[p + 1]! : len === 3 ? all.readUInt16BE(p + 1) : all.readUInt32BE(p + 1);
        p += len;
      } else {
        const sl = v & 0x1f;
        if (!need(1 + sl)) return 0;
        out.chunk = all.toString('latin1', p + 1, p + 1 + sl);
        p += 1 + sl;
      }
    }
    this.onMessage(out);
    return p;
  }
}

// --- sink side ------------------------------------------------------------------------------------

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

async function run(mode: Mode, total: number, batchSize: number, concurrency: number, maxBatchBytes: number): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', mode], { execArgv: process.execArgv });
  const ask = <T>(cmd: string) => new Promise<T>((r) => (child.once('message', r as (m: unknown) => void), child.send({ cmd })));
  const { port } = await new Promise<{ port: number }>((r) => child.once('message', r as (m: unknown) => void));

  // A pool of distinct records reused across batches: the collector produces and drops pages, so
  // the bench must not hold N records in memory (that would measure the bench, not the sink).
  const pool: OutRecord[] = Array.from({ length: batchSize }, (_, i) => ({ tag: 'microsoft_defender.syslog.alerts', time: 1_764_300_000_000 + i, record: alertRecord(i) }));
  const jsonBytes = Buffer.byteLength(JSON.stringify(pool[0]!.record));

  const sink = new ForwardSink({ type: 'forward', host: '127.0.0.1', port, maxBatchBytes });
  await sink.deliver(pool.slice(0, 10)); // connect + warm up
  const warm = (await ask<{ count: number }>('count')).count;

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
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const server = await ask<{ count: number; rssMB: number }>('count');
  await sink.close(1000);
  child.send({ cmd: 'exit' });

  const received = server.count - warm;
  const rssMB = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(
    `${mode.padEnd(8)} ${total} records (~${jsonBytes} B JSON each) in ${seconds.toFixed(2)}s: ` +
      `${Math.round(total / seconds)} records/s, ${(total * jsonBytes / seconds / 1e6).toFixed(0)} MB/s of JSON; ` +
      `sink CPU ${cpuSeconds.toFixed(2)}s = ${Math.round(total / cpuSeconds)} records per sink CPU-second; ` +
      `sink peak RSS ${rssMB} MB (${rssBeforeMB} MB before the run), server peak RSS ${server.rssMB} MB; ` +
      `received ${received}, chunks ${sink.stats.chunksSent} (re-sent ${sink.stats.chunksResent})`,
  );
  if (received < total) throw new Error(`server received ${received} < ${total}`);
}

if (process.argv.includes('--serve')) {
  await serve(arg('serve', 'fluent') as Mode);
} else {
  const total = Number(arg('records', '200000'));
  const batch = Number(arg('batch', '5000'));
  const concurrency = Number(arg('concurrency', '2'));
  const maxBatchBytes = Number(arg('max-batch-bytes', '4194304'));
  const which = arg('server', 'both');
  const modes: Mode[] = which === 'both' ? ['ack-only', 'fluent'] : [which as Mode];
  console.log(`node ${process.version}, ${total} records, deliver() batches of ${batch}, ${concurrency} concurrent`);
  for (const mode of modes) await run(mode, total, batch, concurrency, maxBatchBytes);
}
