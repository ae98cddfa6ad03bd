import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { ForwardOutputConfig } from '../generated/config.js';
import { createLogger, redact, registerSecret, type Logger } from '../log.js';
import { type OutRecord, type Sink, type SinkState, SinkClosedError } from './sink.js';
import { EntryWriter } from './forward-msgpack.js';
import { ForwardConnection, HandshakeAuthError, HandshakeConfigError, type ForwardSecurity } from './forward-socket.js';
import { nextChunk, splitByTag, type Chunk, type ChunkLimits, type ChunkSource, type DeliveryGroup } from './forward-chunks.js';

/** Defaults of schemas/config.schema.json#/definitions/forwardOutput (the loader applies them too). */
export const forwardDefaults = {
  host: '127.0.0.1',
  port: 24224,
  ackTimeoutSeconds: 30,
  maxBatchRecords: 5000,
  maxBatchBytes: 4194304,
  clientHostname: 'defender-fluent',
  reconnectMaxSeconds: 60,
} as const;

export interface ForwardSinkOptions {
  logger?: Logger;
  /** Folder that relative tls.ca / tls.cert / tls.key paths are resolved against (the config file's folder). Default: cwd. */
  baseDir?: string;
  /** Chunks written but not yet acknowledged, at most. Bounds memory and socket buffering. Default 4. */
  maxInFlightChunks?: number;
  /** First reconnect delay; doubles per failed attempt up to reconnectMaxSeconds. Default 500 ms. */
  reconnectMinMs?: number;
}

export interface ForwardSinkStats {
  connectAttempts: number;
  chunksSent: number;
  /** transmissions after the first one (ack deadline passed, or connection lost before the ack) */
  chunksResent: number;
  chunksAcked: number;
  recordsAcked: number;
  ackTimeouts: number;
}

interface InFlight {
  chunk: Chunk;
  conn: ForwardConnection;
  sentAt: number;
  timer: NodeJS.Timeout;
}

/**
 * Fluent forward sink: PackedForward messages with EventTime (ms precision), acknowledgements
 * always required, TLS and shared_key / username+password handshake (forward-socket.ts).
 *
 * Delivery is at-least-once. Every deliver() batch is cut into chunks (≤ maxBatchRecords records,
 * ≤ maxBatchBytes encoded bytes per message), each with an ack deadline. A chunk not acknowledged
 * in time, or written on a connection that dropped, is re-sent whole with the same chunk id until
 * an ack names it, so the pipeline may see it twice. Nothing is ever dropped for space: memory is
 * bounded by the in-flight window and by the caller, who waits on deliver(). While the server is
 * unreachable or refuses the handshake, deliver() stays pending, state() says why, and the sink
 * reconnects with exponential backoff (capped at reconnectMaxSeconds).
 */
export class ForwardSink implements Sink {
  readonly stats: ForwardSinkStats = { connectAttempts: 0, chunksSent: 0, chunksResent: 0, chunksAcked: 0, recordsAcked: 0, ackTimeouts: 0 };

  private readonly log: Logger;
  private readonly endpoint: string;
  private readonly limits: ChunkLimits;
  private readonly ackTimeoutMs: number;
  private readonly reconnectMinMs: number;
  private readonly reconnectMaxMs: number;
  private readonly maxInFlight: number;
  private readonly connectionOptions: { host: string; port: number; tls?: ConnectionOptions; security?: ForwardSecurity };
  private readonly writer: EntryWriter;

  /** encoded chunks waiting for their first send or a re-send, FIFO */
  private readonly ready: Chunk[] = [];
  /** every encoded chunk without an ack yet, by chunk id (in flight or waiting in `ready`) */
  private readonly unacked = new Map<string, Chunk>();
  private readonly inflight = new Map<string, InFlight>();
  private readonly groups = new Set<DeliveryGroup>();
  /** chunks whose ack deadline passed and that are still unacknowledged (state() turns red) */
  private readonly overdue = new Set<string>();

