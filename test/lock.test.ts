import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock, LockedError } from '../plugin/collect/lock.js';

const lockModule = fileURLToPath(new URL('../plugin/collect/lock.ts', import.meta.url));

/** A child process that takes the lock through acquireLock and holds it until killed. */
async function holder(dir: string): Promise<ChildProcess> {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { acquireLock } = await import(${JSON.stringify(lockModule)});
       await acquireLock(${JSON.stringify(dir)}, 'collector.lock');
       console.log('locked');
       setInterval(() => {}, 1 << 30);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    p.on('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
  return p;
}

function exited(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())));
}

/** The pid of a process that has certainly exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await exited(p);
  return p.pid!;
}

describe('acquireLock', function () {
  // child processes start node + tsx: slow on a busy machine
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'df-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a live holder in another process makes acquire throw LockedError naming its pid; once it dies the lock is taken over', async () => {
    const p = await holder(dir);
    try {
      await assert.rejects(
        () => acquireLock(dir, 'collector.lock'),
        (e: unknown) =>
          e instanceof LockedError &&
          e.pid === p.pid &&
          e.file === join(dir, 'collector.lock') &&
          e.message === `another process (pid ${p.pid}) holds ${join(dir, 'collector.lock')}; two collectors must not share one stateDir`,
      );
      // the failed attempt did not disturb the holder's lock
      assert.equal(readFileSync(join(dir, 'collector.lock'), 'utf8'), String(p.pid));
    } finally {
      p.kill('SIGKILL');
      await exited(p);
    }
    // SIGKILL left the file behind: it is stale now
    assert.equal(readFileSync(join(dir, 'collector.lock'), 'utf8'), String(p.pid));
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(readFileSync(lock.file, 'utf8'), String(process.pid));
    await lock.release();
  });

  it('a stale lock from a dead pid is taken over', async () => {
    const pid = await deadPid();
    writeFileSync(join(dir, 'collector.lock'), String(pid));
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(readFileSync(lock.file, 'utf8'), String(process.pid));
    await lock.release();
  });

  it('a lock file without a pid (torn write) is taken over', async () => {
    writeFileSync(join(dir, 'collector.lock'), '');
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(readFileSync(lock.file, 'utf8'), String(process.pid));
    await lock.release();
  });

  it('release removes the lock file, and the lock can be taken again', async () => {
    const lock = await acquireLock(join(dir, 'state'), 'collector.lock');
    assert.ok(existsSync(lock.file));
    await lock.release();
    assert.ok(!existsSync(lock.file));
    const again = await acquireLock(join(dir, 'state'), 'collector.lock');
    await again.release();
    await again.release(); // idempotent
  });
});
