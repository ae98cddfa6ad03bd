// The fault harness's bookkeeping: an emulator (the source), a real FluentServer with acks (the
// pipeline), and the three sets every assertion is made from: what the emulator served, what the
// pipeline received, and which served versions the source replaced before anyone could deliver them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkConfigText, type Config } from '../../plugin/config/load.js';
import { isAlertsCursor, type AlertsCursor } from '../../plugin/collect/alerts.js';
import { CursorStore } from '../../plugin/collect/cursor-store.js';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../plugin/emulate/index.js';
import { Rng } from '../../plugin/emulate/prng.js';
import { TestForwardServer } from '../forward-helpers.js';
import { freePort } from './free-port.js';

export { freePort };

/** `${id}|${epoch ms}`: the emulator, the API and the records spell lastUpdateTime differently (7 vs 3 digits). */
export function versionKey(id: unknown, lastUpdateTime: unknown): string {
  const ms = Date.parse(String(lastUpdateTime));
  if (Number.isNaN(ms)) throw new Error(`not a date: ${String(lastUpdateTime)} (alert ${String(id)})`);
  return `${String(id)}|${ms}`;
}

const msOf = (key: string): number => Number(key.slice(key.lastIndexOf('|') + 1));

export const CONNECTOR = 'harness';

export interface HarnessOptions {
  emulator?: EmulatorOptions;
  /** connector keys merged over the emulator's connectorConfig() */
  connector?: Record<string, unknown>;
  /** output.forward keys */
  forward?: Record<string, unknown>;
  /** don't start the forward server (it comes up later: startForward()) */
  forwardDown?: boolean;
}

/**
 * Every forward server of one test (restarts on the same port included) feeds one `received` list;
 * the alert versions in it are counted, so duplicates are measured, not guessed.
 */
export class Harness {
  emu!: Emulator;
  config!: Config;
  configFile!: string;
  readonly stateDir = mkdtempSync(join(tmpdir(), 'df-harness-'));
  readonly servers: TestForwardServer[] = [];
  forwardPort = 0;
  /** versions replaced by an update while served but not yet received (the source no longer has them) */
  readonly superseded = new Set<string>();
  private readonly receivedCounts = new Map<string, number>();
  private receivedRecords = 0;

  static async start(opts: HarnessOptions = {}): Promise<Harness> {
    const h = new Harness();
    h.emu = await startEmulator({ seed: 7, alerts: 400, machines: 20, historyHours: 2, ...opts.emulator });
    if (opts.forwardDown) h.forwardPort = await freePort();
    else await h.startForward();
    const connector = { ...h.emu.connectorConfig(CONNECTOR), contentTypes: ['alerts'], lookbackHours: 3, alertOverlapMinutes: 1, requestTimeoutSeconds: 1, ...opts.connector };
    const text = stringify({
      stateDir: h.stateDir,
      logLevel: 'warn',
      shutdownTimeoutSeconds: 5,
      output: { type: 'forward', host: '127.0.0.1', port: h.forwardPort, maxBatchRecords: 50, ackTimeoutSeconds: 5, reconnectMaxSeconds: 1, ...opts.forward },
      connectors: [connector],
    });
    h.configFile = join(h.stateDir, 'defender.yaml');
    writeFileSync(h.configFile, text);
    const { config, problems } = checkConfigText(h.configFile, text);
    if (!config) throw new Error(`harness config invalid: ${JSON.stringify(problems)}`);
    h.config = config;
    return h;
  }

  /** (Re)starts a forward server on the harness's port (a fresh one the first time). */
  async startForward(): Promise<TestForwardServer> {
    const s = new TestForwardServer();
    s.onEntry = () => this.take(s);
    await s.start(this.forwardPort);
    this.forwardPort = s.port;
    this.servers.push(s);
    return s;
  }

  private readonly taken = new Map<TestForwardServer, number>();
  private take(s: TestForwardServer): void {
    let i = this.taken.get(s) ?? 0;
    for (; i < s.received.length; i++) {
      const { tag, record } = s.received[i]!;
      this.receivedRecords++;
      if (!tag.endsWith('.syslog.alerts')) continue;
      const raw = record.microsoft_defender as Record<string, unknown> | undefined;
      if (!raw) throw new Error(`alert record without microsoft_defender: ${JSON.stringify(record).slice(0, 200)}`);
      const k = versionKey(raw.id, raw.lastUpdateTime);
      this.receivedCounts.set(k, (this.receivedCounts.get(k) ?? 0) + 1);
    }
    this.taken.set(s, i);
  }

