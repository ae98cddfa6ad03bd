import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { contentTypes, type ContentType } from '../config/load.js';
import { AtomicWriter, writeFileAtomic } from '../atomic-file.js';
import type { StateStore, WindowJournalStore } from '../state/store.js';
import { WindowJournal } from './window-journal.js';

export class CursorError extends Error {
  constructor(
    /** where the cursor lives: `file /path` or the PostgreSQL row */
    readonly where: string,
    readonly resetCommand: string,
    detail: string,
    problem = 'is unreadable',
  ) {
    super(`cursor ${where} ${problem} (${detail}); inspect it, or start over from the lookback with: ${resetCommand}`);
    this.name = 'CursorError';
  }
}

/**
 * The file state store (the default): one JSON file per connector × content type under
 * stateDir/cursors, with side files for the alerts' window journal and the host digests. A cursor
 * records what the pipeline has acknowledged; it is written only after delivery and never guessed:
 * a corrupt file stops that task with an error rather than silently restarting from the lookback.
 */
export class CursorStore implements StateStore {
  readonly dir: string;
  /** an unchanged cursor or digests file is not written again */
  private readonly files = new AtomicWriter();

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'cursors');
  }

  file(connector: string, content: ContentType): string {
    return join(this.dir, `${encodeURIComponent(connector)}.${content}.json`);
  }

  /**
   * Side file of a cursor: `window` (the alerts' window journal) and `digests` (the host digests) go
   * with the cursor on reset(); `budget` (hunting's share of Graph's quotas) stays, since a reset
   * does not give the quota back.
   */
  sideFile(connector: string, content: ContentType, kind: SideKind | 'budget'): string {
    return join(this.dir, `${encodeURIComponent(connector)}.${content}.${kind}`);
  }

  async loadBudget(connector: string): Promise<{ text?: string; where: string }> {
    const file = this.sideFile(connector, 'hunting', 'budget');
    const bytes = await readIfPresent(file);
    return bytes ? { text: bytes.toString('utf8'), where: file } : { where: file };
  }

  async saveBudget(connector: string, text: string): Promise<void> {
    writeFileAtomic(this.sideFile(connector, 'hunting', 'budget'), text);
  }

  async load<T>(connector: string, content: ContentType, check: (v: unknown) => v is T): Promise<T | undefined> {
    const file = this.file(connector, content);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CursorError(`file ${file}`, resetCommand(connector, content), (e as NodeJS.ErrnoException).code ?? String(e));
    }
    return parseCursor(text, `file ${file}`, connector, content, check);
  }

  assertNotAhead(connector: string, content: ContentType, times: Record<string, string | undefined>, now: number): void {
    assertCursorNotAhead(`file ${this.file(connector, content)}`, connector, content, times, now);
  }

  async save(connector: string, content: ContentType, cursor: unknown): Promise<void> {
    this.files.write(this.file(connector, content), JSON.stringify(cursor));
  }

  journal(connector: string, content: ContentType): WindowJournalStore {
    return new WindowJournal(this.sideFile(connector, content, 'window'));
  }

  async loadDigests(connector: string): Promise<Buffer | undefined> {
    return readIfPresent(this.sideFile(connector, 'host', 'digests'));
  }

  async saveDigests(connector: string, table: Buffer): Promise<void> {
    this.files.write(this.sideFile(connector, 'host', 'digests'), table);
  }

  /** Deletes the cursor(s); returns the files removed. */
  async reset(connector: string, content?: ContentType): Promise<string[]> {
    const removed: string[] = [];
    const prefix = `${encodeURIComponent(connector)}.`;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      // whole names only: connector "acme" must not take "acme.eu.alerts.json" with it; side files
      // (the alerts' window journal, the host digests) go with their cursor
      if (!(content ? [content] : contentTypes).some((c) => ['json', ...sideKinds].some((kind) => name === `${prefix}${c}.${kind}`))) continue;
      await unlink(join(this.dir, name));
      removed.push(join(this.dir, name));
    }
    return removed;
  }
}

/** The file's bytes; undefined when there is no such file. */
async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Side files of a cursor (see sideFile). */
const sideKinds = ['window', 'digests'] as const;
type SideKind = (typeof sideKinds)[number];

/** A stored cursor's text → the cursor, or a CursorError saying where it is and how to start over. */
export function parseCursor<T>(text: string, where: string, connector: string, content: ContentType, check: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CursorError(where, resetCommand(connector, content), `not JSON: ${(e as Error).message}`);
  }
  if (!check(value)) throw new CursorError(where, resetCommand(connector, content), 'not a cursor of this content type');
  return value;
}

/**
 * A cursor time past this machine's clock (the clock was set back, or the state came from another
 * machine) makes every poll ask for a window that has not happened yet: 0 records while looking
 * healthy. It stops the task with the reason instead (status turns red); a few minutes of skew pass.
 */
export function assertCursorNotAhead(where: string, connector: string, content: ContentType, times: Record<string, string | undefined>, now: number): void {
  for (const [field, at] of Object.entries(times)) {
    const t = at === undefined ? NaN : Date.parse(at);
    if (!(t > now + cursorClockSkewMs)) continue;
    const detail = `${field} ${at} is ${Math.round((t - now) / 60_000)} min ahead of this machine's clock, ${new Date(now).toISOString()}: fix the clock and the task resumes where it was`;
    throw new CursorError(where, resetCommand(connector, content), detail, "is ahead of this machine's clock");
  }
}

/** Clock skew a cursor time may have over this machine's clock before it counts as ahead. */
export const cursorClockSkewMs = 5 * 60_000;

export function resetCommand(connector: string, content: ContentType): string {
  return `defender-fluent run --config <file> --reset-cursor ${connector}:${content}`;
}
