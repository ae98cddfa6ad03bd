import type { ContentType } from '../config/load.js';

/**
 * Where the collector keeps what it has delivered: a cursor per connector × content type, the
 * alerts' window journal, and the host digests. Two implementations: files under stateDir
 * (CursorStore, the default) and PostgreSQL (PgStateStore, shared by replicas). Every write of the
 * PostgreSQL store is fenced by the task's lease: it fails with LeaseLostError once another replica
 * may have taken the task, so a stale writer can never move a cursor back.
 */
export interface StateStore {
  /** The cursor; undefined when there is none yet; a CursorError when it cannot be used. */
  load<T>(connector: string, content: ContentType, check: (v: unknown) => v is T): Promise<T | undefined>;
  save(connector: string, content: ContentType, cursor: unknown): Promise<void>;
  /** Stops the task when a cursor time is ahead of this machine's clock (see assertCursorNotAhead). */
  assertNotAhead(connector: string, content: ContentType, times: Record<string, string | undefined>, now: number): void;
  /** The window journal of a cursor (alerts). */
  journal(connector: string, content: ContentType): WindowJournalStore;
  /** The host digests (a DigestTable's bytes) as last saved; undefined when none. */
  loadDigests(connector: string): Promise<Buffer | undefined>;
  saveDigests(connector: string, table: Buffer): Promise<void>;
  /** Hunting's quota budget of a connector as last saved (its text, checked by HuntingBudget), and where it is, for messages. A reset leaves it: a reset gives no quota back. */
  loadBudget(connector: string): Promise<{ text?: string; where: string }>;
  saveBudget(connector: string, text: string): Promise<void>;
  /** Deletes the cursor(s) with their journal and digests; returns what was removed, for the log. */

  reset(connector: string, content?: ContentType): Promise<string[]>;
}

/**
 * The alerts delivered so far in a window that spans several pages (`id|lastUpdateTime` keys),
 * added after each page is acknowledged, so that a restart resumes the window without delivering
 * them again.
 */
export interface WindowJournalStore {
  /** Replaces whatever the journal held (a finished window's keys) with `keys`. */
  start(keys: string[]): Promise<void>;
  append(keys: string[]): Promise<void>;
  /** The keys recorded; none when there is no journal. */
  load(): Promise<string[]>;
  remove(): Promise<void>;
}

/** A write refused because this replica no longer holds the task's lease (another may poll it now). */
export class LeaseLostError extends Error {
  constructor(connector: string, content: ContentType) {
    super(`lease on ${connector}:${content} lost: another replica may have taken the task over; this poll's work is not committed and is read again from the last committed cursor`);
    this.name = 'LeaseLostError';
  }
}
