import type { Config } from '../config/load.js';
import { redactValue } from '../log.js';
import { clean } from '../transform/convert.js';
import { tagFor, tagSuffix, type OutRecord } from '../output/sink.js';
import { connectorHealth, type StatusFile } from './store.js';

/**
 * The fields every record carries (DESIGN.md, record contract) for records this product makes
 * itself (status, audit); `body` goes under microsoft_defender.
 */
export function contractRecord(opts: {
  msgClass: string;
  connector?: string;
  tenant?: string;
  timestamp: number;
  writeTime: number;
  body: Record<string, unknown>;
}): Record<string, unknown> {
  return clean(
    redactValue({
      timestamp: opts.timestamp,
      write_time: opts.writeTime,
      msg_class: opts.msgClass,
      msg_origin: {
        source: 'microsoft_defender',
        vendor: 'microsoft',
        category: 'endpoint',
        processor: { name: 'microsoft_defender', type: 'log_collector' },
      },
      tenant_name: opts.tenant,
      engid_name: opts.connector ? `microsoft_defender_${opts.connector}` : undefined,
      microsoft_defender: opts.body,
    }),
  ) as Record<string, unknown>;
}

/**
 * One status record per collecting connector (msg_class microsoft_defender_status, tag
 * <prefix>.status). The collector calls this every statusIntervalMinutes and delivers the result.
 */
export function statusRecords(config: Pick<Config, 'connectors' | 'output'>, status: StatusFile | undefined, now: number): OutRecord[] {
  const tag = tagFor(config.output.tagPrefix ?? 'microsoft_defender', tagSuffix.status);
  const out: OutRecord[] = [];
  for (const c of config.connectors) {
    if (!c.functions.includes('collect')) continue;
    const h = connectorHealth(c, status, now);
    const contentTypes: Record<string, unknown> = {};
    for (const [t, s] of Object.entries(h.contentTypes)) {
      if (!s) continue;
      contentTypes[t] = {
        state: s.state,
        reason: s.reason,
        lastSuccess: s.lastSuccess,
        lastAttempt: s.lastAttempt,
        lastError: s.lastError,
        consecutiveFailures: s.consecutiveFailures,
        records: s.records,
        cursor: s.cursor,
      };
    }
    out.push({
      tag,
      time: now,
      record: contractRecord({
        msgClass: 'microsoft_defender_status',
        connector: c.name,
        tenant: c.tenant,
        timestamp: now,
        writeTime: now,
        body: { connector: c.name, state: h.state, reasons: h.reasons, contentTypes },
      }),
    });
  }
  return out;
}
