import { createServer, type Server, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { decodeMulti, decodeStream, encode, ExtensionCodec } from '@msgpack/msgpack';
import { FluentServer, EventTime } from '@fluent-org/logger';
import type { FluentServerOptions } from '@fluent-org/logger';
import type { OutRecord } from '../plugin/output/sink.js';

export interface Received {
  tag: string;
  /** epoch ms rebuilt from the EventTime the server decoded */
  time: number;
  record: Record<string, unknown>;
}

/**
 * The library's FluentServer on 127.0.0.1 (acks every chunk that asks for one), with what it
 * received, and a count of TCP connections (the server's own counter is private, hence the cast).
 */
export class TestForwardServer {
  readonly received: Received[] = [];
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private server!: FluentServer;

  constructor(private readonly options: Omit<FluentServerOptions, 'listenOptions'> = {}) {}

  get port(): number {
    return this.server.port!;
  }

  async start(port = 0): Promise<this> {
    this.server = new FluentServer({ ...this.options, listenOptions: { host: '127.0.0.1', port } });
    this.server.on('entry', (tag: string, time: EventTime | number, record: Record<string, unknown>) => {
      this.received.push({ tag, time: time instanceof EventTime ? time.epoch * 1000 + time.nano / 1e6 : time * 1000, record });
      this.onEntry?.(this.received.length);
    });
    const net = (this.server as unknown as { server: Server }).server;
    net.on('connection', (s: Socket) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await this.server.listen();
    return this;
  }

  /** Called after every entry with the running count (to kill the server mid-batch). */
  onEntry?: (count: number) => void;

  /** Like a crash: connections reset, listener gone. */
  kill(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => (this.server as unknown as { server: Server }).server.close(() => r()));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.server.close();
  }

  ids(): string[] {
    return this.received.map((r) => String(r.record.id));
  }
}

/** Alert-like records, about `bytes` of JSON each, ids r0..r{n-1}. */
export function makeRecords(n: number, opts: { tag?: string; bytes?: number; start?: number } = {}): OutRecord[] {
  const tag = opts.tag ?? 'microsoft_defender.syslog.alerts';
  const pad = 'x'.repeat(Math.max(0, (opts.bytes ?? 200) - 120));
  const out: OutRecord[] = [];
  for (let i = 0; i < n; i++) {
    const k = (opts.start ?? 0) + i;
    out.push({ tag, time: 1_764_300_000_123 + k, record: { id: `r${k}`, severity: k % 100, title: 'Suspicious PowerShell', nested: { ok: true, list: [1, 'two', null] }, pad } });
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 20 ms until true or `ms` elapse (for waiting on an outcome, never for asserting speed). */
export async function waitFor(cond: () => boolean, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

/** Resolves to 'pending' if the promise has not settled within ms. */
export async function settledWithin<T>(p: Promise<T>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await sleep(ms);
  return state;
}

// --- A small hand-made forward server -------------------------------------------------------------
// Used where FluentServer cannot help: delayed/missing acks, per-message inspection, and a
// Fluent Bit-style HELO whose nonce is a msgpack *str* of random bytes. Client messages are decoded
// here after the Forward Protocol Specification v1 (the EventTime ext stays undecoded: unused).

/** EventTime: msgpack ext type 0, 4 bytes seconds + 4 bytes nanoseconds, big-endian (spec: "EventTime Ext Format"). */
export interface WireEventTime {
  seconds: number;
  nanoseconds: number;
}
const eventTimeCodec = new ExtensionCodec();
eventTimeCodec.register({
  type: 0,
  encode: () => null,
  decode: (data: Uint8Array): WireEventTime => {
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { seconds: v.getUint32(0), nanoseconds: v.getUint32(4) };
  },
});

/** The entries of a PackedForward (bin of concatenated [time, record]) or Forward (array) message. */
export function decodeEntries(entries: unknown): [WireEventTime, Record<string, unknown>][] {
  return (entries instanceof Uint8Array ? [...decodeMulti(entries, { extensionCodec: eventTimeCodec })] : (entries as unknown[])) as [WireEventTime, Record<string, unknown>][];
}

/** [tag, entries, option?] as a client sends it. */
function parseTransport(m: unknown): { tag: string; entries: [unknown, Record<string, unknown>][]; chunk?: string } {
  if (!Array.isArray(m) || typeof m[0] !== 'string' || m.length < 2) throw new Error('not a forward message');
  return { tag: m[0], entries: decodeEntries(m[1]), chunk: (m[2] as { chunk?: string } | undefined)?.chunk };
}

export interface Packet {
  tag: string;
  count: number;
  /**
   * Bytes received on the connection since the previous message was parsed. That is this
   * message's exact size on the wire when the client has one message in flight at a time.
   */
  wireBytes: number;
  chunk?: string;
  ids: string[];
}

export interface RawServerOptions {
  /** ms to wait before acking the n-th message (0-based); null = never ack. Default: ack at once. */
  ackDelay?: (n: number) => number | null;
  /**
   * Fluent Bit 3.x style handshake (plugins/in_forward/fw_prot.c send_helo): HELO is
   * `['HELO', {nonce: str(16 random bytes), auth: str(16 random bytes)}]`; `users` turns on the
   * username/password check, sha512_hex(auth_salt + username + password) over the raw salt.
   */
  strNonce?: { sharedKey: string; serverHostname: string; users?: Record<string, string> };
}

export class RawForwardServer {
  readonly packets: Packet[] = [];
  connections = 0;
  bytesReceived = 0;
  handshakes: { ok: boolean; reason: string }[] = [];
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: RawServerOptions = {}) {}

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  async start(): Promise<this> {
    this.server = createServer((socket) => void this.handle(socket));
    await new Promise<void>((r) => this.server.listen({ host: '127.0.0.1', port: 0 }, r));
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  ids(): string[] {
    return this.packets.flatMap((p) => p.ids);
  }

  private async handle(socket: Socket): Promise<void> {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let connBytes = 0;
    let lastEnd = 0;
    // attached before the decoder reads, so the count includes every chunk it is about to parse
    socket.on('data', (d: Buffer) => {
      this.bytesReceived += d.length;
      connBytes += d.length;
    });
    let nonce: Buffer | null = null;
    let authSalt: Buffer | null = null;
    if (this.opts.strNonce) {
      nonce = randomBytes(16);
      authSalt = randomBytes(16);
      // 0xff never occurs in UTF-8: both are guaranteed not to be valid UTF-8
      nonce[0] = 0xff;
      authSalt[0] = 0xff;
      socket.write(heloWithStrNonce(nonce, authSalt));
    }
    let established = !this.opts.strNonce;
    try {
      for await (const message of decodeStream(socket)) {
        if (!established) {
          if (!Array.isArray(message) || message[0] !== 'PING' || message.length !== 6) throw new Error('expected PING');
          const [, clientHostname, salt, digest, username, passwordDigest] = message as unknown as string[];
          const { sharedKey, serverHostname, users } = this.opts.strNonce!;
          // What Fluent Bit computes: sha512 over the raw nonce / salt bytes.
          let reason = digest === sha512hex(salt!, clientHostname!, nonce!, sharedKey) ? '' : 'shared_key mismatch';
          if (!reason && users) {
            const password = users[username!];
            const expected = password === undefined ? null : createHash('sha512').update(authSalt!).update(username!).update(password).digest('hex');
            if (passwordDigest !== expected) reason = 'username/password mismatch';
          }
          const ok = reason === '';
          this.handshakes.push({ ok, reason });
          socket.write(encode(['PONG', ok, reason, serverHostname, ok ? sha512hex(salt!, serverHostname, nonce!, sharedKey) : '']));
          if (!ok) {
            socket.end();
            return;
          }
          established = true;
          lastEnd = connBytes;
          continue;
        }
        const t = parseTransport(message);
        const n = this.packets.length;
        this.packets.push({
          tag: t.tag,
          count: t.entries.length,
          wireBytes: connBytes - lastEnd,
          chunk: t.chunk,
          ids: t.entries.map(([, r]) => String((r as Record<string, unknown>).id ?? (r as Record<string, unknown>).alert_id)),
        });
        lastEnd = connBytes;
        const delay = this.opts.ackDelay ? this.opts.ackDelay(n) : 0;
        if (t.chunk && delay !== null) {
          const ack = encode({ ack: t.chunk });
          if (delay === 0) socket.write(ack);
          else {
            const timer = setTimeout(() => {
              this.timers.delete(timer);
              if (!socket.destroyed) socket.write(ack);
            }, delay);
            this.timers.add(timer);
          }
        }
      }
    } catch {
      socket.destroy();
    }
  }
}

function sha512hex(salt: string, hostname: string, nonce: Buffer, key: string): string {
  return createHash('sha512').update(salt).update(hostname).update(nonce).update(key).digest('hex');
}

/** ['HELO', {nonce: str(raw), auth: str(raw)}], hand-encoded: msgpack libraries would write the bytes as bin. */
function heloWithStrNonce(nonce: Buffer, authSalt: Buffer): Buffer {
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
  return Buffer.concat([
    Buffer.from([0x92]),
    str(Buffer.from('HELO')),
    Buffer.from([0x82]),
    str(Buffer.from('nonce')),
    str(nonce),
    str(Buffer.from('auth')),
    str(authSalt),
  ]);
}
