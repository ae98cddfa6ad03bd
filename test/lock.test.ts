import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, LockedError, type LockOptions } from '../plugin/collect/lock.js';

const lockModule = fileURLToPath(new URL('../plugin/collect/lock.ts', import.meta.url));

/** A child process that takes the lock through acquireLock and holds it until killed. */
async function holder(dir: string, opts: LockOptions = {}): Promise<ChildProcess> {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { acquireLock } = await import(${JSON.stringify(lockModule)});
       await acquireLock(${JSON.stringify(dir)}, 'collector.lock', ${JSON.stringify(opts)});
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

/** The lock's owner as written in the file. */
const owner = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { pid: number; host: string; boot?: string; pidns?: string; start?: string; nonce: string };

/** Replace a file in one step, as another host writing its own lock would. */
function replace(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** This kernel boot and pid namespace, as the lock records them (Linux). */
const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const pidns = readlinkSync('/proc/self/ns/pid');

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
      assert.equal(owner(join(dir, 'collector.lock')).pid, p.pid);
    } finally {
      p.kill('SIGKILL');
      await exited(p);
    }
    // SIGKILL left the file behind: it is stale now
    assert.equal(owner(join(dir, 'collector.lock')).pid, p.pid);
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
    await lock.release();
  });

  it('a stale lock from a dead pid is taken over, in the old bare-pid format too', async () => {
    const pid = await deadPid();
    writeFileSync(join(dir, 'collector.lock'), String(pid));
    let lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
    await lock.release();
    writeFileSync(join(dir, 'collector.lock'), JSON.stringify({ pid, host: 'h', boot, pidns, nonce: 'n' }));
    lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
    await lock.release();
  });

  it('a takeover left half done by a process that died in it does not block', async () => {
    const dead = await deadPid();
    writeFileSync(join(dir, 'collector.lock'), JSON.stringify({ pid: dead, host: 'h', boot, pidns, nonce: 'dead' }));
    writeFileSync(join(dir, 'collector.lock.takeover'), JSON.stringify({ pid: dead, host: 'h', boot, pidns, nonce: 'dead-too' }));
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
    assert.ok(!existsSync(join(dir, 'collector.lock.takeover')));
    await lock.release();
  });

  it('records host, kernel boot, pid namespace and start time, and refreshes its mtime as a heartbeat', async () => {
    const lock = await acquireLock(dir, 'collector.lock', { heartbeatMs: 20 });
    const o = owner(lock.file);
    assert.equal(o.boot, boot);
    assert.equal(o.pidns, pidns);
    assert.equal(o.start, readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]);
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(lock.file, past, past);
    while (statSync(lock.file).mtimeMs <= past.getTime() + 1000) await sleep(10);
    await lock.release();
  });

  it('on this kernel and pid namespace, a live pid with another start time is a reused pid: taken over at once', async () => {
    writeFileSync(join(dir, 'collector.lock'), JSON.stringify({ pid: process.ppid, host: 'h', boot, pidns, start: '1', nonce: 'n' }));
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
    await lock.release();
  });

  it('a lock from another pid namespace (a container gone) naming a pid alive here is judged by its heartbeat, not the pid', async () => {
    const file = join(dir, 'collector.lock');
    const other = JSON.stringify({ pid: process.ppid, host: 'collector-7d9f-old', boot, pidns: 'pid:[1]', start: '1', nonce: 'n' });
    writeFileSync(file, other);
    // without waiting: a fresh mtime is a live holder, named with its host
    await assert.rejects(
      () => acquireLock(dir, 'collector.lock'),
      (e: unknown) => e instanceof LockedError && e.pid === process.ppid && e.host === 'collector-7d9f-old' && e.message.includes(`(pid ${process.ppid} on collector-7d9f-old)`),
    );
    // an old mtime is a dead one
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(file, past, past);
    let lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(file).pid, process.pid);
    await lock.release();
    // waiting: a heartbeat that does not move within staleMs is stale, whatever the clocks say
    writeFileSync(file, other);
    const watched: unknown[] = [];
    lock = await acquireLock(dir, 'collector.lock', { wait: true, staleMs: 300, heartbeatMs: 50, onWatch: (h) => watched.push(h) });
    assert.equal(owner(file).pid, process.pid);
    assert.deepEqual(watched, [{ pid: process.ppid, host: 'collector-7d9f-old', staleMs: 300 }], 'the caller is told why it waits');
    await lock.release();
  });

  it('two hosts on one volume: a live holder elsewhere blocks while its heartbeat moves; once it dies the lock is taken over', async () => {
    const p = await holder(dir, { heartbeatMs: 30 });
    const file = join(dir, 'collector.lock');
    try {
      // the running holder, seen as another host would write it (its nonce kept: it still beats)
      replace(file, JSON.stringify({ ...owner(file), host: 'node-b', boot: 'another-boot' }));
      await assert.rejects(
        () => acquireLock(dir, 'collector.lock', { wait: true, staleMs: 5_000, heartbeatMs: 30 }),
        (e: unknown) => e instanceof LockedError && e.pid === p.pid && e.host === 'node-b',
      );
      assert.equal(owner(file).host, 'node-b', 'the refused attempt left the holder its lock');
    } finally {
      p.kill('SIGKILL');
      await exited(p);
    }
    const lock = await acquireLock(dir, 'collector.lock', { wait: true, staleMs: 300, heartbeatMs: 30 });
    assert.equal(owner(file).pid, process.pid);
    await lock.release();
  });

  it('processes racing to take over one stale lock: exactly one takes it, the others are refused (takeovers take turns)', async () => {
    const file = join(dir, 'collector.lock');
    writeFileSync(file, JSON.stringify({ pid: await deadPid(), host: 'h', boot, pidns, nonce: 'dead' }));
    const racers = Array.from({ length: 5 }, () =>
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `const { acquireLock, LockedError } = await import(${JSON.stringify(lockModule)});
           process.stdin.once('data', async () => {
             try {
               await acquireLock(${JSON.stringify(dir)}, 'collector.lock', { heartbeatMs: 50, onLost: () => console.log('lost') });
               console.log('locked');
             } catch (e) {
               console.log(e instanceof LockedError ? 'refused' : 'error ' + e.message);
             }
           });
           console.log('ready');
           setInterval(() => {}, 1 << 30);`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      ),
    );
    const said = racers.map(() => [] as string[]);
    racers.forEach((p, i) => p.stdout!.on('data', (d: Buffer) => said[i]!.push(...d.toString().trim().split('\n'))));
    try {
      while (!said.every((w) => w.includes('ready'))) await sleep(20);
      for (const p of racers) p.stdin!.write('go\n'); // as close together as the pipes allow
      const holding = () => said.map((w, i) => ({ i, w })).filter(({ w }) => w.includes('locked') && !w.includes('lost'));
      // everybody answered, and one holds it (a holder displaced by another's takeover would say 'lost' on its next heartbeat)
      while (!said.every((w) => w.includes('locked') || w.includes('refused')) || holding().length !== 1) await sleep(20);
      assert.deepEqual(said.flat().filter((w) => w.startsWith('error') || w === 'lost'), []);
      assert.equal(owner(file).pid, racers[holding()[0]!.i]!.pid);
    } finally {
      for (const p of racers) p.kill('SIGKILL');
      await Promise.all(racers.map(exited));
    }
  });

  it('a holder whose lock another process took over is told so, and its release leaves the new lock alone', async () => {
    let told!: (reason: string) => void;
    const lost = new Promise<string>((r) => (told = r));
    const lock = await acquireLock(dir, 'collector.lock', { heartbeatMs: 20, onLost: (reason) => told(reason) });
    const theirs = JSON.stringify({ pid: 4242, host: 'node-b', boot: 'another-boot', nonce: 'theirs' });
    replace(lock.file, theirs);
    assert.equal(await lost, `${lock.file} was taken over by another process (its heartbeat was judged stale)`);
    await lock.release();
    assert.equal(readFileSync(lock.file, 'utf8'), theirs);
  });

  it('a lock file without an owner (damaged) is taken over', async () => {
    writeFileSync(join(dir, 'collector.lock'), '');
    const lock = await acquireLock(dir, 'collector.lock');
    assert.equal(owner(lock.file).pid, process.pid);
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
