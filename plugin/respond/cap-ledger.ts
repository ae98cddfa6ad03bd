import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';

export const capLedgerFileName = 'respond-caps.json';

const hour = 3_600_000;

/** One automated isolation holding a cap slot: from its reservation (before Defender is asked) on. */
export interface CapEntry {
  connector: string;
  machineId: string;
  at: number;
  /** reserved: Defender was being asked (a crash there may have isolated); error: it may have created an action */
  status: 'reserved' | 'accepted' | 'dry_run' | 'error';
  dryRun: boolean;
  action?: { id: string; type?: string; status?: string };
}

/**
 * The automation caps' own state (stateDir/respond-caps.json): every slot held within the last hour,
 * written atomically before the answer goes out. Rebuilding the caps from audit.log alone let a
 * rotated (or removed) log reset them: 14 isolations in an hour against a cap of 7.
 */
export class CapLedger {
  readonly file: string;
  private entries: CapEntry[] = [];

  constructor(
    stateDir: string,
    private readonly now: () => number,
  ) {
    this.file = join(stateDir, capLedgerFileName);
  }

  /**
   * The slots of the last hour, or undefined when there is no ledger (state of a version before
   * it: the audit log is read instead). A damaged ledger is an error: the caps would be unknown.
   */
  load(): CapEntry[] | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let parsed: { v?: number; entries?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (e) {
      throw new Error(`${this.file}: not valid JSON (${(e as Error).message}); the automation caps cannot be restored. Remove it only if no automated isolation happened within the last hour.`);
    }
    if (parsed?.v !== 1 || !Array.isArray(parsed.entries)) throw new Error(`${this.file}: expected {"v":1,"entries":[…]}; the automation caps cannot be restored`);
    const since = this.now() - hour;
    this.entries = (parsed.entries as CapEntry[]).filter((e) => e && typeof e.connector === 'string' && typeof e.machineId === 'string' && typeof e.at === 'number' && e.at > since);
    return [...this.entries];
  }

  /** Adds an entry, or saves the change of one already added. Throws when the file cannot be written. */
  put(entry: CapEntry): void {
    if (!this.entries.includes(entry)) this.entries.push(entry);
    this.save();
  }

  /** The slot was given back (Defender certainly created nothing). */
  drop(entry: CapEntry): void {
    this.entries = this.entries.filter((e) => e !== entry);
    this.save();
  }

  private save(): void {
    const since = this.now() - hour;
    this.entries = this.entries.filter((e) => e.at > since);
    writeFileAtomic(this.file, JSON.stringify({ v: 1, entries: this.entries }));
  }
}
