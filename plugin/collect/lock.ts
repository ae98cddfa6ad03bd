import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { privateDir } from '../atomic-file.js';

export class LockedError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`another process (pid ${pid}) holds ${file}; two collectors must not share one stateDir`);
    this.name = 'LockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lock files this process holds: a file with our own pid is ours only if we took it (pids are reused). */
const held = new Set<string>();

/**
 * An exclusive lock file holding the owner's pid. A lock left by a dead process (crash, SIGKILL) is
 * taken over; a live owner (this process included) makes acquire throw LockedError.
 */
export async function acquireLock(dir: string, name: string): Promise<{ file: string; release(): Promise<void> }> {
  await mkdir(dir, privateDir);
  const file = join(dir, name);
  // The pid is written to a private file first and then hard-linked to the lock name: the lock
  // never exists without its pid, so nobody can mistake a lock being created for a stale one.
  const mine = `${file}.${process.pid}`;
  await writeFile(mine, String(process.pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(mine, file);
        held.add(file);
        return {
          file,
          release: async () => {
            if (!held.delete(file)) return;
            // only our own lock: a stale-lock takeover by another process must not be undone
            const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
            if (owner === process.pid) await unlink(file).catch(() => undefined);
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        const live = pid === process.pid ? held.has(file) : Number.isInteger(pid) && pid > 0 && alive(pid);
        if (live) throw new LockedError(file, pid);
        await unlink(file).catch(() => undefined);
      }
    }
    throw new Error(`could not acquire ${file}`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
