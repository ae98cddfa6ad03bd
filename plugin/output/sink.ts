/** One record on its way into the pipeline. */
export interface OutRecord {
  /** full Fluent tag, e.g. microsoft_defender.syslog.alerts */
  tag: string;
  /** event time, epoch milliseconds */
  time: number;
  record: Record<string, unknown>;
}

export interface SinkState {
  ok: boolean;
  /** why the sink cannot deliver right now (no secrets) */
  reason?: string;
}

/**
 * The collector's only way out. `deliver` resolves once every record of the batch is acknowledged
 * by the pipeline (forward: ack received; stdout: flushed). It does not reject because the
 * pipeline is down: it keeps retrying, which pauses the caller (backpressure). It rejects with
 * SinkClosedError when the sink is closed before the batch was acknowledged.
 */
export interface Sink {
  deliver(batch: OutRecord[]): Promise<void>;
  state(): SinkState;
  /** Waits up to timeoutMs for in-flight batches, then rejects what is still pending. */
  close(timeoutMs: number): Promise<void>;
}

export class SinkClosedError extends Error {
  constructor(message = 'sink closed before the batch was acknowledged') {
    super(message);
    this.name = 'SinkClosedError';
  }
}

/** Tag suffixes of DESIGN.md's record contract; the configured tagPrefix goes in front. */
export const tagSuffix = {
  alerts: 'syslog.alerts',
  hostSyslog: 'syslog.host',
  hostAssets: 'assets.host',
  vulnerabilities: 'syslog.vulnerabilities',
  machineActions: 'syslog.machine_actions',
  hunting: 'syslog.hunting',
  status: 'status',
  audit: 'audit',
} as const;

export function tagFor(prefix: string, suffix: string): string {
  return `${prefix}.${suffix}`;
}
