import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContentType } from '../config/load.js';
import { errorClassOf } from '../defender/errors.js';
import { redact } from '../log.js';
import { writeFileAtomic } from '../atomic-file.js';
import { writeMetricsSnapshot } from './metrics.js';

/** Status of one connector × content type, as kept in stateDir/status.json. */
export interface ContentStatus {
  /** ISO time of the last poll that finished (either way) */
  lastAttempt?: string;
  /** ISO time of the last poll that succeeded */
  lastSuccess?: string;
  /** the last failure; kept after a later success for information (it is then older than lastSuccess) */
  lastError?: { class: string; message: string; at: string };
  consecutiveFailures: number;
  /** totals since the state folder was created */
  records: { collected: number; filtered: number; failed: number };
  /** the collector's cursor position after the last successful poll (watermark, sinceTime, ...) */
  cursor?: string | null;
  /** set by clearRed() after a passing `test`: counts like a success for the two-interval rule */
  clearedAt?: string;
  /** the poll due at `since` has not started yet: every poll slot (maxConcurrentPolls) is busy; it will run, late */
  late?: { since: string; reason: string };
}

export interface ConnectorStatus {
  contentTypes: Partial<Record<ContentType, ContentStatus>>;
}

export interface StatusFile {
  version: 1;
  /** ISO time of the last save */
  updatedAt: string;
  connectors: Record<string, ConnectorStatus>;
}

export interface PollResult {
  /** records delivered to the sink */
  records: number;
  /** records dropped by log filters */
  filtered: number;
  /** entities that failed mapping (kept and marked, or counted) */
  failed: number;
  cursor?: string | null;
}

export const statusFileName = 'status.json';

function emptyContent(): ContentStatus {
  return { consecutiveFailures: 0, records: { collected: 0, filtered: 0, failed: 0 } };
}

