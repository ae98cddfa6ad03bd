import { type OutRecord, type Sink, type SinkState, SinkClosedError } from '../../plugin/output/sink.js';

/** A sink that acknowledges at once (or fails on demand) and keeps what it received. */
export class MemorySink implements Sink {
  readonly received: OutRecord[] = [];
  batches = 0;
  /** when set, deliver rejects with it (a pipeline that never acknowledges) */
  failWith?: Error;
  closed = false;

  async deliver(batch: OutRecord[]): Promise<void> {
    if (this.closed) throw new SinkClosedError();
    if (this.failWith) throw this.failWith;
    this.batches++;
    this.received.push(...batch);
  }

  state(): SinkState {
    return { ok: !this.failWith };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  records(): Record<string, unknown>[] {
    return this.received.map((r) => r.record);
  }
}
