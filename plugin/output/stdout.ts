import { once } from 'node:events';
import { PipelineError } from '../defender/errors.js';
import { type OutRecord, type Sink, type SinkState, SinkClosedError } from './sink.js';

/**
 * One line per record for Fluentd in_exec / Fluent Bit exec: the record as a flat JSON object with
 * `time` (ISO 8601 UTC, milliseconds) and `tag` in front, so the shippers' own JSON parser reads it
 * (`time_key time` + `time_format %Y-%m-%dT%H:%M:%S.%L%z`, Fluentd `tag_key tag`). Fluentd reads a
 * child's output as bytes: a JSON parser decodes UTF-8 text intact, where a regexp parse scrubbed
 * it. The index schemas allow no top-level `time` or `tag` field, so neither can collide.
 * JSON.stringify escapes lone surrogates, so the line is always valid UTF-8.
 */
export function stdoutLine(r: OutRecord): string {
  const body = JSON.stringify(r.record);
  const head = `{"time":"${new Date(r.time).toISOString()}","tag":${JSON.stringify(r.tag)}`;
  return body === '{}' ? `${head}}` : `${head},${body.slice(1)}`;
}

/** The inverse of stdoutLine (the demo and tests read the collector's stdout with it). */
export function parseStdoutLine(line: string): OutRecord {
  const { time, tag, ...record } = JSON.parse(line) as { time: string; tag: string } & Record<string, unknown>;
  return { tag, time: Date.parse(time), record };
}

/**
 * Writes stdoutLine per record. A batch counts as acknowledged once the stream has flushed it
 * (weaker than forward: the pipeline never confirms).
 */
export class StdoutSink implements Sink {
  private closed = false;
  /** set when close() gave up waiting: queued batches fail instead of being written */
  private aborted = false;
  private pending = Promise.resolve();
  private readonly unsettled = new Set<(err: Error) => void>();

  /** the stream failed (EPIPE: the reader went away); every later batch fails with it */
  private broken?: PipelineError;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {
    // Without a listener a closed pipe's 'error' would be an uncaught exception.
    out.on('error', (e: NodeJS.ErrnoException) => (this.broken ??= stdoutFailure(e)));
  }

  deliver(batch: OutRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new SinkClosedError());
    // Serialise batches so lines never interleave and order is kept.
    const run = this.pending.then(() => this.write(batch));
    this.pending = run.catch(() => undefined);
    return new Promise<void>((resolve, reject) => {
      this.unsettled.add(reject);
      run.then(resolve, reject).finally(() => this.unsettled.delete(reject));
    });
  }

  private async write(batch: OutRecord[]): Promise<void> {
    let chunk = '';
    for (const r of batch) {
      if (this.aborted) throw new SinkClosedError();
      chunk += stdoutLine(r) + '\n';
      if (chunk.length >= 1 << 16) {
        await this.flush(chunk);
        chunk = '';
      }
    }
    if (this.aborted) throw new SinkClosedError();
    if (chunk) await this.flush(chunk);
  }

  private async flush(chunk: string): Promise<void> {
    if (this.broken) throw this.broken;
    // A write error is the pipeline's failure (class pipeline), never taken for a bad Defender page.
    const flushed = new Promise<void>((resolve, reject) => this.out.write(chunk, (err) => (err ? reject((this.broken ??= stdoutFailure(err))) : resolve())));
    // Awaited below; if waiting for 'drain' throws first (stream error), this rejection must not
    // become an unhandled one.
    flushed.catch(() => undefined);
    // Respect pipe backpressure: wait for drain before writing more.
    if ((this.out as NodeJS.WriteStream).writableNeedDrain) await once(this.out, 'drain').catch((e: NodeJS.ErrnoException) => Promise.reject((this.broken ??= stdoutFailure(e))));
    await flushed;
  }

  state(): SinkState {
    if (this.broken) return { ok: false, reason: this.broken.message };
    return this.closed ? { ok: false, reason: 'closed' } : { ok: true };
  }

  /** Waits up to timeoutMs for queued batches to be flushed, then fails the rest with SinkClosedError. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.pending.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, timeoutMs)))),
    ]);
    clearTimeout(timer);
    if (drained) return;
    // A reader that stopped reading (blocked pipe) must not keep deliver() pending forever.
    this.aborted = true;
    for (const reject of [...this.unsettled]) reject(new SinkClosedError());
  }
}

function stdoutFailure(e: NodeJS.ErrnoException): PipelineError {
  return new PipelineError(e.code === 'EPIPE' ? 'stdout is closed (EPIPE): the process reading our output went away' : `cannot write to stdout: ${e.message}`);
}
