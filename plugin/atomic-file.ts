import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * mkdir options for every state folder: private (0700) whatever the umask. Fluentd's in_exec runs
 * its children with umask 0, where the default mode left cursors world-writable. (A umask only
 * removes bits, so 0700 and the files' 0600 hold under any umask.)
 */
export const privateDir = { recursive: true, mode: 0o700 } as const;

/**
 * Writes a file so that readers (another process) and a crash at any point see either the old or
 * the new content, never a torn one: temp file in the same folder, fsync, rename over the target,
 * fsync the folder (so the rename survives a power cut). Used for cursors and status.
 */
export function writeFileAtomic(file: string, content: string | Uint8Array): void {
  const dir = dirname(file);
  mkdirSync(dir, privateDir);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some platforms cannot fsync a directory; the rename itself is still atomic */
  }
}

/**
 * writeFileAtomic that skips a file whose bytes this writer wrote last: most polls of an idle tenant
 * end with the same host cursor, digests and machine inventory, and each write is two fsyncs on the
 * event loop (writes were ~13 % of an idle collector's CPU with many tenants). The file must still
 * be the one written (same inode, size and mtime: a stat, no fsync), so one removed or replaced by
 * anyone else is written again.
 */
export class AtomicWriter {
  /** per file, a hash of the bytes this writer wrote last and what the file looked like then */
  private readonly written = new Map<string, { hash: string; stamp: string }>();

  write(file: string, content: string | Uint8Array): void {
    const hash = createHash('sha1').update(content).digest('base64');
    const last = this.written.get(file);
    if (last?.hash === hash && last.stamp === stamp(file)) return;
    writeFileAtomic(file, content);
    this.written.set(file, { hash, stamp: stamp(file) });
  }
}

function stamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'none';
  }
}
