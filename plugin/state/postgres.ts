import pg from 'pg';
import type { ContentType } from '../config/load.js';
import { contentTypes } from '../config/load.js';
import { assertCursorNotAhead, parseCursor } from '../collect/cursor-store.js';
import { LeaseLostError, type StateStore, type WindowJournalStore } from './store.js';

/**
 * Tables, created on first use (under an advisory lock, so replicas starting together do not race):
 * one row per connector × content type holding its lease (owner, lease_until), cursor, host
 * digests and hunting quota budget; the alerts' window journal, one row per checkpointed page; the live replicas (for the
 * fair share of tasks); the machine inventory (PgMachineInventory: the packed fields per connector,
 * a row per machine); and connector status.
 */
const schema = `
CREATE TABLE IF NOT EXISTS defender_fluent_tasks (
  connector text NOT NULL,
  content text NOT NULL,
  owner text,
  lease_until timestamptz,
  cursor json,
  digests bytea,
  PRIMARY KEY (connector, content)
);
CREATE TABLE IF NOT EXISTS defender_fluent_journal (
  connector text NOT NULL,
  content text NOT NULL,
  seq bigserial,
  keys text NOT NULL,
  PRIMARY KEY (connector, content, seq)
);
CREATE TABLE IF NOT EXISTS defender_fluent_replicas (
  owner text PRIMARY KEY,
  seen_until timestamptz NOT NULL
);
ALTER TABLE defender_fluent_replicas ADD COLUMN IF NOT EXISTS tasks text;
ALTER TABLE defender_fluent_tasks ADD COLUMN IF NOT EXISTS budget text;
CREATE TABLE IF NOT EXISTS defender_fluent_inventory (
  connector text PRIMARY KEY,
  fields text NOT NULL
);
CREATE TABLE IF NOT EXISTS defender_fluent_machines (
  connector text NOT NULL,
  id text NOT NULL,
  entry text NOT NULL,
  PRIMARY KEY (connector, id)
);
CREATE TABLE IF NOT EXISTS defender_fluent_status (
  connector text NOT NULL,
  content text NOT NULL,
  status json NOT NULL,
  PRIMARY KEY (connector, content)
);`;

const schemaLock = 0x64665f73; // 'df_s': any constant shared by every replica

/** A pool on the state database; its errors never carry the URL (and so never its password). */
export async function openPool(url: string, max = 4): Promise<pg.Pool> {
  // bounded waits: a database out of reach fails a write or a renewal instead of hanging a poll
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'defender-fluent', connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  // an idle client's error (server restart) must not crash the process; the next query reports it
  pool.on('error', () => undefined);
  try {
    await inTransaction(pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [schemaLock]);
      await c.query(schema);
    });
  } catch (e) {
    await pool.end();
    throw e;
  }
  return pool;
}

/** Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
async function inTransaction(pool: pg.Pool, work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await work(c);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** What a row is called in messages (CursorError, logs). */
const where = (connector: string, content: ContentType) => `${connector}:${content} in PostgreSQL (table defender_fluent_tasks)`;

/**
 * The PostgreSQL state store, shared by every replica. Reads are plain; every write is fenced by
 * the task's lease: it takes effect only while `owner` holds an unexpired lease on the task, checked
 * in the same statement (or under the task row's lock for the journal), so a replica that lost its
 * lease (paused, partitioned, too slow to renew) cannot overwrite what the replica that took the
 * task over committed. A refused write is a LeaseLostError.
 */
export class PgStateStore implements StateStore {
  constructor(
    private readonly pool: pg.Pool,
    /** this replica's lease owner id (LeaseManager.owner) */
    readonly owner: string,
  ) {}

  async load<T>(connector: string, content: ContentType, check: (v: unknown) => v is T): Promise<T | undefined> {
    // the JSON text as stored: parsing it here gives the same errors as the file store
    const { rows } = await this.pool.query<{ cursor: string | null }>('SELECT cursor::text AS cursor FROM defender_fluent_tasks WHERE connector = $1 AND content = $2', [connector, content]);
    const text = rows[0]?.cursor;
    return text == null ? undefined : parseCursor(text, where(connector, content), connector, content, check);
  }

  assertNotAhead(connector: string, content: ContentType, times: Record<string, string | undefined>, now: number): void {
    assertCursorNotAhead(where(connector, content), connector, content, times, now);
  }

  async save(connector: string, content: ContentType, cursor: unknown): Promise<void> {
    await this.fencedUpdate(connector, content, 'cursor = $4::json', [JSON.stringify(cursor)]);
  }

