// The machine inventory: what the host collector last read of each machine, kept per connector so
// that alerts can carry their machine's primary IP / MAC, OS, device value, exposure, risk, tags and
// RBAC group. Data flows one way: the host collector replaces a connector's inventory after each
// complete read of the machine list; the alerts collector reads it and attaches the entry to the
// alert under `_machine` (declared in schemas/defender/alert.schema.json), which the alerts
// transform maps with ordinary rules. The fields kept are the ones that schema declares for
// `_machine`: the schema is the only list of them.
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AtomicWriter } from '../atomic-file.js';
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
 * Where inventories live (a file per connector under stateDir, or PostgreSQL for replicas). An
 * implementation must not keep every connector's inventory in memory between polls: a tenant may
 * have 100 000 machines and a collector 1 000 connectors.
 */
export interface MachineInventory {
  writer(connector: string): InventoryWriter;
  reader(connector: string): InventoryReader;
  /** Forgets a connector's inventory (an operator's reset of its host content); says where one was removed. */
  reset(connector: string): Promise<string[]>;
}

/** How an entry is packed: an object as the array of its declared fields' values (in schema order), a list of objects as a list of those arrays. */
type Shape = { keys: string[]; subs: (Shape | undefined)[] } | { item: Shape };

function shapeOf(root: JsonSchema, node: JsonSchema): Shape | undefined {
  const props = propertiesOf(root, node);
  if (props) {
    const keys = Object.keys(props);
    return { keys, subs: keys.map((k) => shapeOf(root, resolveRef(root, props[k] as JsonSchema))) };
  }
  const items = itemsOf(root, node);
  const item = items && shapeOf(root, items);
  return item && { item };
}

let declared: { shape: Shape; header: string } | undefined;
/** The shape of `_machine` in the alert schema, and the file header naming it (a file packed for other fields is not read). */
function machineShape(): { shape: Shape; header: string } {
  if (!declared) {
    const root = loadSchema('defender/alert.schema.json') as JsonSchema;
    const node = propertiesOf(root, root)?.[inventoryKey];
    const shape = node && shapeOf(root, resolveRef(root, node));
    if (!shape || !('keys' in shape)) throw new Error(`defender/alert.schema.json declares no object "${inventoryKey}"`);
    declared = { shape, header: JSON.stringify({ v: 1, fields: shape }) };
  }
  return declared;
}

const empty = (v: unknown) => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);

function pack(shape: Shape | undefined, v: unknown): unknown {
  if (empty(v)) return null;
  if (!shape) return v;
  if ('item' in shape) {
    if (!Array.isArray(v)) return null;
    const out = v.map((x) => pack(shape.item, x)).filter((x) => x !== null);
    return out.length ? out : null;
  }
  if (typeof v !== 'object' || Array.isArray(v)) return null;
  const out = shape.keys.map((k, i) => pack(shape.subs[i], (v as Record<string, unknown>)[k]));
  while (out.length && out[out.length - 1] === null) out.pop();
  return out.length ? out : null;
}

function unpack(shape: Shape | undefined, v: unknown): unknown {
  if (!shape || !Array.isArray(v)) return v;
  if ('item' in shape) return v.map((x) => unpack(shape.item, x));
  const out: Record<string, unknown> = {};
  shape.keys.forEach((k, i) => {
    const x = v[i];
    if (x !== null && x !== undefined) out[k] = unpack(shape.subs[i], x);
  });
  return out;
}

/** Names the packed fields: an inventory stored with another header was packed for other fields and is not read (the next host poll rewrites it). */
export const inventoryHeader = (): string => machineShape().header;

/**
 * A machine as an inventory stores it: its id and its entry packed as JSON text (the declared
 * fields' values in schema order, no field names: 100 000 machines take about a third of the
 * space); undefined for a machine without a usable id (ids are 40 hex digits; one that would break
 * the file's line format is not kept).
 */
export function packMachine(m: Record<string, unknown>): [id: string, entry: string] | undefined {
  if (typeof m.id !== 'string' || !m.id || /[\t\n\r]/.test(m.id)) return undefined;
  return [m.id, JSON.stringify(pack(machineShape().shape, m) ?? [])];
}

/** The entry packMachine stored (throws on text that is not JSON). */
export const unpackEntry = (text: string): InventoryEntry => unpack(machineShape().shape, JSON.parse(text)) as InventoryEntry;

/**
 * `<stateDir>/inventory/<connector>.ndjson` (mode 0600, replaced atomically): a header naming the
 * packed fields, then one line per machine, `<id><TAB>[values]` (packMachine). A reader loads
 * the file on its first get (not at all when a poll has no alert with a machine id) and keeps it as
 * one text with an offset per machine; an entry is parsed the first time an alert asks for it. The
 * reader is dropped with the poll.
 */
export class FileMachineInventory implements MachineInventory {
  readonly dir: string;
  /** an unchanged inventory is not written again */
  private readonly files = new AtomicWriter();

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
        const packed = packMachine(m);
        if (packed) lines.set(packed[0], `${packed[0]}\t${packed[1]}`);
      },
      commit: async () => this.files.write(this.file(connector), [inventoryHeader(), ...lines.values()].join('\n') + '\n'),
    };
  }

  async reset(connector: string): Promise<string[]> {
    const file = this.file(connector);
    try {
      await unlink(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return [file];
  }

  reader(connector: string): InventoryReader {
    const file = this.file(connector);
    let loaded: Promise<{ text: string; at: Map<string, number> }> | undefined;
    const parsed = new Map<string, InventoryEntry>();
    return {
      get: async (ids) => {
        loaded ??= this.load(file);
        const { text, at } = await loaded;
        const out = new Map<string, InventoryEntry>();
        for (const id of ids) {
          let e = parsed.get(id);
          if (e === undefined) {
            const start = at.get(id);
            if (start === undefined) continue;
            try {
              e = unpackEntry(text.slice(start, text.indexOf('\n', start)));
            } catch (err) {
              this.onUnreadable(file, new Error(`entry of machine ${id}: ${(err as Error).message}`));
              at.delete(id);
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

  /** The file's text and where each machine's entry starts; an absent file is an empty inventory, an unreadable one too (reported: alerts are never held back by it). */
  private async load(file: string): Promise<{ text: string; at: Map<string, number> }> {
    const at = new Map<string, number>();
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.onUnreadable(file, e as Error);
      return { text: '', at };
    }
    let pos = text.indexOf('\n');
    if (pos < 0 || text.slice(0, pos) !== inventoryHeader()) {
      this.onUnreadable(file, new Error('not an inventory file for the fields this version keeps (the next host poll rewrites it)'));
      return { text: '', at };
    }
    if (!text.endsWith('\n')) text += '\n';
    for (pos++; pos < text.length; ) {
      const end = text.indexOf('\n', pos);
      const tab = text.indexOf('\t', pos);
      if (tab > pos && tab < end) at.set(text.slice(pos, tab), tab + 1);
      pos = end + 1;
    }
    return { text, at };
  }
}

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