/** Reads stateDir/status.json; undefined when missing or unreadable (status then counts as unknown). */
export function readStatusFile(stateDir: string): StatusFile | undefined {
  const file = join(stateDir, statusFileName);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as StatusFile;
    if (parsed?.version !== 1 || typeof parsed.connectors !== 'object' || parsed.connectors === null) return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

/**
 * Connector status shared by the collector (writer), the sidecar (GET /v1/status), `suppress-av`
 * and the `test` command (clearRed). One writer process is expected at a time (the collector holds
 * a lock); clearRed from another process survives the collector's next save because save() merges
 * the newer clearedAt found on disk.
 */
export class StatusStore {
  private data: StatusFile;
  readonly file: string;
  private lastSave = -Infinity;
  private pending?: NodeJS.Timeout;
  /** the configured connectors (keepOnly); undefined: any */
  private known?: Set<string>;

  constructor(
    readonly stateDir: string,
    private readonly opts: {
      now?: () => number;
      metricsSnapshot?: boolean;
      /** instead of writing status.json: a worker process hands its status to the parent, which writes the one file */
      publish?: (data: StatusFile) => void;
    } = {},
  ) {
    this.file = join(stateDir, statusFileName);
    this.data = readStatusFile(stateDir) ?? { version: 1, updatedAt: new Date(this.now()).toISOString(), connectors: {} };
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private entry(connector: string, content: ContentType): ContentStatus {
    const c = (this.data.connectors[connector] ??= { contentTypes: {} });
    return (c.contentTypes[content] ??= emptyContent());
  }

  recordSuccess(connector: string, content: ContentType, result: PollResult): void {
    const e = this.entry(connector, content);
    const at = new Date(this.now()).toISOString();
    e.lastAttempt = at;
    e.lastSuccess = at;
    e.consecutiveFailures = 0;
    e.records.collected += result.records;
    e.records.filtered += result.filtered;
    e.records.failed += result.failed;
    if (result.cursor !== undefined) e.cursor = result.cursor;
  }

  recordFailure(connector: string, content: ContentType, err: unknown): void {
    const e = this.entry(connector, content);
    const at = new Date(this.now()).toISOString();
    e.lastAttempt = at;
    e.consecutiveFailures += 1;
    const cls = errorClassOf(err);
    // Messages come from our own error types; redact() removes any registered secret a server echoed.
    const message = redact(err instanceof Error ? err.message : String(err)).slice(0, 1000);
    e.lastError = { class: cls, message, at };
  }

  /** A poll due at `due` waits for a slot (`reason`), or, with due undefined, started: no longer late. */
  recordLate(connector: string, content: ContentType, due: number | undefined, reason?: string): void {
    const e = this.entry(connector, content);
    if (due === undefined) delete e.late;
    else e.late = { since: new Date(due).toISOString(), reason: reason ?? 'waiting for a poll slot' };
  }

  /**
   * After a passing `test`: the connector counts as green until its next poll result, and turns red
   * again if no poll succeeds within two intervals (so a stopped collector cannot stay green).
   */
  clearRed(connector: string, contentTypes?: readonly ContentType[]): void {
    const at = new Date(this.now()).toISOString();
    const c = (this.data.connectors[connector] ??= { contentTypes: {} });
    const types = contentTypes ?? (Object.keys(c.contentTypes) as ContentType[]);
    for (const t of types) this.entry(connector, t).clearedAt = at;
  }

  /**
   * Takes another writer's entry for a task (a replica's, from the shared PostgreSQL state) when its
   * last attempt is newer than ours; the later clearedAt of the two is kept. Returns whether it did.
   */
  adopt(connector: string, content: ContentType, entry: ContentStatus): boolean {
    if (!this.isKnown(connector)) return false;
    const mine = this.data.connectors[connector]?.contentTypes[content];
    if (mine && (mine.lastAttempt ?? '') >= (entry.lastAttempt ?? '')) return false;
    const clearedAt = [mine?.clearedAt, entry.clearedAt].filter((t): t is string => !!t).sort().pop();
    (this.data.connectors[connector] ??= { contentTypes: {} }).contentTypes[content] = { ...entry, ...(clearedAt ? { clearedAt } : {}) };
    return true;
  }

  /** Takes these connectors' status as they are (a worker's report: it owns them). */
  merge(connectors: Record<string, ConnectorStatus>): void {
    for (const [name, c] of Object.entries(connectors)) if (this.isKnown(name)) this.data.connectors[name] = c;
  }

  /**
   * Keeps the status of these connectors only (the running config's): one removed from the config,
   * by a reload or between runs, leaves status.json instead of showing its last state for ever (a
   * red connector that no longer exists would keep alerting). Entries of other names arriving later
   * (a replica on an older config, a `test` run's mark on disk) are ignored.
   */
  keepOnly(connectors: readonly { name: string }[]): void {
    this.known = new Set(connectors.map((c) => c.name));
    for (const name of Object.keys(this.data.connectors)) if (!this.known.has(name)) delete this.data.connectors[name];
  }

  private isKnown(name: string): boolean {
    return !this.known || this.known.has(name);
  }

  /** A deep copy of the current status. */
  read(): StatusFile {
    return structuredClone(this.data);
  }

  /**
   * save() now, or, within minGapMs of the last save, once that gap has passed: with hundreds of
   * tenants a poll ends every few milliseconds, and each save rewrites the whole file and the
   * metrics snapshot (for 1 000 tenants, about 1 MB each and 50 ms of CPU together).
   */
  saveSoon(minGapMs = 5000): void {
    if (this.pending) return;
    const wait = this.lastSave + minGapMs - this.now();
    if (wait <= 0) return this.save();
    this.pending = setTimeout(() => this.save(), wait);
    this.pending.unref();
  }

  /** Atomic write of status.json (and, for the collector, its metrics snapshot for the sidecar's /metrics). */
  save(): void {
    clearTimeout(this.pending);
    this.pending = undefined;
    this.lastSave = this.now();
    if (this.opts.publish) return this.opts.publish(this.read());
    const onDisk = readStatusFile(this.stateDir);
    if (onDisk) {
      for (const [name, c] of Object.entries(onDisk.connectors)) {
        if (!this.isKnown(name)) continue;
        for (const [t, s] of Object.entries(c.contentTypes) as [ContentType, ContentStatus][]) {
          if (!s?.clearedAt) continue;
          const mine = this.data.connectors[name]?.contentTypes[t];
          if (!mine?.clearedAt || mine.clearedAt < s.clearedAt) this.entry(name, t).clearedAt = s.clearedAt;
        }
      }
    }
    this.data.updatedAt = new Date(this.now()).toISOString();
    writeFileAtomic(this.file, JSON.stringify(this.data, null, 2) + '\n');
    // Best effort: a failed snapshot only leaves the sidecar's /metrics without the collector's part.
    if (this.opts.metricsSnapshot) writeMetricsSnapshot(this.stateDir).catch(() => undefined);
  }
}

export type Health = 'green' | 'red';

export interface ContentHealth {
  state: Health;
  reason?: string;
}

export interface ConnectorHealth {
  connector: string;
  state: Health;
  /** why red (one line per content type); empty when green */
  reasons: string[];
  contentTypes: Partial<Record<ContentType, ContentHealth & ContentStatus>>;
}

/** What health needs to know about a connector (a config Connector fits). */
export interface HealthSubject {
  name: string;
  contentTypes: readonly ContentType[];
  intervalMinutes: number;
}

/**
 * Green = every enabled content type's last poll succeeded, within two intervals of `now`.
 * A content type never polled, whose last poll failed, or whose last success is older than two
 * intervals is red, and so is the connector; each red content type gives one reason.
 */
export function connectorHealth(subject: HealthSubject, status: StatusFile | undefined, now: number): ConnectorHealth {
  const window = 2 * subject.intervalMinutes * 60_000;
  const entries = status?.connectors[subject.name]?.contentTypes ?? {};
  const out: ConnectorHealth = { connector: subject.name, state: 'green', reasons: [], contentTypes: {} };
  for (const t of subject.contentTypes) {
    const s = entries[t];
    let h: ContentHealth;
    if (!s) {
      h = { state: 'red', reason: 'no poll recorded yet' };
    } else {
      const okAt = Math.max(s.lastSuccess ? Date.parse(s.lastSuccess) : 0, s.clearedAt ? Date.parse(s.clearedAt) : 0);
      const errAt = s.lastError ? Date.parse(s.lastError.at) : 0;
      if (s.lastError && errAt > okAt) {
        h = { state: 'red', reason: `last poll failed at ${s.lastError.at} (${s.lastError.class}): ${s.lastError.message}` };
      } else if (!okAt) {
        h = { state: 'red', reason: 'no successful poll yet' };
      } else if (now - okAt > window) {
        h = { state: 'red', reason: `no successful poll since ${new Date(okAt).toISOString()} (more than two intervals: ${2 * subject.intervalMinutes} min)` };
      } else {
        h = { state: 'green' };
      }
    }
    out.contentTypes[t] = { ...(s ?? emptyContent()), ...h };
    if (h.state === 'red') {
      out.state = 'red';
      out.reasons.push(`${t}: ${h.reason}`);
    }
  }
  return out;
}
