// Walks the input entity and output index schemas at load time: resolves a dotted path to its
// sub-schema (or to the sibling names for a did-you-mean), and reads the JSON types a node allows.
export type JsonSchema = Record<string, unknown>;

export function resolveRef(root: JsonSchema, node: JsonSchema): JsonSchema {
  let n = node;
  for (let guard = 0; typeof n.$ref === 'string' && guard < 20; guard++) {
    const ref = n.$ref as string;
    if (!ref.startsWith('#/')) throw new Error(`only local $ref supported: ${ref}`);
    let cur: unknown = root;
    for (const seg of ref.slice(2).split('/')) cur = (cur as Record<string, unknown>)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (typeof cur !== 'object' || cur === null) throw new Error(`unresolved $ref ${ref}`);
    n = cur as JsonSchema;
  }
  return n;
}

/** JSON types a schema node allows ('integer' included in 'number' checks by the caller). */
export function typesOf(root: JsonSchema, node: JsonSchema): Set<string> {
  const n = resolveRef(root, node);
  const out = new Set<string>();
  if (typeof n.type === 'string') out.add(n.type);
  else if (Array.isArray(n.type)) for (const t of n.type) out.add(String(t));
  else if ('const' in n) out.add(jsonType(n.const));
  else if (Array.isArray(n.enum)) for (const v of n.enum) out.add(jsonType(v));
  else for (const t of ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']) out.add(t);
  return out;
}

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function propertiesOf(root: JsonSchema, node: JsonSchema): Record<string, JsonSchema> | undefined {
  const n = resolveRef(root, node);
  return typeof n.properties === 'object' && n.properties !== null ? (n.properties as Record<string, JsonSchema>) : undefined;
}

export function itemsOf(root: JsonSchema, node: JsonSchema): JsonSchema | undefined {
  const n = resolveRef(root, node);
  return typeof n.items === 'object' && n.items !== null && !Array.isArray(n.items) ? resolveRef(root, n.items as JsonSchema) : undefined;
}

export function child(root: JsonSchema, node: JsonSchema, name: string): JsonSchema | undefined {
  const props = propertiesOf(root, node);
  const p = props && Object.prototype.hasOwnProperty.call(props, name) ? props[name] : undefined;
  if (p) return resolveRef(root, p);
  return undefined;
}

/** Damerau-free Levenshtein distance, small strings only. */
function distance(a: string, b: string): number {
  const prev: number[] = [];
  for (let j = 0; j <= b.length; j++) prev.push(j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min(tmp + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

/** The closest candidate, when close enough to be a likely typo (case differences count as closest). */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (c.toLowerCase() === lower) return c;
    const d = distance(lower, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export function didYouMean(name: string, candidates: Iterable<string>): string {
  const s = suggest(name, candidates);
  return s ? `; did you mean "${s}"?` : '';
}
