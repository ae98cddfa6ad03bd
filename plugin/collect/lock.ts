import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, open, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { privateDir } from '../atomic-file.js';

export class LockedError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number,
    /** the holder's host when it is not this machine (or not this container's pid namespace) */
    readonly host?: string,
  ) {
    super(`another process (pid ${pid}${host === undefined ? '' : ` on ${host}`}) holds ${file}; two collectors must not share one stateDir`);
    this.name = 'LockedError';
  }
}

/**
 * Who holds a lock. A pid means something only inside one pid namespace of one boot of one kernel:
 * `boot` (/proc/sys/kernel/random/boot_id) and `pidns` (/proc/self/ns/pid) say which, `start` (the
 * process start time in clock ticks since boot) tells a reused pid from the holder. `nonce` names
 * one acquisition, so a holder can tell its lock from a successor's.
 */
interface Owner {
  pid: number;
  host: string;
  boot?: string;
  pidns?: string;
  start?: string;
  nonce: string;
}

function proc(read: () => string): string | undefined {
  try {
    return read().trim() || undefined;
  } catch {
    return undefined; // not Linux, or /proc hidden: fall back to what is known
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses. */
function startTime(pid: number): string | undefined {
  const stat = proc(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

const me = {
  pid: process.pid,
  host: hostname(),
  boot: proc(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
  pidns: proc(() => readlinkSync('/proc/self/ns/pid')),
  start: startTime(process.pid),
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder's pid can be checked here: same kernel boot and pid namespace (or, without /proc, same host). */
function local(o: Owner): boolean {
  if (o.boot !== undefined || me.boot !== undefined) return o.boot === me.boot && o.pidns === me.pidns;
  return o.host === me.host;
}

function parse(raw: string): Owner | { pid: number; legacy: true } | undefined {
  // versions before 0.2 wrote the bare pid
  if (/^\d+\s*$/.test(raw)) return { pid: Number(raw), legacy: true };
  try {
    const o = JSON.parse(raw) as Owner;
    return Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.nonce === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Lock files this process holds: a file with our own pid is ours only if we took it (pids are reused). */
const held = new Set<string>();

export interface LockOptions {
  /** how often the holder refreshes the lock file's mtime, its heartbeat (default 5 s) */
  heartbeatMs?: number;
  /** a lock from another host or container is stale once its heartbeat has not moved for this long (default 30 s) */
  staleMs?: number;
  /**
   * For a lock from another host or container: watch its heartbeat until it moves (held) or stays
   * still for staleMs (stale, taken over). Without it, such a lock is held while its mtime is
   * younger than staleMs by this machine's clock, and acquire never waits.
   */
  wait?: boolean;
  /** called before watching the heartbeat of a lock from another host or container (wait) */
  onWatch?: (holder: { pid: number; host?: string; staleMs: number }) => void;
  /** the lock file was removed or replaced while we held it (another host judged it stale) */
  onLost?: (reason: string) => void;
}

async function snapshot(file: string): Promise<{ raw: string; mtimeMs: number } | undefined> {
  // open + fstat, not stat: NFS revalidates attributes on open (close-to-open), a bare stat may be cached
  const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!fh) return undefined;
  try {
    const [raw, st] = await Promise.all([fh.readFile('utf8'), fh.stat()]);
    return { raw, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}

/** Whether the holder of `seen` is alive: by pid where pids mean something here, else by its heartbeat. */
async function live(file: string, seen: { raw: string; mtimeMs: number }, o: LockOptions): Promise<{ pid: number; host?: string } | undefined> {
  const owner = parse(seen.raw);
  if (!owner) return undefined; // the lock never exists without its owner (see acquireLock): damaged
  if ('legacy' in owner) {
    if (!alive(owner.pid)) return undefined;
  } else if (local(owner)) {
    if (owner.pid === process.pid) return held.has(file) ? { pid: owner.pid } : undefined;
    const start = owner.start === undefined ? undefined : startTime(owner.pid);
    return alive(owner.pid) && (start === undefined || start === owner.start) ? { pid: owner.pid } : undefined;
  }
  // Another host, another container's pid namespace, or a pid we cannot judge: its heartbeat decides.
  const holder = { pid: owner.pid, host: 'legacy' in owner ? undefined : owner.host };
  const staleMs = o.staleMs ?? 30_000;
  if (!o.wait) return Date.now() - seen.mtimeMs < staleMs ? holder : undefined;
  // Only a change of the mtime counts, never its age: the holder's clock may differ from ours.
  o.onWatch?.({ ...holder, staleMs });
  const poll = Math.max(10, Math.min(o.heartbeatMs ?? 5_000, staleMs) / 4);
  for (const until = Date.now() + staleMs; Date.now() < until; ) {
    await sleep(poll);
    const now = await snapshot(file);
    if (!now || now.raw !== seen.raw) return holder; // gone or replaced: the caller looks again
    if (now.mtimeMs !== seen.mtimeMs) return holder;
  }
  return undefined;
}

/**
 * Remove the stale lock `raw`, and only it. Removers take turns through a gate file (created like
 * the lock), so one cannot remove the lock another has just put in its place; false while another
 * process is at it.
 */
async function remove(file: string, raw: string, mine: string, o: LockOptions): Promise<boolean> {
  const gate = `${file}.takeover`;
  try {
    await link(mine, gate);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // a takeover in progress, or one whose process died in it (a gate lives for milliseconds)
    const g = await snapshot(gate);
    if (g && !(await live(gate, g, { ...o, wait: false })) && (await readFile(gate, 'utf8').catch(() => '')) === g.raw) await unlink(gate).catch(() => undefined);
    return false;
  }
  try {
    if ((await readFile(file, 'utf8').catch(() => undefined)) === raw) await unlink(file);
    return true;
  } finally {
    await unlink(gate).catch(() => undefined);
  }
}

function heartbeat(file: string, nonce: string, o: LockOptions): () => void {
  const lost = (reason: string) => {
    clearInterval(timer);
    held.delete(file);
    o.onLost?.(reason);
  };
  const beat = async () => {
    const fh = await open(file, 'r').catch(() => undefined);
    if (!fh) return lost(`${file} was removed while this process held it`);
    try {
      if (!(await fh.readFile('utf8')).includes(nonce)) return lost(`${file} was taken over by another process (its heartbeat was judged stale)`);
      const now = new Date();
      await fh.utimes(now, now);
    } finally {
      await fh.close();
    }
  };
  const timer = setInterval(() => void beat().catch(() => undefined), o.heartbeatMs ?? 5_000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * An exclusive lock file naming its owner (host, kernel boot, pid namespace, pid, start time),
 * whose mtime the owner refreshes as a heartbeat. A lock whose owner is dead (crash, SIGKILL, a
 * container gone) is taken over; a live owner (this process included) makes acquire throw LockedError.
 */
export async function acquireLock(dir: string, name: string, o: LockOptions = {}): Promise<{ file: string; release(): Promise<void> }> {
  await mkdir(dir, privateDir);
  const file = join(dir, name);
  const nonce = randomUUID();
  const owner: Owner = { ...me, nonce };
  const text = JSON.stringify(owner);
  // The owner is written to a private file first and then hard-linked to the lock name: the lock
  // never exists without its owner, so nobody can mistake a lock being created for a stale one.
  const mine = `${file}.${nonce}`;
  await writeFile(mine, text, { mode: 0o600 });
  try {
    for (let removed = 0; removed < 5; ) {
      try {
        await link(mine, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const seen = await snapshot(file);
        if (!seen) continue;
        const holder = await live(file, seen, o);
        if (holder) {
          // the holder may have gone while we watched it; only a lock still in place blocks us
          if ((await snapshot(file))?.raw !== seen.raw) continue;
          throw new LockedError(file, holder.pid, holder.host);
        }
        if (await remove(file, seen.raw, mine, o)) removed++;
        else await sleep(5 + Math.random() * 20); // another process is taking it over: see what it left
        continue;
      }
      held.add(file);
      const stop = heartbeat(file, nonce, o);
      return {
        file,
        release: async () => {
          stop();
          if (!held.delete(file)) return;
          // only our own lock: a stale-lock takeover by another process must not be undone
          if ((await readFile(file, 'utf8').catch(() => '')).includes(nonce)) await unlink(file).catch(() => undefined);
        },
      };
    }
    throw new Error(`could not acquire ${file}`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
