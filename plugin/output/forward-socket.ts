/**
 * One connection to a Fluent forward server (Fluentd in_forward, Fluent Bit forward): TCP or TLS,
 * the optional shared_key / username+password handshake, PackedForward writes and ack reading.
 * ForwardSink keeps its own chunk queue, deadlines and reconnect policy; this module only owns the
 * wire. It is ours, not @fluent-org/logger's socket: those classes are not part of that package's
 * public API, and its server-message decoder had a bug this module must not inherit (below).
 *
 * Handshake (Forward Protocol Specification v1, "Handshake Messages"):
 *   server → HELO  ['HELO', {nonce, auth, keepalive}]
 *   client → PING  ['PING', client_hostname, shared_key_salt,
 *                   sha512_hex(shared_key_salt + client_hostname + nonce + shared_key),
 *                   username || '', sha512_hex(auth_salt + username + password) || '']
 *   server → PONG  ['PONG', auth_result, reason, server_hostname,
 *                   sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)]
 * Acks: {ack: chunk_id} for every message sent with the chunk option.
 *
 * Fluentd sends the nonce and auth salt as msgpack bin, Fluent Bit 3.x as a msgpack *str* holding
 * random bytes, which is not UTF-8: decoded as text it would turn into U+FFFD characters and the
 * digest would go over the wrong bytes (the server refuses the handshake). Server messages are
 * therefore decoded keeping a str that is not valid UTF-8 as raw bytes, and digests hash bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isUtf8 } from 'node:buffer';
import net from 'node:net';
import type { Readable } from 'node:stream';
import tls, { type ConnectionOptions } from 'node:tls';
import { Decoder, encode } from '@msgpack/msgpack';

export interface ForwardSecurity {
  clientHostname: string;
  sharedKey: string;
  username?: string;
  password?: string;
}

export interface ForwardConnectionOptions {
  host: string;
  port: number;
  tls?: ConnectionOptions;
  security?: ForwardSecurity;
}

/** The server refused the handshake (wrong shared key, user or password) or failed our check of its PONG. */
export class HandshakeAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeAuthError';
  }
}

/** Both sides use the same hostname: a configuration error on one of them. */
export class HandshakeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeConfigError';
  }
}

/** Decodes server messages; a msgpack str that is not valid UTF-8 comes out as a Buffer. */
export function decodeServerStreamKeepingBytes(stream: Readable): AsyncIterable<unknown> {
  const decoder = new Decoder();
  // decodeUtf8String / decodeBinary are the decoder's own (non-public) steps for str and bin.
  const d = decoder as unknown as {
    bytes: Uint8Array;
    pos: number;
    decodeUtf8String(byteLength: number, headerOffset: number): unknown;
    decodeBinary(byteLength: number, headerOffset: number): Uint8Array;
  };
  const decodeUtf8 = d.decodeUtf8String.bind(d);
  d.decodeUtf8String = (byteLength: number, headerOffset: number) => {
    const start = d.pos + headerOffset;
    // Not enough data yet: let the original raise its "need more data" signal.
    if (d.bytes.byteLength < start + byteLength) return decodeUtf8(byteLength, headerOffset);
    if (isUtf8(d.bytes.subarray(start, start + byteLength))) return decodeUtf8(byteLength, headerOffset);
    return Buffer.from(d.decodeBinary(byteLength, headerOffset));
  };
  return decoder.decodeStream(stream);
}

type Bytes = string | Uint8Array;
const isBytes = (v: unknown): v is Bytes => typeof v === 'string' || v instanceof Uint8Array;

