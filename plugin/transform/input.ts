// Reads raw Defender API JSON the way detection engineers have it at hand: a {"value":[...]} page,
// a bare array, a single entity, or NDJSON (one entity or page per line).
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

function entitiesOf(v: unknown, where: string): Record<string, unknown>[] {
  if (Array.isArray(v)) {
    return v.map((x, i) => {
      if (!x || typeof x !== 'object' || Array.isArray(x)) throw new InputError(`${where}: item ${i} is not a JSON object`);
      return x as Record<string, unknown>;
    });
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.value) && ('@odata.context' in o || Object.keys(o).every((k) => k === 'value' || k.startsWith('@odata.')))) return entitiesOf(o.value, where);
    return [o];
  }
  throw new InputError(`${where}: expected a JSON object, an array of objects or a {"value": [...]} page`);
}

/** Entities in text; `name` (a file name) prefixes error messages. Throws InputError. */
export function readEntities(text: string, name: string): Record<string, unknown>[] {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return [];
  try {
    return entitiesOf(JSON.parse(trimmed), name);
  } catch (e) {
    if (e instanceof InputError) throw e;
    const lines = trimmed.split(/\r?\n/);
    if (lines.length < 2) throw new InputError(`${name}: invalid JSON: ${(e as Error).message}`);
  }
  const out: Record<string, unknown>[] = [];
  trimmed.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new InputError(`${name}:${i + 1}: invalid JSON (neither one JSON document nor NDJSON): ${(err as Error).message}`);
    }
    out.push(...entitiesOf(v, `${name}:${i + 1}`));
  });
  return out;
}