  private conn: ForwardConnection | null = null;
  private established = false;
  private connError: Error | null = null;
  private connLastAckAt = 0;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private reason: string;
  private pumping = false;
  private closing = false;
  private finished = false;
  private closed: Promise<void> | null = null;
  private wakeClose: (() => void) | null = null;

  constructor(config: ForwardOutputConfig, opts: ForwardSinkOptions = {}) {
    const host = config.host ?? forwardDefaults.host;
    const port = config.port ?? forwardDefaults.port;
    this.endpoint = `${host}:${port}`;
    this.log = (opts.logger ?? createLogger('silent')).child({ component: 'forward', server: this.endpoint });
    this.limits = {
      maxRecords: config.maxBatchRecords ?? forwardDefaults.maxBatchRecords,
      maxBytes: config.maxBatchBytes ?? forwardDefaults.maxBatchBytes,
    };
    this.writer = new EntryWriter(this.limits.maxBytes + 65536);
    this.ackTimeoutMs = (config.ackTimeoutSeconds ?? forwardDefaults.ackTimeoutSeconds) * 1000;
    this.reconnectMaxMs = (config.reconnectMaxSeconds ?? forwardDefaults.reconnectMaxSeconds) * 1000;
    this.reconnectMinMs = Math.min(opts.reconnectMinMs ?? 500, this.reconnectMaxMs);
    this.maxInFlight = Math.max(1, opts.maxInFlightChunks ?? 4);

    for (const secret of [config.sharedKey, config.password]) if (secret) registerSecret(secret);
    const security =
      config.sharedKey !== undefined || config.username !== undefined
        ? {
            clientHostname: config.clientHostname ?? forwardDefaults.clientHostname,
            sharedKey: config.sharedKey ?? '',
            username: config.username,
            password: config.password,
          }
        : undefined;
    this.connectionOptions = { host, port, tls: config.tls ? tlsOptions(config.tls, opts.baseDir ?? process.cwd()) : undefined, security };
    this.reason = `connecting to forward server ${this.endpoint}`;
    this.connect();
  }

  deliver(batch: OutRecord[]): Promise<void> {
    if (this.closing) return Promise.reject(new SinkClosedError());
    const problem = checkBatch(batch);
    if (problem) return Promise.reject(new TypeError(`forward sink: ${problem}`));
    if (batch.length === 0) return Promise.resolve();
    return new Promise<void>((resolvePromise, rejectPromise) => {
      const group: DeliveryGroup = {
        remaining: batch.length,
        settled: false,
        resolve: resolvePromise,
        reject: rejectPromise,
      };
      this.groups.add(group);
      this.reconnectTimer?.ref();
      for (const source of splitByTag(batch, group)) this.encode(source);
      this.pump();
    });
  }

  state(): SinkState {
    if (this.closing) return { ok: false, reason: 'closed' };
    if (!this.established) return { ok: false, reason: this.reason };
    if (this.overdue.size > 0) {
      return {
        ok: false,
        reason:
          `${this.overdue.size} chunk(s) not acknowledged by ${this.endpoint} within ${this.ackTimeoutMs / 1000}s, re-sending ` +
          `(a server that drops chunks without an ack, e.g. Fluentd chunk_size_limit or Fluent Bit buffer_max_size below output.maxBatchBytes, causes this)`,
      };
    }
    return { ok: true };
  }

