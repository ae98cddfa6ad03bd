// Child process: a Fluent forward server that acknowledges every chunk, standing in for Fluentd /
// Fluent Bit with require_ack_response. Two modes (argv[2]):
//   stand-in       the native-speed stand-in: splits the PackedForward framing and walks every
//                  entry without building JS objects (bench/lib/forward-frames.ts), checks it,
//                  counts it, then acks; every DECODE_EVERY-th chunk of a tag is also fully decoded
//                  and its records checked. A malformed chunk is counted as an error and NOT acknowledged.
//   fluent-server  @fluent-org/logger's FluentServer: decodes every entry into JS objects.
// Why two: the JS decoder is slower than the pipeline's native receivers (see bench/README.md).
import { createServer, type Socket } from 'node:net';
import { decodeMulti, encode, ExtData } from '@msgpack/msgpack';
import { FluentServer } from '@fluent-org/logger';
import { FrameReader, ForwardFrameError, plainEntries, walkEntries, type PackedForward } from '../lib/forward-frames.js';
import { serve } from '../lib/ipc.js';

export type ForwardServerMode = 'stand-in' | 'fluent-server';

export interface ForwardServerStats {
  mode: ForwardServerMode;
  /** entries received in acknowledged chunks (stand-in: a re-sent chunk counted once) */
  entries: number;
  /** stand-in: chunks received again with an id already seen (re-sends) */
  repeatedChunks: number;
  tags: Record<string, number>;
  chunks: number;
  /** stand-in: chunks (and their entries) also decoded whole and checked */
  decodedChunks: number;
  decodedEntries: number;
  /** stand-in: malformed chunks / framing (not acknowledged; the connection is dropped) */
  errorCount: number;
  /** the first few */
  errors: string[];
  cpuMs: number;
  maxRssMB: number;
}

/** Fully decode one chunk in this many per tag (the first included): checks the walker against a real decoder. */
const DECODE_EVERY = 20;

const mode = process.argv[2] as ForwardServerMode;
if (mode !== 'stand-in' && mode !== 'fluent-server') throw new Error(`bench/proc/fluent: mode "${mode}" (want stand-in or fluent-server)`);

const stats: ForwardServerStats = { mode, entries: 0, repeatedChunks: 0, tags: {}, chunks: 0, decodedChunks: 0, decodedEntries: 0, errorCount: 0, errors: [], cpuMs: 0, maxRssMB: 0 };
const cpu0 = process.cpuUsage();
const chunksByTag = new Map<string, number>();
const seenChunks = new Set<string>();

function count(tag: string, n: number): void {
  stats.chunks++;
  chunksByTag.set(tag, (chunksByTag.get(tag) ?? 0) + 1);
  stats.entries += n;
  stats.tags[tag] = (stats.tags[tag] ?? 0) + n;
}

/** Checks one message; returns its chunk id to acknowledge. Throws ForwardFrameError if it is malformed. */
function check(m: PackedForward): string {
  const { size, chunk } = m.option;
  const where = `chunk ${JSON.stringify(chunk)} (tag ${m.tag})`;
  // ForwardSink always asks for an ack and always says how many entries it sent.
  if (typeof chunk !== 'string' || !chunk) throw new ForwardFrameError(`${where}: no chunk id in the option (ForwardSink always requires acks)`);
  if (typeof size !== 'number') throw new ForwardFrameError(`${where}: no size in the option`);
  const entries = plainEntries(m);
  const walked = walkEntries(entries);
  if (walked.error) throw new ForwardFrameError(`${where}: ${walked.error}`);
  if (walked.count !== size) throw new ForwardFrameError(`${where}: ${walked.count} entries, the option says size ${size}`);
  if ((chunksByTag.get(m.tag) ?? 0) % DECODE_EVERY === 0) {
    let n = 0;
    for (const entry of decodeMulti(entries)) {
      const problem = decodedProblem(entry);
      if (problem) throw new ForwardFrameError(`${where}, decoded entry ${n}: ${problem}`);
      n++;
    }
    if (n !== walked.count) throw new ForwardFrameError(`${where}: decoded ${n} entries, walked ${walked.count}`);
    stats.decodedChunks++;
    stats.decodedEntries += n;
  }
  // A re-sent chunk (same id: its ack was late or lost) is acked again but counted once, as the
  // bench compares the count with the records the collector sent.
  if (seenChunks.has(chunk)) stats.repeatedChunks++;
  else {
    seenChunks.add(chunk);
    count(m.tag, walked.count);
  }
  return chunk;
}

/** What is wrong with a decoded entry, if anything: the fields every alerts / hosts record has. */
function decodedProblem(entry: unknown): string | undefined {
  if (!Array.isArray(entry) || entry.length !== 2) return 'not [time, record]';
  const [time, record] = entry as [unknown, Record<string, unknown>];
  const eventTime = time instanceof ExtData && time.type === 0 && time.data.length === 8;
  if (!eventTime && !Number.isInteger(time)) return `time ${JSON.stringify(time)} is neither an EventTime nor an integer`;
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return 'the record is not a map';
  if (!Number.isInteger(record.timestamp)) return `timestamp ${JSON.stringify(record.timestamp)} is not an integer`;
  if (typeof record.msg_class !== 'string' || !record.msg_class) return `msg_class ${JSON.stringify(record.msg_class)} is not a non-empty string`;
  return undefined;
}

function standIn(socket: Socket): void {
  socket.on('error', () => undefined);
  const frames = new FrameReader((m) => socket.write(encode({ ack: check(m) })));
  socket.on('data', (data: Buffer) => {
    if (socket.destroyed) return;
    try {
      frames.push(data);
    } catch (e) {
      // A receiver cannot resynchronise a msgpack stream: report, do not ack, drop the connection
      // (the sink reconnects and re-sends; the bench stops the run when it sees errorCount > 0).
      stats.errorCount++;
      if (stats.errors.length < 10) stats.errors.push((e as Error).message);
      socket.destroy();
    }
  });
}

let port: number;
let close: () => Promise<void> | void;
if (mode === 'stand-in') {
  const server = createServer(standIn);
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  port = (server.address() as { port: number }).port;
  close = () => void server.close(); // open connections end with the process
} else {
  const server = new FluentServer({ listenOptions: { host: '127.0.0.1', port: 0 } });
  server.on('entry', (tag: string) => {
    stats.entries++;
    stats.tags[tag] = (stats.tags[tag] ?? 0) + 1;
  });
  await server.listen();
  port = server.port!;
  close = () => server.close();
}

serve(
  { port },
  {
    count: (): ForwardServerStats => {
      const cpu = process.cpuUsage(cpu0);
      return { ...stats, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMB: process.resourceUsage().maxRSS / 1024 };
    },
  },
  close,
);
