import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { CursorStore } from '../collect/cursor-store.js';
import { FileMachineInventory, type MachineInventory } from '../collect/inventory.js';
import { LeaseManager } from './leases.js';
import { PgMachineInventory } from './pg-inventory.js';
import { openPool, PgStateStore } from './postgres.js';
import type { StatusStore } from '../status/store.js';
import { PgStatusMirror } from './status-mirror.js';
import type { StateStore } from './store.js';

export interface OpenedState {
  store: StateStore;
  /** PostgreSQL only: this replica's share of the tasks */
  leases?: LeaseManager;
  /** the machine inventories: files under stateDir, or in PostgreSQL shared with the other replicas */
  inventory: MachineInventory;
  /** PostgreSQL only: status shared with the other replicas */
  statusMirror?: (status: StatusStore) => PgStatusMirror;
  close(): Promise<void>;
}

/** The configured state store; with PostgreSQL, the leases of the collected tasks too (started by startLeases()). */
export async function openState(config: Config, logger: Logger): Promise<OpenedState> {
  const state = config.state;
  const unreadable = (where: string, err: Error) => logger.warn({ where, err }, 'machine inventory unreadable: alerts are delivered without their machine fields until the next host poll rewrites it');
  if (state.type === 'file') return { store: new CursorStore(config.stateDir), inventory: new FileMachineInventory(config.stateDir, unreadable), close: async () => undefined };
  const pool = await openPool(state.url, state.poolSize);
  const tasks = config.connectors.filter((c) => c.functions.includes('collect')).flatMap((c) => c.contentTypes.map((content) => ({ connector: c.name, content })));
  const leases = new LeaseManager(pool, tasks, { leaseMs: state.leaseSeconds * 1000, logger });
  return {
    store: new PgStateStore(pool, leases.owner),
    leases,
    inventory: new PgMachineInventory(pool, leases.owner, unreadable),
    statusMirror: (status) => new PgStatusMirror(pool, status, logger),
    close: async () => {
      await leases.stop();
      await pool.end();
    },
  };
}
