// `defender-fluent suppress-av`: a Fluentd exec_filter child. Windows Defender Antivirus writes
// each detection to the Windows event log AND Defender for Endpoint raises an alert for it; while
// the tenant's Defender connector is green the alert arrives through the collector, so the event
// log copy is dropped here. Red or unknown status: everything passes (losing a detection is worse
// than seeing it twice).
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import type { Config, Connector } from '../config/load.js';
import { loadConfigOrReport } from '../config/report.js';
import { createLogger, type Logger } from '../log.js';
import { avSuppressed } from './metrics.js';
import { connectorHealth, readStatusFile, type StatusFile } from './store.js';

export const defenderChannel = 'Microsoft-Windows-Windows Defender/Operational';

/**
 * Detection event ids of the Microsoft-Windows-Windows Defender/Operational channel, from Microsoft's
 * "Review event logs and error codes to troubleshoot issues with Microsoft Defender Antivirus"
 * (https://learn.microsoft.com/en-us/defender-endpoint/troubleshoot-microsoft-defender-antivirus):
 *   1006 MALWAREPROTECTION_MALWARE_DETECTED             (engine found malware / PUA)
 *   1007 MALWAREPROTECTION_MALWARE_ACTION_TAKEN         (action taken to protect the system)
 *   1008 MALWAREPROTECTION_MALWARE_ACTION_FAILED        (action on malware failed)
 *   1015 MALWAREPROTECTION_BEHAVIOR_DETECTED            (suspicious behaviour detected)
 *   1116 MALWAREPROTECTION_STATE_MALWARE_DETECTED       (platform detected malware / PUA)
 *   1117 MALWAREPROTECTION_STATE_MALWARE_ACTION_TAKEN   (platform acted on malware)
 *   1118 MALWAREPROTECTION_STATE_MALWARE_ACTION_FAILED  (non-critical failure acting on malware)
 *   1119 MALWAREPROTECTION_STATE_MALWARE_ACTION_CRITICALLY_FAILED
 * Scan, update, health and configuration events (1000–1005, 1009–1014, 1120, 1150, 2000+, 5000+)
 * have no Defender for Endpoint alert counterpart and always pass.
 */
export const detectionEventIds: ReadonlySet<number> = new Set([1006, 1007, 1008, 1015, 1116, 1117, 1118, 1119]);

function pick(record: Record<string, unknown>, paths: string[][]): unknown {
  for (const p of paths) {
    let cur: unknown = record;
    for (const k of p) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
    if (cur !== undefined && cur !== null) return cur;
  }
  return undefined;
}

/**
 * Field names of the common Windows event shippers: Fluentd in_windows_eventlog2 and Fluent Bit
 * winevtlog (Channel, EventID), lower-case variants, and Winlogbeat/ECS (winlog.channel,
 * winlog.event_id). EventID may be a number or a numeric string.
 */
export function isAvDetection(record: Record<string, unknown>): boolean {
  const channel = pick(record, [['Channel'], ['channel'], ['winlog', 'channel']]);
  if (typeof channel !== 'string' || channel.toLowerCase() !== defenderChannel.toLowerCase()) return false;
  const raw = pick(record, [['EventID'], ['EventId'], ['event_id'], ['eventId'], ['winlog', 'event_id']]);
  const id = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  return detectionEventIds.has(id);
}

/**
 * The tenant of a Windows event record is its `tenant_name` field, the same field and value our
 * own records carry (the connector's `tenant`). Shippers add it, e.g. Fluentd
 * `<record>tenant_name acme</record>` in a record_transformer. No tenant_name: not suppressed.
 */
export function tenantOf(record: Record<string, unknown>): string | undefined {
  const t = record.tenant_name;
  return typeof t === 'string' && t ? t : undefined;
}

/** Which tenants are green right now: a collecting connector with alerts enabled and green status. */
export class TenantGate {
  private status: StatusFile | undefined;
  private loadedAt = -Infinity;

