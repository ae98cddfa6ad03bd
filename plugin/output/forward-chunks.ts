import { randomBytes } from 'node:crypto';
import type { OutRecord } from './sink.js';
import { EntryWriter } from './forward-msgpack.js';

const OPTION_BYTES = 42;

/** The caller's view of one deliver() call: settles when every record in it is acknowledged. */
export interface DeliveryGroup {
  /** records not yet acknowledged */
  remaining: number;
  settled: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/** Records of one tag from one deliver() call, being cut into chunks. */
export interface ChunkSource {
  tag: string;
  records: OutRecord[];
  next: number;
  group: DeliveryGroup;
}

/**
 * One PackedForward message. Encoded once, re-sent byte for byte (same chunk id) until an ack
 * names it: the server may ack any transmission, and Fluentd's out_forward does the same.
 */
export interface Chunk {
  id: string;
  tag: string;
  count: number;
  packet: Uint8Array | null;
  group: DeliveryGroup;
  sends: number;
}

export interface ChunkLimits {
  maxRecords: number;
  maxBytes: number;
}

/** Splits one deliver() batch by tag, keeping the order of records within each tag. */
export function splitByTag(batch: OutRecord[], group: DeliveryGroup): ChunkSource[] {
  const first = batch[0];
  if (!first) return [];
  if (batch.every((r) => r.tag === first.tag)) return [{ tag: first.tag, records: batch, next: 0, group }];
  const byTag = new Map<string, OutRecord[]>();
  for (const r of batch) {
    let list = byTag.get(r.tag);
    if (!list) byTag.set(r.tag, (list = []));
    list.push(r);
  }
  return [...byTag].map(([tag, records]) => ({ tag, records, next: 0, group }));
}

/**
 * Cuts the next chunk from `source`: as many records as fit in maxRecords and in maxBytes (the
 * whole encoded message, measured exactly while encoding rather than estimated: the entry that
 * would overflow is rolled back and starts the next chunk). A single record larger
 * than maxBytes still goes out, alone (`oversized` is set), because dropping it would lose data.
 */
export function nextChunk(
  source: ChunkSource,
  limits: ChunkLimits,
  writer: EntryWriter,
): { chunk: Chunk; oversized: boolean } {
  // what finishPacket() appends: {size: uint32, chunk: 24-char base64} is at most 1+5+5+6+25 bytes
  const budget = limits.maxBytes - OPTION_BYTES;
  const id = randomBytes(16).toString('base64');
  writer.beginPacket(source.tag);
  let count = 0;
  let oversized = false;
  while (source.next < source.records.length && count < limits.maxRecords) {
    const before = writer.length;
    const r = source.records[source.next]!;
    writer.appendEntry(r.time, r.record);
    if (writer.length > budget) {
      if (count > 0) {
        writer.truncate(before);
        break;
      }
      oversized = true;
    }
    count++;
    source.next++;
    if (oversized) break;
  }
  const packet = writer.finishPacket(count, id);
  return { chunk: { id, tag: source.tag, count, packet, group: source.group, sends: 0 }, oversized };
}
