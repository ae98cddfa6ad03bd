// The machine inventory: what the host collector last read of each machine, kept per connector so
// that alerts can carry their machine's primary IP / MAC, OS, device value, exposure, risk, tags and
// RBAC group. Data flows one way: the host collector replaces a connector's inventory after each
// complete read of the machine list; the alerts collector reads it and attaches the entry to the
// alert under `_machine` (declared in schemas/defender/alert.schema.json), which the alerts
// transform maps with ordinary rules. The fields kept are the ones that schema declares for
// `_machine`: the schema is the only list of them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { loadSchema } from '../schema-check.js';
import { itemsOf, propertiesOf, resolveRef, type JsonSchema } from '../transform/schema-nav.js';

/** The key of an alert entity under which its machine's inventory entry travels to the transform. */
export const inventoryKey = '_machine';

/** A machine as the inventory keeps it: the raw machine's fields the alert schema declares for `_machine`, nulls and empty values dropped. */
export type InventoryEntry = Record<string, unknown>;

/** Collects a complete read of one connector's machine list; commit() replaces the inventory with it. */
export interface InventoryWriter {
  add(machine: Record<string, unknown>): void;
  commit(): Promise<void>;
}

/** A connector's inventory as seen by one alerts poll. */
export interface InventoryReader {
  /** The entries of the machines known among `ids` (unknown ones are absent). */
  get(ids: Iterable<string>): Promise<Map<string, InventoryEntry>>;
}

/**
 * Where inventories live (a file per connector under stateDir; issue 12 adds PostgreSQL). An
 * implementation must not keep every connector's inventory in memory between polls: a tenant may
 * have 100 000 machines and a collector 1 000 connectors.
 */
export interface MachineInventory {
  writer(connector: string): InventoryWriter;
  reader(connector: string): InventoryReader;
}

let projector: ((m: Record<string, unknown>) => InventoryEntry) | undefined;

/** The inventory entry of a raw machine: only the fields declared for `_machine`, recursively. */
export function inventoryEntry(machine: Record<string, unknown>): InventoryEntry {
  if (!projector) {
    const root = loadSchema('defender/alert.schema.json') as JsonSchema;
    const node = propertiesOf(root, root)?.[inventoryKey];
    if (!node) throw new Error(`defender/alert.schema.json declares no "${inventoryKey}"`);
    projector = (m) => project(root, resolveRef(root, node), m) as InventoryEntry;
  }
  return projector(machine);
}

function project(root: JsonSchema, node: JsonSchema, v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  if (Array.isArray(v)) {
    const items = itemsOf(root, node);
    const out = v.map((x) => (items ? project(root, items, x) : x)).filter((x) => x !== undefined);
    return out.length ? out : undefined;
  }
  const props = propertiesOf(root, node);
  if (typeof v !== 'object' || !props) return v;
  const out: Record<string, unknown> = {};
  for (const [k, sub] of Object.entries(props)) {
    const x = project(root, sub, (v as Record<string, unknown>)[k]);
    if (x !== undefined) out[k] = x;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * `<stateDir>/inventory/<connector>.ndjson` (mode 0600, replaced atomically): a header line, then
 * one line per machine, `"<id>"<TAB>{entry}`. A reader loads the file on its first get (not at all
 * when a poll has no alert with a machine id), keeps each line as text and parses an entry the
 * first time an alert asks for it; it is dropped with the poll.
 */
export class FileMachineInventory implements MachineInventory {
  readonly dir: string;

  constructor(
    stateDir: string,
    private readonly onUnreadable: (file: string, error: Error) => void = () => undefined,
  ) {
    this.dir = join(stateDir, 'inventory');
  }

  file(connector: string): string {
    return join(this.dir, `${encodeURIComponent(connector)}.ndjson`);
  }

  writer(connector: string): InventoryWriter {
    const lines = new Map<string, string>();
    return {
      add: (m) => {
        if (typeof m.id !== 'string') return;
        lines.set(m.id, `${JSON.stringify(m.id)}\t${JSON.stringify(inventoryEntry(m) ?? {})}`);
      },
      commit: async () => writeFileAtomic(this.file(connector), [header, ...lines.values()].join('\n') + '\n'),
    };
  }

  reader(connector: string): InventoryReader {
    const file = this.file(connector);
    let loaded: Promise<Map<string, string>> | undefined;
    const parsed = new Map<string, InventoryEntry>();
    return {
      get: async (ids) => {
        loaded ??= this.load(file);
        const lines = await loaded;
        const out = new Map<string, InventoryEntry>();
        for (const id of ids) {
          let e = parsed.get(id);
          if (e === undefined) {
            const text = lines.get(id);
            if (text === undefined) continue;
            try {
              e = JSON.parse(text) as InventoryEntry;
            } catch (err) {
              this.onUnreadable(file, new Error(`entry of machine ${id}: ${(err as Error).message}`));
              lines.delete(id);
              continue;
            }
            parsed.set(id, e);
          }
          out.set(id, e);
        }
        return out;
      },
    };
  }

  /** id → entry text; an absent file is an empty inventory, an unreadable one too (reported: alerts are never held back by it). */
  private async load(file: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.onUnreadable(file, e as Error);
      return out;
    }
    const lines = text.split('\n');
    if (lines[0] !== header) {
      this.onUnreadable(file, new Error(`not an inventory file (first line is not ${header})`));
      return out;
    }
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const tab = line.indexOf('\t');
      if (tab < 0) continue;
      try {
        out.set(JSON.parse(line.slice(0, tab)) as string, line.slice(tab + 1));
      } catch (e) {
        this.onUnreadable(file, new Error(`line ${i + 1}: ${(e as Error).message}`));
        return new Map();
      }
    }
    return out;
  }
}

const header = '{"v":1}';

/**
 * Attaches to each alert the inventory entry of its `machineId` (under inventoryKey). An alert whose
 * machine is not in the inventory yet, or an inventory that cannot be read, leaves the alert as it
 * is: it is delivered without those fields, never held back.
 */
export async function attachMachines(reader: InventoryReader, alerts: Record<string, unknown>[], onError: (error: Error) => void): Promise<void> {
  const ids = new Set<string>();
  for (const a of alerts) if (typeof a.machineId === 'string') ids.add(a.machineId);
  if (!ids.size) return;
  let found: Map<string, InventoryEntry>;
  try {
    found = await reader.get(ids);
  } catch (e) {
    onError(e as Error);
    return;
  }
  for (const a of alerts) {
    const entry = typeof a.machineId === 'string' ? found.get(a.machineId) : undefined;
    if (entry !== undefined) a[inventoryKey] = entry;
  }
}
