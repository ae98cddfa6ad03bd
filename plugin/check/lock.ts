import { join } from 'node:path';
import { acquireLock, LockedError } from '../collect/lock.js';

/**
 * One `test` per connector at a time: stateDir/locks/test-<connector>.lock. A live holder is
 * reported, not waited for, so a scripted check never hangs; a lock left by a dead process is taken over.
 */
export type LockResult = { ok: true; file: string; release: () => Promise<void> } | { ok: false; file: string; pid?: number; message: string };

export function lockFileFor(stateDir: string, connector: string): string {
  return join(stateDir, 'locks', `test-${connector}.lock`);
}

export async function acquireTestLock(stateDir: string, connector: string): Promise<LockResult> {
  const file = lockFileFor(stateDir, connector);
  try {
    const lock = await acquireLock(join(stateDir, 'locks'), `test-${connector}.lock`);
    return { ok: true, file, release: lock.release };
  } catch (e) {
    if (e instanceof LockedError) return { ok: false, file, pid: e.pid, message: `another test of connector ${connector} is running (pid ${e.pid})` };
    return { ok: false, file, message: `cannot create lock file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
}
