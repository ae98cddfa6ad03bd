// Writes a JSON response in chunks, honouring res.write backpressure, so a 200 000-record page never
// becomes one giant string. Optionally cuts the body after N bytes and drops the connection (the
// "truncated body" fault), or sends it a few bytes at a time (the "trickle" fault).
import type { ServerResponse } from 'node:http';

const CHUNK = 64 * 1024;

/** Thrown inside a generator to stop writing once the client is gone or the cut happened. */
export class BodyAborted extends Error {}

/** Pieces of `bytes`, one every `ms`: a server that is never silent for long but never done. */
export interface Trickle {
  bytes: number;
  ms: number;
}

export class BodyWriter {
  // Pieces are UTF-8-encoded straight into a chunk buffer: joining thousands of strings first costs
  // more than generating them.
  private chunk = Buffer.allocUnsafe(CHUNK);
  private used = 0;
  private sent = 0;
  private aborted = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly cutAfterBytes: number | null = null,
    private readonly trickle?: Trickle,
  ) {
    res.on('close', () => {
      if (!res.writableFinished) this.aborted = true;
    });
  }

  get isAborted(): boolean {
    return this.aborted;
  }

  private append(piece: string | Buffer): void {
    const max = typeof piece === 'string' ? piece.length * 3 : piece.length;
    if (this.used + max > this.chunk.length) {
      // A piece larger than the room left even after a flush: grow this chunk.
      const bigger = Buffer.allocUnsafe(Math.max(this.chunk.length * 2, this.used + max));
      this.chunk.copy(bigger, 0, 0, this.used);
      this.chunk = bigger;
    }
    this.used += typeof piece === 'string' ? this.chunk.write(piece, this.used, 'utf8') : piece.copy(this.chunk, this.used);
  }

  /** Appends one piece (a string, or bytes already encoded), flushing a full chunk first. */
  async write(piece: string | Buffer): Promise<void> {
    if (this.aborted) throw new BodyAborted();
    const max = typeof piece === 'string' ? piece.length * 3 : piece.length;
    if (this.used && this.used + max > CHUNK) await this.flush();
    this.append(piece);
  }

  /** Appends several pieces that belong together (one record), with one flush check. */
  async writeAll(pieces: ReadonlyArray<string | Buffer>): Promise<void> {
    if (this.aborted) throw new BodyAborted();
    let max = 0;
    for (const p of pieces) max += typeof p === 'string' ? p.length * 3 : p.length;
    if (this.used && this.used + max > CHUNK) await this.flush();
    for (const p of pieces) this.append(p);
  }

  private take(): Buffer {
    const out = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
    return out;
  }

  private async flush(): Promise<void> {
    if (!this.used) return;
    let chunk = this.take();
    if (this.cutAfterBytes !== null && this.sent + chunk.length >= this.cutAfterBytes) {
      chunk = chunk.subarray(0, Math.max(0, this.cutAfterBytes - this.sent));
      this.cut(chunk);
      throw new BodyAborted();
    }
    this.sent += chunk.length;
    if (this.trickle) return this.drip(chunk);
    if (!this.res.write(chunk)) {
      await this.until('drain');
      if (this.aborted) throw new BodyAborted();
    }
  }

  private async drip(chunk: Buffer): Promise<void> {
    const { bytes, ms } = this.trickle!;
    for (let at = 0; at < chunk.length; at += bytes) {
      if (this.aborted) throw new BodyAborted();
      this.res.write(chunk.subarray(at, at + bytes));
      await new Promise((r) => setTimeout(r, ms));
    }
  }

  /** Resolves on `event` or when the response closes, leaving no listeners behind. */
  private until(event: 'drain' | 'finish'): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.res.off(event, done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on(event, done);
      this.res.on('close', done);
    });
  }

  private cut(chunk: Buffer): void {
    this.aborted = true;
    this.res.emit('emulator-cut');
    // Send what we have, then drop the socket mid-JSON: the client sees a premature end of body.
    this.res.write(chunk, () => this.res.socket?.destroy());
    setTimeout(() => this.res.socket?.destroy(), 50).unref();
  }

  /**
   * Flushes the rest and ends the response; with a cut pending, a short body is cut in half.
   * `onHandedOver` runs synchronously once the whole body is handed to the socket: before the
   * client can possibly have read it, so "served" bookkeeping never lags behind a fast client.
   */
  end(text = '', onHandedOver?: () => void): Promise<void> {
    if (this.aborted) return Promise.reject(new BodyAborted());
    this.append(text);
    const rest = this.take();
    if (this.cutAfterBytes !== null) {
      const limit = Math.min(this.cutAfterBytes - this.sent, Math.floor((this.sent + rest.length) / 2) - this.sent);
      this.cut(rest.subarray(0, Math.max(1, limit)));
      return Promise.reject(new BodyAborted());
    }
    if (this.trickle) {
      return this.drip(rest).then(() => {
        const finished = this.until('finish');
        this.res.end();
        onHandedOver?.();
        return finished;
      });
    }
    const finished = this.until('finish');
    this.res.end(rest);
    onHandedOver?.();
    return finished;
  }
}
