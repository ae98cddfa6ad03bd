import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { privateDir } from '../atomic-file.js';
import type { Logger } from '../log.js';
import { tagFor, tagSuffix, type OutRecord, type Sink } from '../output/sink.js';
import { contractRecord } from '../status/records.js';

export const auditFileName = 'audit.log';

/** What one audited request did. Never holds a token: the caller is named by its token's name. */
export interface AuditEntry {
  /** contain | release | auto_contain | action_status | isolation_status | status | request */
  event: string;
  /** accepted | existing | duplicate | dry_run | refused | skipped | rejected | error | Succeeded | Failed | TimeOut | Cancelled ... */
  outcome: string;
  httpStatus: number;
  reason?: string;
  /** name of the respond.tokens entry that called (absent: no valid token) */
  requester?: string;
  remoteAddress?: string;
  requestId?: string;
  method?: string;
  path?: string;
  connector?: string;
  tenant?: string;
  machineId?: string;
  isolationType?: string;
  comment?: string;
  alertId?: string;
  dryRun?: boolean;
  action?: { id: string; type?: string; status?: string };
}

/**
 * Every acting request and every refusal: one record (msg_class microsoft_defender_action, tag
 * <prefix>.audit) to the pipeline, and one JSON line appended to stateDir/audit.log. The local
 * append is awaited before the answer goes out; the sink is not (the sidecar keeps answering while
 * the pipeline is down, and the local log keeps what the sink could not take yet).
 */
export class AuditLog {
  readonly file: string;
  private chain: Promise<void> = Promise.resolve();
  private ready?: Promise<unknown>;

  constructor(
    private readonly stateDir: string,
    private readonly sink: Sink,
    private readonly opts: { tagPrefix?: string; logger?: Logger; now?: () => number } = {},
  ) {
    this.file = join(stateDir, auditFileName);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  record(entry: AuditEntry): Record<string, unknown> {
    const now = this.now();
    const { connector, tenant, ...body } = entry;
    return contractRecord({ msgClass: 'microsoft_defender_action', connector, tenant, timestamp: now, writeTime: now, body: { ...body, connector } });
  }

  async write(entry: AuditEntry): Promise<void> {
    const record = this.record(entry);
    const line = JSON.stringify(record) + '\n';
    this.ready ??= mkdir(this.stateDir, privateDir);
    // Serialised appends: lines never interleave, order is kept.
    const run = this.chain.then(async () => {
      await this.ready;
      await appendFile(this.file, line, { flag: 'a', mode: 0o600 });
    });
    this.chain = run.catch(() => undefined);
    try {
      await run;
    } catch (e) {
      this.opts.logger?.error({ err: e, file: this.file }, 'cannot append to the audit log');
      throw e;
    }
    const out: OutRecord = { tag: tagFor(this.opts.tagPrefix ?? 'microsoft_defender', tagSuffix.audit), time: record.timestamp as number, record };
    this.sink.deliver([out]).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'audit record not delivered to the pipeline (kept in the local audit log)'));
  }

  /** Waits for pending local appends. */
  flush(): Promise<void> {
    return this.chain;
  }

  /**
   * Reads back recent entries (newest last) of one event type, for seeding the automation caps
   * after a restart. Reads at most the last 16 MiB.
   */
  async recent(sinceMs: number, event: string): Promise<Record<string, unknown>[]> {
    let text: string;
    try {
      const st = await stat(this.file);
      const buf = await readFile(this.file);
      text = buf.subarray(Math.max(0, st.size - 16 * 1024 * 1024)).toString('utf8');
    } catch {
      return [];
    }
    const out: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as Record<string, unknown>;
        const md = r.microsoft_defender as Record<string, unknown> | undefined;
        if (typeof r.timestamp === 'number' && r.timestamp >= sinceMs && md?.event === event) out.push(r);
      } catch {
        /* a torn first line of the tail window */
      }
    }
    return out;
  }
}