/** sha512 hex of the parts' bytes in order (a string as UTF-8, bytes as they are). */
export function sha512hex(...parts: Bytes[]): string {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** ['HELO', {nonce, auth?, keepalive?}] → its options, or undefined for any other message. */
export function parseHelo(m: unknown): { nonce: Bytes; auth?: Bytes } | undefined {
  if (!Array.isArray(m) || m.length !== 2 || m[0] !== 'HELO' || !m[1] || typeof m[1] !== 'object') return undefined;
  const o = m[1] as { nonce?: unknown; auth?: unknown };
  if (!isBytes(o.nonce) || (o.auth !== undefined && !isBytes(o.auth))) return undefined;
  return { nonce: o.nonce, auth: o.auth as Bytes | undefined };
}

/** The PING answering a HELO; `salt` is ours, fresh per connection. */
export function pingFor(helo: { nonce: Bytes; auth?: Bytes }, security: ForwardSecurity, salt: string): unknown[] {
  const user = helo.auth !== undefined ? (security.username ?? '') : '';
  const passwordDigest = helo.auth !== undefined ? sha512hex(helo.auth, user, security.password ?? '') : '';
  return ['PING', security.clientHostname, salt, sha512hex(salt, security.clientHostname, helo.nonce, security.sharedKey), user, passwordDigest];
}

/** Throws unless the PONG accepts us and proves the server knows the shared key too. */
export function checkPong(m: unknown, helo: { nonce: Bytes }, security: ForwardSecurity, salt: string): void {
  if (!Array.isArray(m) || m.length !== 5 || m[0] !== 'PONG') throw new HandshakeAuthError('unexpected message instead of PONG');
  const [, ok, reason, serverHostname, digest] = m as [string, unknown, unknown, unknown, unknown];
  if (serverHostname === security.clientHostname) throw new HandshakeConfigError('Same hostname between input and output: invalid configuration');
  if (ok !== true) throw new HandshakeAuthError(`Authentication failed: ${String(reason)}`);
  if (typeof serverHostname !== 'string' || digest !== sha512hex(salt, serverHostname, helo.nonce, security.sharedKey)) throw new HandshakeAuthError('shared key mismatch');
}

/**
 * One connection attempt to a forward server: connect, optional TLS, optional handshake, then
 * PackedForward writes and ack events. Never reconnects by itself (ForwardSink owns the policy,
 * so network failures and refused handshakes share one backoff). No idle timeout: an ack can
 * legitimately take a while; ForwardSink's ack deadline detects a stalled connection.
 *
 * Events: 'established' (ready for writes), 'writable' (after a drain), 'ack' (chunk id),
 * 'error' (Error; the last one explains the close), 'close'.
 */
export class ForwardConnection extends EventEmitter {
  private socket: net.Socket | null = null;
  private established = false;
  private closed = false;

  constructor(private readonly opts: ForwardConnectionOptions) {
    super();
  }

  /** Starts connecting; the outcome arrives as 'established' or 'error' + 'close'. */
  connect(): void {
    const { host, port } = this.opts;
    let socket: net.Socket;
    try {
      // tls.connect throws at once on unusable ca/cert/key material
      socket = this.opts.tls ? tls.connect({ ...this.opts.tls, host, port }) : net.connect({ host, port });
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.socket = socket;
    socket.setNoDelay(true);
    socket.once(this.opts.tls ? 'secureConnect' : 'connect', () => {
      if (!this.opts.security) this.establish();
    });
    socket.on('drain', () => this.established && this.emit('writable'));
    // leaving the read loop early (a refused handshake) destroys the socket with an AbortError:
    // not a reason of its own
    socket.on('error', (err: NodeJS.ErrnoException) => err.code !== 'ABORT_ERR' && this.emit('error', err));
    // 'close' waits until every message that arrived was handled: a refusal (PONG) and the server's
    // close arrive together, and the refusal is the reason to report
    const reading = this.read(socket);
    socket.on('close', () => void reading.then(() => this.onClose()));
  }

  private async read(socket: net.Socket): Promise<void> {
    const security = this.opts.security;
    const salt = randomBytes(16).toString('hex');
    let helo: { nonce: Bytes; auth?: Bytes } | undefined;
    try {
      for await (const m of decodeServerStreamKeepingBytes(socket)) {
        if (this.established) {
          if (!security && parseHelo(m)) throw new HandshakeAuthError('the server requires the shared-key handshake (it sent HELO)');
          const ack = (m as { ack?: unknown } | null)?.ack;
          if (typeof ack === 'string') this.emit('ack', ack);
        } else if (security && !helo) {
          helo = parseHelo(m);
          if (!helo) throw new HandshakeAuthError('unexpected message instead of HELO');
          socket.write(encode(pingFor(helo, security, salt)));
        } else if (security && helo) {
          checkPong(m, helo, security, salt);
          this.establish();
        } else {
          throw new Error('unexpected message from the server before the connection was ready');
        }
      }
    } catch (e) {
      // a socket destroyed mid-read ends the iteration too: its own 'error' (if any) said why
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ABORT_ERR' && code !== 'ERR_STREAM_PREMATURE_CLOSE') this.emit('error', e);
      socket.destroy();
    }
  }

  private establish(): void {
    this.established = true;
    this.emit('established');
  }

  private fail(err: Error): void {
    this.emit('error', err);
    this.onClose();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.established = false;
    this.emit('close');
  }

  /** True when a write would be accepted now (handshake done, kernel buffer not full). */
  writable(): boolean {
    return this.established && !this.closed && !!this.socket && !this.socket.writableNeedDrain;
  }

  /** Writes one packet; false if the connection cannot take it now. Errors surface as 'error'/'close'. */
  write(packet: Uint8Array): boolean {
    if (!this.writable()) return false;
    this.socket!.write(packet);
    return true;
  }

  /** Drops the connection now (stalled, or sink closing); 'close' follows. */
  destroy(): void {
    if (this.socket) this.socket.destroy();
    else this.onClose();
  }

  /** Ends the connection gracefully: what was written is flushed, then the socket closes. */
  async end(): Promise<void> {
    if (this.closed || !this.socket) return;
    const closed = new Promise<void>((resolve) => this.once('close', resolve));
    this.socket.end();
    await closed;
  }
}