  /** Keeps sending for up to timeoutMs, then rejects every unfinished deliver() with SinkClosedError. */
  close(timeoutMs: number): Promise<void> {
    this.closed ??= this.shutdown(timeoutMs);
    return this.closed;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.groups.size > 0) {
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, Math.max(0, timeoutMs));
        this.wakeClose = () => {
          clearTimeout(timer);
          wake();
        };
      });
    }
    this.finished = true;
    this.wakeClose = null;
    const pending = this.groups.size;
    for (const group of [...this.groups]) this.settle(group, new SinkClosedError());
    if (pending) this.log.warn(`closed with ${pending} batch(es) not acknowledged; they were failed (their cursors do not advance)`);
    for (const f of this.inflight.values()) clearTimeout(f.timer);
    this.inflight.clear();
    this.unacked.clear();
    this.overdue.clear();
    this.ready.length = 0;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.reconnectTimer = this.connectTimer = null;
    const conn = this.conn;
    this.conn = null;
    this.established = false;
    if (conn) {
      // Graceful end, but never hang on a connection that cannot finish (still connecting, peer gone).
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((r) => (timer = setTimeout(r, 1000)));
      await Promise.race([conn.end().catch(() => undefined), gaveUp]);
      clearTimeout(timer);
      conn.destroy();
    }
  }

  // --- connection -------------------------------------------------------------------------------

  private connect(): void {
    this.reconnectTimer = null;
    if (this.finished) return;
    this.stats.connectAttempts++;
    const conn = new ForwardConnection(this.connectionOptions);
    this.conn = conn;
    this.established = false;
    this.connError = null;
    this.connLastAckAt = 0;
    // TCP + TLS + handshake must finish in time, or the attempt counts as failed.
    const connectTimeoutMs = Math.max(this.ackTimeoutMs, 5000);
    const connectTimer = setTimeout(() => {
      if (this.conn !== conn || this.established) return;
      this.connError = new Error(`no connection/handshake within ${connectTimeoutMs / 1000}s`);
      conn.destroy();
    }, connectTimeoutMs);
    this.connectTimer = connectTimer;
    conn.on('established', () => {
      clearTimeout(connectTimer);
      if (this.conn !== conn) return;
      this.established = true;
      this.failures = 0;
      this.log.info('connected to forward server');
      this.pump();
    });
    conn.on('writable', () => {
      if (this.conn === conn) this.pump();
    });
    conn.on('ack', (chunkId: string) => {
      if (this.conn === conn) this.connLastAckAt = Date.now();
      this.onAck(chunkId);
    });
    conn.on('error', (err: Error) => {
      if (this.conn === conn) this.connError = err;
    });
    conn.on('close', () => {
      clearTimeout(connectTimer);
      if (this.conn === conn) this.onClosed(conn);
    });
    conn.connect();
  }

  private onClosed(conn: ForwardConnection): void {
    const wasEstablished = this.established;
    this.conn = null;
    this.established = false;
    // Whatever was written on this connection without an ack goes out again on the next one.
    const lost: Chunk[] = [];
    for (const f of this.inflight.values()) {
      if (f.conn !== conn) continue;
      clearTimeout(f.timer);
      this.inflight.delete(f.chunk.id);
      lost.push(f.chunk);
    }
    for (const chunk of lost) this.requeue(chunk);
    if (this.finished) return;
    if (!wasEstablished) this.failures++;
    const delay = this.backoffMs();
    const { reason, refused } = describeFailure(this.connError, wasEstablished, this.endpoint, this.connectionOptions.security !== undefined);
    this.reason = `${reason}; retrying in ${formatDelay(delay)}`;
    const fields = { attempt: this.stats.connectAttempts, retryInMs: delay, unacknowledgedChunks: lost.length };
    if (refused) this.log.error(fields, this.reason);
    else this.log.warn(fields, this.reason);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
    // An idle sink must not keep the process alive just to reconnect.
    if (this.groups.size === 0) this.reconnectTimer.unref();
  }

  private backoffMs(): number {
    if (this.failures === 0) return this.reconnectMinMs;
    const base = this.reconnectMinMs * 2 ** Math.min(this.failures - 1, 20);
    // ±20 % jitter so that many collectors do not reconnect in lockstep
    return Math.round(Math.min(this.reconnectMaxMs, base * (0.8 + Math.random() * 0.4)));
  }

  // --- sending ----------------------------------------------------------------------------------

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.conn && this.established && this.inflight.size < this.maxInFlight && this.conn.writable()) {
        const chunk = this.takeNext();
        if (!chunk) break;
        this.send(this.conn, chunk);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Queues a sent chunk to go out again: after the re-sends already waiting (their order kept),
   * ahead of every chunk never sent, since the oldest deliveries are the ones callers wait on.
   */
  private requeue(chunk: Chunk): void {
    const firstNew = this.ready.findIndex((c) => c.sends === 0);
    this.ready.splice(firstNew === -1 ? this.ready.length : firstNew, 0, chunk);
  }

  private takeNext(): Chunk | null {
    while (this.ready.length > 0) {
      const chunk = this.ready.shift()!;
      if (this.unacked.has(chunk.id) && !chunk.group.settled) return chunk;
      this.unacked.delete(chunk.id);
      this.overdue.delete(chunk.id);
    }
    return null;
  }

  /**
   * Cuts a batch into encoded chunks at once, not when a send slot frees: the records then die
   * young (the caller's objects are ~3× their msgpack size and would otherwise be promoted by the
   * garbage collector while they wait), and memory stays bounded by the callers awaiting deliver().
   */
  private encode(source: ChunkSource): void {
    while (source.next < source.records.length && !source.group.settled) {
      const index = source.next;
      let cut: ReturnType<typeof nextChunk>;
      try {
        cut = nextChunk(source, this.limits, this.writer);
      } catch (e) {
        // A record that cannot be encoded (circular, absurdly deep): fail this deliver() loudly
        // rather than drop the record or block every later batch behind it.
        const err = new TypeError(`forward sink: a record with tag ${source.tag} (record ${index + 1} of that tag in the batch) cannot be encoded: ${(e as Error).message}`);
        this.settle(source.group, err);
        return;
      }
      if (cut.oversized) {
        this.log.warn({ tag: source.tag, bytes: cut.chunk.packet!.length, maxBatchBytes: this.limits.maxBytes }, 'one record is larger than maxBatchBytes; sending it alone');
      }
      this.unacked.set(cut.chunk.id, cut.chunk);
      this.ready.push(cut.chunk);
    }
  }

  private send(conn: ForwardConnection, chunk: Chunk): void {
    if (!conn.write(chunk.packet!)) {
      this.ready.unshift(chunk);
      return;
    }
    if (chunk.sends > 0) this.stats.chunksResent++;
    chunk.sends++;
    this.stats.chunksSent++;
    const timer = setTimeout(() => this.onDeadline(chunk.id, conn), this.ackTimeoutMs);
    this.inflight.set(chunk.id, { chunk, conn, sentAt: Date.now(), timer });
  }

  private onAck(chunkId: string): void {
    const chunk = this.unacked.get(chunkId);
    if (!chunk) return; // an ack for a transmission we already counted (re-sent chunk)
    this.unacked.delete(chunkId);
    const f = this.inflight.get(chunkId);
    if (f) {
      clearTimeout(f.timer);
      this.inflight.delete(chunkId);
    }
    // Sent once and acknowledged: the socket has written every byte of it, so the buffer can be
    // reused. A re-sent chunk may still sit in the socket's queue (an ack of an earlier
    // transmission can overtake it): leave that one to the garbage collector.
    if (chunk.packet && chunk.sends === 1) this.writer.recycle(chunk.packet);
    chunk.packet = null;
    this.overdue.delete(chunkId);
    this.stats.chunksAcked++;
    this.stats.recordsAcked += chunk.count;
    const group = chunk.group;
    if (!group.settled) {
      group.remaining -= chunk.count;
      if (group.remaining <= 0) this.settle(group);
    }
    this.pump();
  }

  private onDeadline(chunkId: string, conn: ForwardConnection): void {
    const f = this.inflight.get(chunkId);
    if (!f || f.conn !== conn) return;
    this.inflight.delete(chunkId);
    this.stats.ackTimeouts++;
    this.overdue.add(chunkId);
    this.requeue(f.chunk);
    const seconds = this.ackTimeoutMs / 1000;
    if (this.conn === conn && this.connLastAckAt < f.sentAt) {
      // Not a single ack on this connection since the chunk went out: presume it stalled
      // (half-open, wedged server) and re-send everything on a fresh connection.
      this.log.warn({ tag: f.chunk.tag, records: f.chunk.count }, `no acknowledgement within ${seconds}s; reconnecting and re-sending`);
      this.connError = new Error(`no acknowledgement within ${seconds}s`);
      conn.destroy();
      return;
    }
    // The server acks other chunks, just not this one yet: re-send it on the same connection;
    // an ack of either transmission completes it (same chunk id).
    this.log.warn({ tag: f.chunk.tag, records: f.chunk.count }, `no acknowledgement within ${seconds}s; re-sending the chunk`);
    this.pump();
  }

  private settle(group: DeliveryGroup, err?: Error): void {
    if (group.settled) return;
    group.settled = true;
    this.groups.delete(group);
    if (err) group.reject(err);
    else group.resolve();
    if (this.groups.size === 0) {
      this.reconnectTimer?.unref();
      this.wakeClose?.();
    }
  }
}

