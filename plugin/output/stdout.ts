import { once } from 'node:events';
import { type OutRecord, type Sink, type SinkState, SinkClosedError } from './sink.js';

/**
 * NDJSON `{"tag","time","record"}` per line for Fluentd in_exec / Fluent Bit exec. A batch counts as
 * acknowledged once the stream has flushed it (weaker than forward: the pipeline never confirms).
 */
export class StdoutSink implements Sink {
  private closed = false;
  private pending = Promise.resolve();

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  deliver(batch: OutRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new SinkClosedError());
    // Serialise batches so lines never interleave and order is kept.
    const run = this.pending.then(() => this.write(batch));
    this.pending = run.catch(() => undefined);
    return run;
  }

  private async write(batch: OutRecord[]): Promise<void> {
    let chunk = '';
    for (const r of batch) {
      chunk += JSON.stringify({ tag: r.tag, time: r.time, record: r.record }) + '\n';
      if (chunk.length >= 1 << 16) {
        await this.flush(chunk);
        chunk = '';
      }
    }
    if (chunk) await this.flush(chunk);
  }

  private async flush(chunk: string): Promise<void> {
    const flushed = new Promise<void>((resolve, reject) => this.out.write(chunk, (err) => (err ? reject(err) : resolve())));
    // Respect pipe backpressure: wait for drain before writing more.
    if ((this.out as NodeJS.WriteStream).writableNeedDrain) await once(this.out, 'drain');
    await flushed;
  }

  state(): SinkState {
    return this.closed ? { ok: false, reason: 'closed' } : { ok: true };
  }

  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    await Promise.race([this.pending, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }
}
