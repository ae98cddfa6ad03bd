import { mkdirSync, openSync, closeSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One `test` per connector at a time: stateDir/locks/test-<connector>.lock, created with O_EXCL and
 * holding the owner's pid. A lock whose pid is dead (crash, kill -9) is taken over; a live one is
 * reported, not waited for, so a scripted check never hangs.
 */
export type LockResult = { ok: true; file: string; release: () => void } | { ok: false; file: string; pid?: number; message: string };

export function lockFileFor(stateDir: string, connector: string): string {
  return join(stateDir, 'locks', `test-${connector}.lock`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function acquireTestLock(stateDir: string, connector: string): LockResult {
  const file = lockFileFor(stateDir, connector);
  try {
    mkdirSync(join(stateDir, 'locks'), { recursive: true });
  } catch (e) {
    return { ok: false, file, message: `cannot create ${join(stateDir, 'locks')}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  // Two attempts: the second follows the removal of a stale lock. If another process wins that
  // race, its lock is live and reported as such.
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') return { ok: false, file, message: `cannot create lock file ${file}: ${code ?? String(e)}` };
      const pid = readPid(file);
      if (pid !== undefined && alive(pid)) {
        return { ok: false, file, pid, message: `another test of connector ${connector} is running (pid ${pid})` };
      }
      // Dead owner, or a lock file without a pid (a crash between create and write): stale.
      try {
        unlinkSync(file);
      } catch (u) {
        if ((u as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, file, message: `cannot remove stale lock ${file}: ${(u as NodeJS.ErrnoException).code}` };
      }
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return {
      ok: true,
      file,
      release: () => {
        if (released) return;
        released = true;
        // Only remove our own lock (a stale-lock takeover by someone else must not be undone).
        if (readPid(file) === process.pid) {
          try {
            unlinkSync(file);
          } catch {
            /* already gone */
          }
        }
      },
    };
  }
  return { ok: false, file, message: `could not take the lock ${file} (another test keeps replacing it)` };
}
