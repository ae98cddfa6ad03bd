import type pg from 'pg';
import { inventoryHeader, packMachine, unpackEntry, type InventoryEntry, type InventoryReader, type InventoryWriter, type MachineInventory } from '../collect/inventory.js';
import { fencedTransaction } from './postgres.js';

/** Rows sent per INSERT: 100 000 machines in ten statements, each well inside the query timeout. */
const batch = 10_000;

/** What an inventory is called in messages. */
const where = (connector: string) => `machine inventory of ${connector} in PostgreSQL (table defender_fluent_machines)`;

/**
 * The machine inventory in PostgreSQL, shared by replicas (the host task of a connector may run on
 * one replica and its alerts task on another): a row per connector × machine with the entry packed
 * as the file store packs it (packMachine), and per connector the header naming the packed fields.
 * A reader asks only for the machines of the alerts in hand (an index lookup per id), so an alerts poll
 * never loads a 100 000-machine inventory; the entries it read stay for the poll. The writer
 * replaces a connector's set after a complete read of the machine list, in one transaction fenced
 * by the host task's lease (a replica that lost it writes nothing), and rewrites only the rows
 * whose entry changed.
 */
export class PgMachineInventory implements MachineInventory {
  constructor(
    private readonly pool: pg.Pool,
    /** this replica's lease owner id (LeaseManager.owner) */
    private readonly owner: string,
    private readonly onUnreadable: (where: string, error: Error) => void = () => undefined,
  ) {}

  writer(connector: string): InventoryWriter {
    const entries = new Map<string, string>();
    return {
      add: (m) => {
        const packed = packMachine(m);
        if (packed) entries.set(packed[0], packed[1]);
      },
      commit: () =>
        fencedTransaction(this.pool, this.owner, connector, 'host', async (c) => {
          await c.query('INSERT INTO defender_fluent_inventory (connector, fields) VALUES ($1, $2) ON CONFLICT (connector) DO UPDATE SET fields = EXCLUDED.fields', [connector, inventoryHeader()]);
          const ids = [...entries.keys()];
          const texts = [...entries.values()];
          for (let i = 0; i < ids.length; i += batch) {
            await c.query(
              `INSERT INTO defender_fluent_machines (connector, id, entry) SELECT $1, * FROM unnest($2::text[], $3::text[])
               ON CONFLICT (connector, id) DO UPDATE SET entry = EXCLUDED.entry WHERE defender_fluent_machines.entry <> EXCLUDED.entry`,
              [connector, ids.slice(i, i + batch), texts.slice(i, i + batch)],
            );
          }
          // an anti-join (hashed), not `<> ALL($2)`, which compares each row with every id
          await c.query('DELETE FROM defender_fluent_machines m WHERE m.connector = $1 AND NOT EXISTS (SELECT 1 FROM unnest($2::text[]) AS k(id) WHERE k.id = m.id)', [connector, ids]);
        }),
    };
  }

  /** Called after the host task's cursor reset, which took that task's lease: its holder's fenced writes of the inventory are refused from then on. */
  async reset(connector: string): Promise<string[]> {
    // one statement: a reader never sees the header gone with the entries still there
    const { rows } = await this.pool.query<{ found: boolean }>(
      'WITH m AS (DELETE FROM defender_fluent_machines WHERE connector = $1 RETURNING 1), h AS (DELETE FROM defender_fluent_inventory WHERE connector = $1 RETURNING 1) SELECT EXISTS (SELECT 1 FROM m) OR EXISTS (SELECT 1 FROM h) AS found',
      [connector],
    );
    return rows[0]?.found ? [where(connector)] : [];
  }

  reader(connector: string): InventoryReader {
    let usable: Promise<boolean> | undefined;
    const parsed = new Map<string, InventoryEntry>();
    return {
      get: async (ids) => {
        usable ??= this.usable(connector);
        const out = new Map<string, InventoryEntry>();
        const missing: string[] = [];
        for (const id of ids) {
          const e = parsed.get(id);
          if (e) out.set(id, e);
          else missing.push(id);
        }
        if (!missing.length || !(await usable)) return out;
        // a join on the ids, not `id = ANY($2)`: without statistics (a table just filled) the planner reads every row of the connector for that
        const { rows } = await this.pool.query<{ id: string; entry: string }>('SELECT m.id, m.entry FROM unnest($2::text[]) AS k(id) JOIN defender_fluent_machines m ON m.connector = $1 AND m.id = k.id', [connector, missing]);
        for (const { id, entry } of rows) {
          let e: InventoryEntry;
          try {
            e = unpackEntry(entry);
          } catch (err) {
            this.onUnreadable(where(connector), new Error(`entry of machine ${id}: ${(err as Error).message}`));
            continue;
          }
          parsed.set(id, e);
          out.set(id, e);
        }
        return out;
      },
    };
  }

  /** False when the connector's inventory was packed for other fields (reported; the next host poll rewrites it); true when it fits or there is none yet. */
  private async usable(connector: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ fields: string }>('SELECT fields FROM defender_fluent_inventory WHERE connector = $1', [connector]);
    const fields = rows[0]?.fields;
    if (fields === undefined || fields === inventoryHeader()) return true;
    this.onUnreadable(where(connector), new Error('not an inventory for the fields this version keeps (the next host poll rewrites it)'));
    return false;
  }
}