  /** Alert records received so far (every server, every life). */
  get alertRecords(): number {
    let n = 0;
    for (const c of this.receivedCounts.values()) n += c;
    return n;
  }

  get records(): number {
    return this.receivedRecords;
  }

  received(key: string): boolean {
    return this.receivedCounts.has(key);
  }

  /** Σ (times received − 1) over alert versions. */
  duplicates(): number {
    let d = 0;
    for (const c of this.receivedCounts.values()) d += c - 1;
    return d;
  }

  servedKeys(): string[] {
    const out: string[] = [];
    for (const [id, times] of this.emu.served.alertVersions) for (const t of times) out.push(versionKey(id, t));
    return out;
  }

  /** Served versions that never reached the pipeline and are not excused by a superseding update. */
  lost(): string[] {
    return this.servedKeys().filter((k) => !this.received(k) && !this.superseded.has(k));
  }

  /** Current versions in the source that the pipeline never received (after a final clean poll: none). */
  missingCurrent(): string[] {
    return this.emu.alertVersions().map((v) => versionKey(v.id, v.lastUpdateTime)).filter((k) => !this.received(k));
  }

  /**
   * Source changes, the way the test drives them: new alerts plus updates of existing ones. An update
   * replaces a version; if that version had not been received yet, the source can never serve it
   * again (it may even be on its way out in a page snapshotted just before), so it is recorded as
   * superseded: excused from "received", and only that. Its successor is still checked.
   */
  change(added: number, updated: number): void {
    if (added) this.emu.addAlerts(added);
    if (!updated) return;
    const before = new Map(this.emu.alertVersions().map((v) => [v.id, v.lastUpdateTime]));
    for (const v of this.emu.updateAlerts(updated)) {
      const old = versionKey(v.id, before.get(v.id));
      if (!this.received(old)) this.superseded.add(old);
    }
  }

  cursor(): AlertsCursor | undefined {
    const file = new CursorStore(this.stateDir).file(CONNECTOR, 'alerts');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const c = JSON.parse(text) as unknown;
    if (!isAlertsCursor(c)) throw new Error(`${file}: not an alerts cursor: ${text.slice(0, 200)}`);
    return c;
  }

  /**
   * "No cursor passes an unacknowledged record". The next poll starts at watermark − overlap and
   * skips what `seen` lists, so a served version below the watermark that was not received is lost
   * for good when it is below that start, or listed in `seen`. Served versions in the overlap and not
   * in `seen` will be read again: allowed. Returns the violations (empty = the cursor is honest).
   */
  cursorViolations(): string[] {
    const c = this.cursor();
    if (!c) return [];
    const w = Date.parse(c.watermark);
    const from = w - this.config.connectors[0]!.alertOverlapMinutes * 60_000;
    const seen = new Set(c.seen.map((s) => versionKey(s.slice(0, s.lastIndexOf('|')), s.slice(s.lastIndexOf('|') + 1))));
    const bad: string[] = [];
    for (const k of this.servedKeys()) {
      const t = msOf(k);
      if (t >= w || this.received(k) || this.superseded.has(k)) continue;
      if (t < from || seen.has(k)) bad.push(`${k} (watermark ${c.watermark}${seen.has(k) ? ', listed in seen' : ''})`);
    }
    // `seen` itself must only hold what was received: it is skipped on the next poll.
    for (const k of seen) if (!this.received(k) && !this.superseded.has(k)) bad.push(`${k} in seen but never received`);
    return [...new Set(bad)];
  }

  /** The newest lastUpdateTime in the source (ms). */
  newestUpdate(): number {
    return Math.max(...this.emu.alertVersions().map((v) => Date.parse(v.lastUpdateTime)));
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop().catch(() => undefined)));
    await this.emu?.close();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Seeded choices for kill points and source changes (the emulator's own PRNG). */
export function seeded(seed: number, stream: string): Rng {
  return Rng.for(seed, stream);
}
