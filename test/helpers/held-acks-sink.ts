import type { OutRecord } from '../../plugin/output/sink.js';
import { MemorySink } from './memory-sink.js';

/** A MemorySink whose deliveries stay unacknowledged until the test acks (or fails) them, oldest first. */
export class HeldAcksSink extends MemorySink {
  readonly pending: Array<{ batch: OutRecord[]; ack: () => void; fail: (e: Error) => void }> = [];
  private waiters: Array<() => void> = [];

  override deliver(batch: OutRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        batch,
        ack: () => {
          this.batches++;
          this.received.push(...batch);
          resolve();
        },
        fail: reject,
      });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once at least n deliveries are waiting for an ack. */
  async waitForPending(n: number): Promise<void> {
    while (this.pending.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }

  ackOldest(): void {
    this.pending.shift()!.ack();
  }

  failOldest(e: Error): void {
    this.pending.shift()!.fail(e);
  }
}
