// Microsoft Graph advanced hunting (POST /v1.0/security/runHuntingQuery) over one seeded table,
// DeviceProcessEvents, with the slice of KQL scheduled queries use: `Table | where … | project … |
// order by … | take N`. A row exists every rowEveryMs, computed from its index (the table has no
// end and costs no memory); Timespan and the documented limits (30 days of data, 100 000 rows)
// apply. Anything else is a 400, as Graph answers a query it cannot parse.
import { readBody, sendError, sendJson, type Exchange } from './http-util.js';
import { splitOutside } from './odata.js';
import { Rng } from './prng.js';
import type { World } from './store.js';
import { iso7 } from './time.js';

export const huntingTable = 'DeviceProcessEvents';
const DAY = 24 * 3600_000;
const MAX_ROWS = 100_000;

const columns: Array<[string, string]> = [
  ['Timestamp', 'DateTime'],
  ['DeviceId', 'String'],
  ['DeviceName', 'String'],
  ['AccountName', 'String'],
  ['FileName', 'String'],
  ['ProcessCommandLine', 'String'],
  ['InitiatingProcessFileName', 'String'],
  ['ReportId', 'Int64'],
];

const programs: Array<[string, string, string]> = [
  ['powershell.exe', 'powershell.exe -NoProfile -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=', 'cmd.exe'],
  ['powershell.exe', 'powershell.exe -File C:\\Scripts\\inventory.ps1', 'svchost.exe'],
  ['cmd.exe', 'cmd.exe /c whoami /all', 'explorer.exe'],
  ['rundll32.exe', 'rundll32.exe C:\\Users\\Public\\x.dll,Start', 'winword.exe'],
  ['notepad.exe', 'notepad.exe C:\\notes.txt', 'explorer.exe'],
];

export class HuntingTable {
  constructor(
    private readonly world: World,
    private readonly seed: number,
    readonly rowEveryMs: number,
  ) {}

  /** The rows with from ≤ Timestamp < to, oldest first. */
  rows(fromMs: number, toMs: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    if (!this.world.machines.length) return out;
    for (let i = Math.ceil(fromMs / this.rowEveryMs); i * this.rowEveryMs < toMs; i++) {
      const rng = Rng.for(this.seed, 'hunting', i);
      const m = this.world.machines[rng.int(0, this.world.machines.length - 1)]!;
      const [file, cmd, parent] = programs[rng.int(0, programs.length - 1)]!;
      out.push({
        Timestamp: iso7(i * this.rowEveryMs),
        DeviceId: m.base.id,
        DeviceName: m.base.computerDnsName,
        AccountName: rng.chance(0.3) ? 'system' : `user${rng.int(1, 40)}`,
        FileName: file,
        ProcessCommandLine: cmd,
        InitiatingProcessFileName: parent,
        ReportId: i,
      });
    }
    return out;
  }
}

class KqlError extends Error {}

type Row = Record<string, unknown>;

function literal(raw: string): string | number {
  const s = raw.trim();
  let m: RegExpExecArray | null;
  if ((m = /^"((?:[^"\\]|\\.)*)"$/.exec(s)) || (m = /^'((?:[^'\\]|\\.)*)'$/.exec(s))) return m[1]!.replace(/\\(.)/g, '$1');
  if ((m = /^datetime\(\s*([^)]+?)\s*\)$/i.exec(s))) {
    const t = Date.parse(m[1]!);
    if (Number.isNaN(t)) throw new KqlError(`datetime(${m[1]}) is not a date`);
    return t;
  }
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  throw new KqlError(`cannot read the value ${s} (the emulator knows "strings", numbers and datetime(…))`);
}

const compare: Record<string, (a: unknown, b: string | number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '=~': (a, b) => String(a).toLowerCase() === String(b).toLowerCase(),
  '!~': (a, b) => String(a).toLowerCase() !== String(b).toLowerCase(),
  has: (a, b) => new RegExp(`(^|[^A-Za-z0-9_])${String(b).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_])`, 'i').test(String(a)),
  contains: (a, b) => String(a).toLowerCase().includes(String(b).toLowerCase()),
  startswith: (a, b) => String(a).toLowerCase().startsWith(String(b).toLowerCase()),
  '>=': (a, b) => num(a) >= (b as number),
  '>': (a, b) => num(a) > (b as number),
  '<=': (a, b) => num(a) <= (b as number),
  '<': (a, b) => num(a) < (b as number),
};

function num(v: unknown): number {
  return typeof v === 'string' ? Date.parse(v) : Number(v);
}

function whereClause(text: string, known: Set<string>): (r: Row) => boolean {
  const tests = splitOutside(text, /^\s+and\s+/i).map((c) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|=~|!~|>=|<=|>|<|\bhas\b|\bcontains\b|\bstartswith\b)\s*(.+)$/i.exec(c);
    if (!m) throw new KqlError(`'where' operator: the emulator cannot read the condition "${c}"`);
    const [, column, op, value] = m as unknown as [string, string, string, string];
    if (!known.has(column)) throw new KqlError(`'where' operator: Failed to resolve column or scalar expression named '${column}'`);
    const v = literal(value);
    const f = compare[op.toLowerCase()]!;
    return (r: Row) => f(r[column], v);
  });
  return (r) => tests.every((t) => t(r));
}

