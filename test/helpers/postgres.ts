import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A private PostgreSQL server for the tests, from Debian's `postgresql` package (.ci/run installs it
 * on a fresh machine): a cluster made by initdb in a temporary folder, listening on 127.0.0.1 only,
 * trust authentication, stopped when the mocha process exits. PostgreSQL refuses to run as root, so
 * as root the cluster is made and run as the package's `postgres` user. One server per mocha
 * process; each test gets a database of its own from freshDatabase().
 */
let server: Promise<{ port: number; proc: ChildProcess }> | undefined;

function binDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'postgres'))) : [];
  if (!versions.length) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian\'s "postgresql" package (.ci/run does: apt-get install -y postgresql)');
  return join(base, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

const asRoot = process.getuid?.() === 0;
const runAs = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);

async function start(): Promise<{ port: number; proc: ChildProcess }> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'df-pg-'));
  if (asRoot) {
    chmodSync(dir, 0o777);
    execFileSync('chown', ['postgres', dir]);
  }
  const data = join(dir, 'data');
  execFileSync(...runAs(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']), { stdio: 'ignore' });
  const port = await freePort();
  // fsync off: a test server's durability does not matter, and fsyncs are slow on a shared disk
  const [cmd, args] = runAs(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200']);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  // the server must not keep a process alive that is otherwise done (a bench); it is stopped at exit
  proc.unref();
  (proc.stderr as unknown as { unref(): void }).unref();
  const stop = () => {
    proc.kill('SIGINT'); // fast shutdown
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`PostgreSQL exited at start: ${log}`);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    try {
      await client.connect();
      await client.end();
      return { port, proc };
    } catch (e) {
      if (i > 100) throw new Error(`PostgreSQL did not accept connections: ${(e as Error).message}; ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let databases = 0;

/** The URL of a new, empty database on the test server (started on first use). */
export async function freshDatabase(): Promise<string> {
  server ??= start();
  const { port } = await server;
  const name = `t${process.pid}_${++databases}`;
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return `postgres://postgres@127.0.0.1:${port}/${name}`;
}

/** Gives `owner` the lease of a task for `seconds` (negative: one that has expired), as a replica's claim would. */
export async function holdLease(pool: pg.Pool, owner: string, connector: string, content: string, seconds = 3600): Promise<void> {
  await pool.query(
    `INSERT INTO defender_fluent_tasks (connector, content, owner, lease_until) VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 second')
     ON CONFLICT (connector, content) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until`,
    [connector, content, owner, seconds],
  );
}