  constructor(
    private readonly config: Pick<Config, 'connectors' | 'stateDir'>,
    private readonly opts: { now?: () => number; reloadMs?: number } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** status.json is re-read at most every reloadMs (default 10 s): cheap per line, fresh enough. */
  private current(): StatusFile | undefined {
    const now = this.now();
    if (now - this.loadedAt >= (this.opts.reloadMs ?? 10_000)) {
      this.status = readStatusFile(this.config.stateDir);
      this.loadedAt = now;
    }
    return this.status;
  }

  green(tenant: string): boolean {
    const candidates = this.config.connectors.filter((c: Connector) => c.tenant === tenant && c.functions.includes('collect') && c.contentTypes.includes('alerts'));
    if (!candidates.length) return false;
    const status = this.current();
    if (!status) return false;
    const now = this.now();
    return candidates.some((c) => connectorHealth(c, status, now).state === 'green');
  }
}

export interface SuppressCounts {
  lines: number;
  dropped: number;
  passed: number;
  droppedByTenant: Record<string, number>;
}

/**
 * Copies `input` to `output` line by line, dropping AV detection events of green tenants. Lines
 * that are not JSON objects pass unchanged (exec_filter must lose nothing), and so does every kept
 * line: the original bytes, not a re-serialisation.
 */
export async function suppressStream(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  gate: Pick<TenantGate, 'green'>,
  opts: { logger?: Logger; reportEveryMs?: number; now?: () => number } = {},
): Promise<SuppressCounts> {
  const counts: SuppressCounts = { lines: 0, dropped: 0, passed: 0, droppedByTenant: {} };
  const now = opts.now ?? Date.now;
  let lastReport = now();
  let reportedDropped = 0;
  const rl = createInterface({ input, crlfDelay: Infinity });
  for await (const line of rl) {
    counts.lines++;
    let drop = false;
    if (/windows defender/i.test(line)) {
      try {
        const rec = JSON.parse(line) as unknown;
        if (rec && typeof rec === 'object' && !Array.isArray(rec)) {
          const r = rec as Record<string, unknown>;
          const tenant = tenantOf(r);
          if (tenant && isAvDetection(r) && gate.green(tenant)) {
            drop = true;
            counts.droppedByTenant[tenant] = (counts.droppedByTenant[tenant] ?? 0) + 1;
            avSuppressed.inc({ tenant });
          }
        }
      } catch {
        /* not JSON: passes unchanged */
      }
    }
    if (drop) {
      counts.dropped++;
    } else {
      counts.passed++;
      if (!output.write(line + '\n')) await once(output, 'drain');
    }
    if (opts.logger && counts.dropped !== reportedDropped && now() - lastReport >= (opts.reportEveryMs ?? 60_000)) {
      opts.logger.info({ dropped: counts.dropped, passed: counts.passed, droppedByTenant: counts.droppedByTenant }, 'suppress-av: Windows Defender Antivirus detections dropped (tenant connector green)');
      lastReport = now();
      reportedDropped = counts.dropped;
    }
  }
  return counts;
}

export interface SuppressAvOptions {
  /** path of defender.yaml (stateDir and connectors come from it) */
  config: string;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** where the counts are logged (stderr by default: stdout belongs to Fluentd) */
  logStream?: NodeJS.WritableStream;
}

/**
 * `defender-fluent suppress-av --config F`: reads JSON lines on stdin, writes the kept ones to
 * stdout, logs counts to stderr periodically and at the end. Exit 0 at end of input, 2 for config
 * problems.
 */
export async function suppressAvCommand(opts: SuppressAvOptions): Promise<number> {
  const loaded = loadConfigOrReport(opts.config, opts.logStream ?? process.stderr);
  if (!loaded) return 2;
  const { config } = loaded;
  const logger = createLogger(config.logLevel, opts.logStream ?? process.stderr);
  const counts = await suppressStream(opts.input ?? process.stdin, opts.output ?? process.stdout, new TenantGate(config), { logger });
  logger.info({ lines: counts.lines, dropped: counts.dropped, passed: counts.passed, droppedByTenant: counts.droppedByTenant }, 'suppress-av: end of input');
  return 0;
}