/** Runs the query over the given rows; returns the result's columns and rows. */
export function runKql(query: string, source: (from: number, to: number) => Row[], range: { from: number; to: number }): { schema: Array<[string, string]>; rows: Row[] } {
  const stages = splitOutside(query.replace(/\/\/[^\n]*/g, ''), /^\|/);
  const table = stages.shift()!.trim();
  if (table !== huntingTable) throw new KqlError(`Failed to resolve table or column expression named '${table}' (the emulator has ${huntingTable})`);
  let schema = columns;
  let rows = source(range.from, range.to);
  for (const stage of stages) {
    const m = /^([a-z-]+)(?:\s+by)?\s+([\s\S]*)$/i.exec(stage);
    if (!m) throw new KqlError(`cannot read the stage "${stage}"`);
    const [, op, rest] = m as unknown as [string, string, string];
    const known = new Set(schema.map(([c]) => c));
    switch (op.toLowerCase()) {
      case 'where':
        rows = rows.filter(whereClause(rest, known));
        break;
      case 'project': {
        const keep = splitOutside(rest, /^,/);
        for (const c of keep) if (!known.has(c)) throw new KqlError(`'project' operator: Failed to resolve scalar expression named '${c}'`);
        schema = keep.map((c) => schema.find(([n]) => n === c)!);
        rows = rows.map((r) => Object.fromEntries(keep.map((c) => [c, r[c]])));
        break;
      }
      case 'take':
      case 'limit':
        rows = rows.slice(0, Number(literal(rest)));
        break;
      case 'order':
      case 'sort': {
        const [column, dir] = rest.trim().split(/\s+/) as [string, string | undefined];
        if (!known.has(column)) throw new KqlError(`'order' operator: Failed to resolve column named '${column}'`);
        const sign = (dir ?? 'desc').toLowerCase() === 'asc' ? 1 : -1;
        rows = [...rows].sort((a, b) => (num(a[column]) > num(b[column]) ? sign : num(a[column]) < num(b[column]) ? -sign : 0));
        break;
      }
      default:
        throw new KqlError(`the emulator does not run the '${op}' operator (it knows where, project, order by, take)`);
    }
  }
  return { schema, rows: rows.slice(0, MAX_ROWS) };
}

/** Timespan: `start/end`, `start/duration`, `duration/end`, `duration` (back from now) or `start` (to now); default 30 days. */
export function parseTimespan(text: string | undefined, nowMs: number): { from: number; to: number } {
  const duration = (d: string) => {
    const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(d);
    if (!m || d.length < 3) return undefined;
    return (Number(m[1] ?? 0) * 24 * 3600 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0)) * 1000;
  };
  if (!text) return { from: nowMs - 30 * DAY, to: nowMs };
  const [a, b] = text.split('/');
  const ta = Date.parse(a!);
  const da = duration(a!);
  if (b === undefined) {
    if (da !== undefined) return { from: nowMs - da, to: nowMs };
    if (!Number.isNaN(ta)) return { from: ta, to: nowMs };
  } else {
    const tb = Date.parse(b);
    const db = duration(b);
    if (!Number.isNaN(ta) && !Number.isNaN(tb)) return { from: ta, to: tb };
    if (!Number.isNaN(ta) && db !== undefined) return { from: ta, to: ta + db };
    if (da !== undefined && !Number.isNaN(tb)) return { from: tb - da, to: tb };
  }
  throw new KqlError(`Timespan "${text}" is not an ISO 8601 interval`);
}

/** POST /v1.0/security/runHuntingQuery */
export async function runHuntingQuery(x: Exchange, table: HuntingTable, origin: string, nowMs: number, onServed: (rows: number) => void): Promise<boolean> {
  let body: { Query?: unknown; Timespan?: unknown };
  try {
    body = JSON.parse(await readBody(x.req)) as typeof body;
  } catch {
    return sendError(x, 400, 'BadRequest', 'Request body must be a JSON object');
  }
  if (typeof body?.Query !== 'string' || !body.Query.trim()) return sendError(x, 400, 'BadRequest', "The parameter 'Query' is missing or empty");
  let result;
  try {
    const span = parseTimespan(typeof body.Timespan === 'string' ? body.Timespan : undefined, nowMs);
    // advanced hunting holds 30 days of data, and nothing from the future
    const range = { from: Math.max(span.from, nowMs - 30 * DAY), to: Math.min(span.to, nowMs) };
    result = runKql(body.Query, (from, to) => table.rows(from, to), range);
  } catch (e) {
    if (e instanceof KqlError) return sendError(x, 400, 'BadRequest', `Query could not be parsed: ${e.message}`);
    throw e;
  }
  const ok = await sendJson(x, 200, {
    '@odata.context': `${origin}/v1.0/$metadata#microsoft.graph.security.huntingQueryResults`,
    schema: result.schema.map(([name, type]) => ({ name, type })),
    results: result.rows,
  });
  if (ok) onServed(result.rows.length);
  return ok;
}