function tlsOptions(tls: NonNullable<ForwardOutputConfig['tls']>, baseDir: string): ConnectionOptions {
  const read = (key: 'ca' | 'cert' | 'key') => {
    const f = tls[key];
    if (!f) return undefined;
    const path = resolve(baseDir, f);
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`output.tls.${key}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key'), rejectUnauthorized: !tls.insecure };
}

const MAX_EVENT_TIME_MS = 2 ** 32 * 1000; // EventTime seconds are uint32

/** Why a batch cannot be sent at all (checked before anything is queued), or null. */
function checkBatch(batch: OutRecord[]): string | null {
  if (!Array.isArray(batch)) return 'deliver() expects an array of records';
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i];
    if (!r || typeof r !== 'object') return `batch[${i}] is not an object`;
    if (typeof r.tag !== 'string' || r.tag.length === 0) return `batch[${i}].tag must be a non-empty string`;
    if (typeof r.time !== 'number' || !(r.time >= 0 && r.time < MAX_EVENT_TIME_MS)) return `batch[${i}].time must be epoch milliseconds between 1970 and 2106, got ${String(r.time)}`;
    if (!r.record || typeof r.record !== 'object' || Array.isArray(r.record)) return `batch[${i}].record must be an object`;
  }
  return null;
}

/** A status/log reason for a failed or lost connection; never includes secrets. */
function describeFailure(err: Error | null, wasEstablished: boolean, endpoint: string, secured: boolean): { reason: string; refused: boolean } {
  // OpenSSL messages are multi-line dumps; their `reason` is the readable part.
  const sslReason = (err as { reason?: unknown } | null)?.reason;
  const message = err ? redact(typeof sslReason === 'string' ? sslReason : (err.message.split('\n')[0] ?? '')) : '';
  if (err instanceof HandshakeConfigError) {
    return { reason: `forward handshake with ${endpoint} failed: ${message} (output.clientHostname must differ from the server's self_hostname)`, refused: true };
  }
  if (err instanceof HandshakeAuthError) {
    const hint = secured ? 'check output.sharedKey / username / password' : 'the server requires a handshake: set output.sharedKey';
    return { reason: `forward server ${endpoint} refused the handshake: ${message} (${hint})`, refused: true };
  }
  const code = err ? (err as NodeJS.ErrnoException).code : undefined;
  if (code?.startsWith('ERR_OSSL') || code === 'ERR_SSL_CA_MD_TOO_WEAK' || code === 'ERR_SSL_EE_KEY_TOO_SMALL') {
    return { reason: `TLS setup for ${endpoint} failed, check output.tls.ca / cert / key: ${message}`, refused: true };
  }
  if (code && /CERT|TLS|SSL|SELF_SIGNED|VERIFY/i.test(code)) {
    const hint = code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? ' (does the server listen with TLS?)' : '';
    return { reason: `TLS handshake with ${endpoint} failed: ${message}${hint}`, refused: true };
  }
  if (!wasEstablished) {
    if (code) return { reason: `forward server ${endpoint} unreachable: ${code}`, refused: false };
    if (err) return { reason: `forward server ${endpoint} unreachable: ${message}`, refused: false };
    return secured
      ? { reason: `forward server ${endpoint} closed the connection during the handshake (check output.sharedKey / username / password)`, refused: true }
      : { reason: `forward server ${endpoint} closed the connection before it was ready`, refused: false };
  }
  if (err) return { reason: `connection to forward server ${endpoint} lost: ${code ?? message}`, refused: false };
  return { reason: `forward server ${endpoint} closed the connection`, refused: false };
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)}s`;
}
