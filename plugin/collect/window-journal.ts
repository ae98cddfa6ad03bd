import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import type { WindowJournalStore } from '../state/store.js';

/**
 * The file store's window journal (see WindowJournalStore): one `id|lastUpdateTime` per line.
 * Appended, so a window of n alerts costs O(n) bytes written (the keys inside the
 * cursor, rewritten per page, would cost O(n²)). A line torn by a crash is dropped on load: at
 * worst that alert is delivered again, never skipped.
 */
export class WindowJournal implements WindowJournalStore {
  constructor(readonly file: string) {}

  /** Replaces whatever the file held (a finished window's keys) with `keys`. */
  async start(keys: string[]): Promise<void> {
    writeFileAtomic(this.file, lines(keys));
  }

  async append(keys: string[]): Promise<void> {
    if (!keys.length) return;
    const fd = openSync(this.file, 'a', 0o600);
    try {
      const text = lines(keys);
      // a short write (disk full) must fail the checkpoint, not leave a torn line behind silently
      if (writeSync(fd, text) !== Buffer.byteLength(text)) throw new Error(`short write to ${this.file}`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The keys recorded; none when the file is missing. A torn last line is cut off the file too, so that the next append starts on a line of its own. */
  async load(): Promise<string[]> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const keys = text.split('\n');
    const torn = keys.pop(); // '' after the last newline, or a line torn by a crash
    if (torn) await this.start(keys);
    return keys;
  }

  async remove(): Promise<void> {
    rmSync(this.file, { force: true });
  }
}

const lines = (keys: string[]): string => (keys.length ? `${keys.join('\n')}\n` : '');
