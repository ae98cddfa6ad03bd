/**
 * The one module that reaches into @fluent-org/logger's internals (build/src/socket and auth).
 *
 * Why: the package's public FluentClient owns the send queue, and that queue is where its sharp
 * edges live (emit promises that never settle while the server is unreachable or after a refused
 * handshake, queue limits that drop whole batches, no cap on packet size). ForwardSink keeps its
 * own chunk queue instead and uses the library for what it does well: the connection (TCP/TLS),
 * the shared_key / username+password handshake (HELO/PING/PONG digests) and ack decoding. Those classes are not exported from the package root, hence the deep
 * requires, all here. If a library upgrade moves them, this module is the only thing to fix.
 *
 * It also fixes one library bug (verified in test/forward-handshake.test.ts): the library decodes
 * server messages with a plain msgpack decoder, so a HELO nonce sent as a msgpack *str* of random
 * bytes (Fluent Bit 3.x does this; Fluentd sends bin) is turned into a UTF-8 string with U+FFFD
 * replacement characters, and the PING digest sha512(salt + hostname + nonce + key) is computed
 * over the wrong bytes: the server refuses the handshake. We decode server messages with a
 * decoder that keeps a str that is not valid UTF-8 as raw bytes, which the library's digest code
 * already accepts (it hashes a Uint8Array nonce as-is).
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type * as SocketModule from '@fluent-org/logger/build/src/socket.js';
import type * as AuthModule from '@fluent-org/logger/build/src/auth.js';
import type * as MsgpackModule from '@msgpack/msgpack';

const require = createRequire(import.meta.url);
const socketModule = require('@fluent-org/logger/build/src/socket.js') as typeof SocketModule;
const authModule = require('@fluent-org/logger/build/src/auth.js') as typeof AuthModule;
// The msgpack codec the library itself depends on, resolved from the library so versions match.
const msgpack = createRequire(require.resolve('@fluent-org/logger'))('@msgpack/msgpack') as typeof MsgpackModule;

const { FluentSocket, FluentSocketEvent, CloseState } = socketModule;
const { FluentAuthSocket } = authModule;

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

/** Decodes server messages; a msgpack str that is not valid UTF-8 comes out as a Buffer. */
export function decodeServerStreamKeepingBytes(stream: Readable): AsyncIterable<unknown> {
  const decoder = new msgpack.Decoder();
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

type LibSocket = InstanceType<typeof FluentSocket>;

/** Replaces the library's server-message decoder on one socket (see the module comment). */
function keepNonceBytes(socket: LibSocket): void {
  const s = socket as unknown as {
    passThroughStream: Readable | null;
    processMessages(iterable: AsyncIterable<unknown>): Promise<void>;
  };
  const processMessages = s.processMessages.bind(socket);
  // openSocket() calls processMessages(decodeServerStream(passThrough)); the generator it passes
  // has not started reading, so dropping it and iterating our own decoder is safe.
  s.processMessages = () => processMessages(decodeServerStreamKeepingBytes(s.passThroughStream!));
}

/**
 * One connection attempt to a forward server: connect, optional TLS, optional handshake, then
 * PackedForward writes and ack events. Never reconnects by itself (ForwardSink owns the policy,
 * so network failures and refused handshakes share one backoff).
 *
 * Events: 'established' (ready for writes), 'writable' (after a drain), 'ack' (chunk id),
 * 'error' (Error; the last one explains the close), 'close'.
 */
export class ForwardConnection extends EventEmitter {
  private readonly socket: LibSocket;
  private closed = false;
  private sawError = false;

  constructor(opts: ForwardConnectionOptions) {
    super();
    const socketOptions: SocketModule.FluentSocketOptions = {
      host: opts.host,
      port: opts.port,
      tls: opts.tls,
      disableReconnect: true,
      // No idle timeout: an ack can legitimately take a while; ForwardSink's ack deadline
      // detects a stalled connection instead.
      timeout: -1,
      // Report a full kernel buffer so the sink stops writing until 'drain' (backpressure).
      notWritableWhenDraining: true,
    };
    this.socket = opts.security
      ? new FluentAuthSocket(
          {
            clientHostname: opts.security.clientHostname,
            sharedKey: opts.security.sharedKey,
            username: opts.security.username,
            password: opts.security.password,
          },
          socketOptions,
        )
      : new FluentSocket(socketOptions);
    keepNonceBytes(this.socket);
    this.socket.on(FluentSocketEvent.ESTABLISHED, () => this.emit('established'));
    this.socket.on(FluentSocketEvent.DRAINED, () => this.emit('writable'));
    this.socket.on(FluentSocketEvent.ACK, (chunkId: string) => this.emit('ack', chunkId));
    this.socket.on(FluentSocketEvent.ERROR, (err: Error) => {
      this.sawError = true;
      this.emit('error', err);
    });
    this.socket.on(FluentSocketEvent.CLOSE, () => {
      if (this.closed) return;
      this.closed = true;
      this.emit('close');
    });
  }

  /** Starts connecting; the outcome arrives as 'established' or 'error' + 'close'. */
  connect(): void {
    this.socket.connect().catch((err: Error) => {
      // Network and handshake failures arrive as 'error' + 'close' events before this rejection.
      // A throw while creating the socket (tls.connect refusing the cert/key/ca material) comes
      // with neither, and the attempt would hang: report it the same way.
      if (this.sawError || this.closed) return;
      this.emit('error', err);
      this.closed = true;
      this.emit('close');
    });
  }

  /** True when a write would be accepted now (handshake done, kernel buffer not full). */
  writable(): boolean {
    return !this.closed && this.socket.writable();
  }

  /** Writes one packet; false if the connection cannot take it now. Errors surface as 'error'/'close'. */
  write(packet: Uint8Array): boolean {
    if (!this.writable()) return false;
    this.socket.write(packet).catch(() => undefined /* the socket closes and the sink re-sends */);
    return true;
  }

  /** Drops the connection now (stalled, or sink closing); 'close' follows. */
  destroy(): void {
    this.socket.close(CloseState.RECONNECT);
  }

  /** Ends the connection gracefully. */
  async end(): Promise<void> {
    await this.socket.disconnect();
  }
}