  journal(connector: string, content: ContentType): WindowJournalStore {
    const key = [connector, content];
    return {
      start: (keys) =>
        this.fenced(connector, content, async (c) => {
          await c.query('DELETE FROM defender_fluent_journal WHERE connector = $1 AND content = $2', key);
          if (keys.length) await c.query('INSERT INTO defender_fluent_journal (connector, content, keys) VALUES ($1, $2, $3)', [...key, keys.join('\n')]);
        }),
      append: async (keys) => {
        if (!keys.length) return;
        await this.fenced(connector, content, (c) => c.query('INSERT INTO defender_fluent_journal (connector, content, keys) VALUES ($1, $2, $3)', [...key, keys.join('\n')]));
      },
      load: async () => {
        const { rows } = await this.pool.query<{ keys: string }>('SELECT keys FROM defender_fluent_journal WHERE connector = $1 AND content = $2 ORDER BY seq', key);
        return rows.flatMap((r) => r.keys.split('\n'));
      },
      remove: () => this.fenced(connector, content, (c) => c.query('DELETE FROM defender_fluent_journal WHERE connector = $1 AND content = $2', key)),
    };
  }

  async loadBudget(connector: string): Promise<{ text?: string; where: string }> {
    const { rows } = await this.pool.query<{ budget: string | null }>("SELECT budget FROM defender_fluent_tasks WHERE connector = $1 AND content = 'hunting'", [connector]);
    return { ...(rows[0]?.budget != null ? { text: rows[0].budget } : {}), where: `${where(connector, 'hunting')}, column budget` };
  }

  async saveBudget(connector: string, text: string): Promise<void> {
    await this.fencedUpdate(connector, 'hunting', 'budget = $4', [text]);
  }

  async loadDigests(connector: string): Promise<Buffer | undefined> {
    const { rows } = await this.pool.query<{ digests: Buffer | null }>("SELECT digests FROM defender_fluent_tasks WHERE connector = $1 AND content = 'host'", [connector]);
    return rows[0]?.digests ?? undefined;
  }

  async saveDigests(connector: string, table: Buffer): Promise<void> {
    await this.fencedUpdate(connector, 'host', 'digests = $4', [table]);
  }

  /**
   * An operator's reset (run --reset-cursor). The task's lease goes with its cursor: the replica
   * holding it loses it at its next renewal (its poll is stopped) and every fenced write it still
   * makes is refused, so it cannot write the old cursor (or the host task's inventory) back; whoever
   * claims the task next starts from the lookback. Waits for a commit under way (the row's lock).
   */
  async reset(connector: string, content?: ContentType): Promise<string[]> {
    const types = content ? [content] : [...contentTypes];
    const removed: string[] = [];
    await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ content: ContentType; had: boolean }>('SELECT content, (cursor IS NOT NULL OR digests IS NOT NULL) AS had FROM defender_fluent_tasks WHERE connector = $1 AND content = ANY($2) FOR UPDATE', [connector, types]);
      await c.query('UPDATE defender_fluent_tasks SET cursor = NULL, digests = NULL, owner = NULL, lease_until = NULL WHERE connector = $1 AND content = ANY($2)', [connector, types]);
      await c.query('DELETE FROM defender_fluent_journal WHERE connector = $1 AND content = ANY($2)', [connector, types]);
      for (const r of rows) if (r.had) removed.push(where(connector, r.content));
    });
    return removed;
  }

  /** One UPDATE of the task's row, only while this replica holds its lease. */
  private async fencedUpdate(connector: string, content: ContentType, set: string, values: unknown[]): Promise<void> {
    const r = await this.pool.query(`UPDATE defender_fluent_tasks SET ${set} WHERE connector = $1 AND content = $2 AND owner = $3 AND lease_until > clock_timestamp()`, [connector, content, this.owner, ...values]);
    if (r.rowCount !== 1) throw new LeaseLostError(connector, content);
  }

  /**
   * Writes to other tables under the task row's lock, taken only while the lease is held: a replica
   * taking the task over updates that row, so it waits for this transaction and then sees its work.
   */
  private fenced(connector: string, content: ContentType, write: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
    return fencedTransaction(this.pool, this.owner, connector, content, write);
  }
}

/** One transaction under the task row's lock, taken only while `owner` holds the task's lease (else a LeaseLostError, nothing written). */
export async function fencedTransaction(pool: pg.Pool, owner: string, connector: string, content: ContentType, write: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
  await inTransaction(pool, async (c) => {
    const held = await c.query('SELECT 1 FROM defender_fluent_tasks WHERE connector = $1 AND content = $2 AND owner = $3 AND lease_until > clock_timestamp() FOR NO KEY UPDATE', [connector, content, owner]);
    if (held.rowCount !== 1) throw new LeaseLostError(connector, content);
    await write(c);
  });
}
