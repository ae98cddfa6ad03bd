/**
 * Splits an OData page `{"@odata.context":…,"value":[…],"@odata.nextLink":…}` arriving in chunks
 * into its `value` items without ever holding the page: each item's bytes are cut out at depth 2
 * and handed to JSON.parse, and `@odata.*` members are kept. A general streaming JSON tokenizer
 * (stream-json) parses ~14 000 records/s here; cutting items and using the native parser is ~10×
 * faster, which the 200 000-record export pages need.
 */
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Number of consecutive backslashes right before `end`, not looking before `from`. */
function backslashRun(chunk: Buffer, end: number, from: number): number {
  let k = end;
  while (k > from && chunk[k - 1] === BACKSLASH) k--;
  return end - k;
}

/**
 * Index of the quote that closes the string being read from `from`, or -1 when the chunk ends
 * first. Jumps from quote to quote and looks back: a quote is escaped when an odd run of
 * backslashes precedes it. (Searching for the next backslash too cost a scan to the next path or
 * escape for every string: O(strings × distance), 20 µs per 4.6 KB alert.)
 */
function closingQuote(chunk: Buffer, from: number): number {
  for (let i = from; ; ) {
    const q = chunk.indexOf(QUOTE, i);
    if (q === -1 || backslashRun(chunk, q, i) % 2 === 0) return q;
    i = q + 1;
  }
}

/** Whether a chunk that ends inside a string (read from `from`) ends on an escaping backslash. */
const endsEscaped = (chunk: Buffer, from: number): boolean => backslashRun(chunk, chunk.length, from) % 2 === 1;

/**
 * Set on an item the page reader had to alter to pass it on (nested too deep, not an object): the
 * mapper delivers it marked with transform_error, as a record it could not map. One such item
 * must not fail a page (retried, then failed at every interval, it stopped the connector's alerts
 * for good), nor reach recursive code (mapping, JSON, msgpack) that overflows the stack on it.
 */
export const itemDefect = Symbol('itemDefect');
/** levels an item may nest (Defender alerts, with evidence, use fewer than 10) */
export const maxItemDepth = 64;

/**
 * Replaces everything nested deeper than maxItemDepth by a note, without recursion, and marks the
 * item. The levels above stay as they were (id, lastUpdateTime: dedupe keeps working).
 */
function pruneDeep(item: Record<string, unknown>): Record<string, unknown> {
  const note = `[nested deeper than ${maxItemDepth} levels: dropped]`;
  const stack: Array<[Record<string, unknown> | unknown[], number]> = [[item, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    for (const k of Object.keys(node)) {
      const v = (node as Record<string, unknown>)[k];
      if (!v || typeof v !== 'object') continue;
      if (depth >= maxItemDepth) (node as Record<string, unknown>)[k] = note;
      else stack.push([v as Record<string, unknown>, depth + 1]);
    }
  }
  (item as Record<symbol, string>)[itemDefect] = `item nested deeper than ${maxItemDepth} levels: the deeper parts were dropped`;
  return item;
}

export class MalformedPageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedPageError';
  }
}

export class PageSplitter {
  private depth = 0;
  private inString = false;
  /** the next byte is escaped (a backslash ended the previous chunk) */
  private escaped = false;
  /** collecting a depth-1 key string */
  private keyParts: Buffer[] | null = null;
  private lastKey = '';
  /** at depth 1, after ':' — the value belongs to lastKey */
  private inValueArray = false;
  private itemParts: Buffer[] = [];
  private itemStart = -1;
  private metaParts: Buffer[] | null = null;
  private metaStart = -1;
  private expectKey = false;
  private done = false;
  /** the deepest level reached inside the item being read (the item itself is at 2) */
  private deepest = 0;
  /** the page had a top-level `value` array (a page without one is malformed, not empty) */
  sawValueArray = false;
  readonly meta: Record<string, unknown> = {};
  count = 0;
  bytes = 0;

  /** Feeds one chunk; returns the items completed in it. */
  push(chunk: Buffer): unknown[] {
    const items: unknown[] = [];
    this.bytes += chunk.length;
    let i = 0;
    const n = chunk.length;
    if (this.itemStart === -2) this.itemStart = 0;
    if (this.metaStart === -2) this.metaStart = 0;
    while (i < n) {
      if (this.done) {
        // only whitespace may follow the page's closing brace
        const c = chunk[i]!;
        if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) throw new MalformedPageError(`unexpected data after the end of the page at byte ${this.bytes - n + i}`);
        i++;
        continue;
      }
      if (this.depth > 2) {
        i = this.skipNested(chunk, i, n);
        continue;
      }
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        const q = closingQuote(chunk, i);
        if (q === -1) {
          if (this.keyParts) this.keyParts.push(chunk.subarray(i));
          this.escaped = endsEscaped(chunk, i);
          i = n;
          continue;
        }
        if (this.keyParts) {
          this.keyParts.push(chunk.subarray(i, q));
          this.lastKey = Buffer.concat(this.keyParts).toString('utf8');
          this.keyParts = null;
        }
        this.inString = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i]!;
      if (c === QUOTE) {
        this.inString = true;
        if (this.depth === 1 && this.expectKey) {
          this.keyParts = [];
          this.expectKey = false;
        } else if (this.depth === 1 && this.metaStart === -1 && this.lastKey.startsWith('@odata.')) {
          this.metaStart = i;
        } else if (this.inValueArray && this.depth === 2 && this.itemStart === -1) {
          this.itemStart = i;
        }
        i++;
        continue;
      }
      switch (c) {
        case OPEN_OBJ:
        case OPEN_ARR:
          if (this.depth === 0 && c !== OPEN_OBJ) throw new MalformedPageError('page is not a JSON object');
          if (this.depth === 1 && c === OPEN_ARR && this.lastKey === 'value') this.inValueArray = this.sawValueArray = true;
          else if (this.inValueArray && this.depth === 2 && this.itemStart === -1) this.itemStart = i;
          this.depth++;
          if (this.depth > this.deepest) this.deepest = this.depth;
          if (this.depth === 1) this.expectKey = true;
          break;
        case CLOSE_OBJ:
        case CLOSE_ARR:
          if (this.inValueArray && this.depth === 2) {
            this.endItem(chunk, i, items);
            this.inValueArray = false;
          } else if (this.depth === 1) {
            this.endMeta(chunk, i);
            this.done = true;
          }
          this.depth--;
          if (this.depth < 0) throw new MalformedPageError('unbalanced brackets');
          break;
        case COMMA:
          if (this.inValueArray && this.depth === 2) this.endItem(chunk, i, items);
          else if (this.depth === 1) {
            this.endMeta(chunk, i);
            this.expectKey = true;
          }
          break;
        case COLON:
          break;
        default:
          // scalars (numbers, true/false/null) start an item or a meta value too
          if (c > 0x20) {
            if (this.inValueArray && this.depth === 2 && this.itemStart === -1) this.itemStart = i;
            else if (this.depth === 1 && this.metaStart === -1 && !this.expectKey && this.lastKey.startsWith('@odata.')) this.metaStart = i;
          }
      }
      i++;
    }
    // carry partial item / meta bytes into the next chunk
    if (this.itemStart >= 0) {
      this.itemParts.push(chunk.subarray(this.itemStart));
      this.itemStart = -2;
    }
    if (this.metaStart >= 0) {
      (this.metaParts ??= []).push(chunk.subarray(this.metaStart));
      this.metaStart = -2;
    }
    return items;
  }

  /**
   * Inside an item (depth > 2) only strings and brackets matter: one tight loop over local state,
   * up to the bracket that closes the item (or the end of the chunk). Most of a page's bytes go
   * through here; the general loop above costs several times more per byte.
   */
  private skipNested(chunk: Buffer, i: number, n: number): number {
    let depth = this.depth;
    let deepest = this.deepest;
    let inString = this.inString;
    let escaped = this.escaped;
    while (i < n) {
      if (inString) {
        if (escaped) {
          escaped = false;
          i++;
        }
        const q = closingQuote(chunk, i);
        if (q === -1) {
          escaped = endsEscaped(chunk, i);
          i = n;
          break;
        }
        inString = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i++]!;
      if (c === QUOTE) inString = true;
      else if (c === OPEN_OBJ || c === OPEN_ARR) {
        if (++depth > deepest) deepest = depth;
      } else if ((c === CLOSE_OBJ || c === CLOSE_ARR) && --depth === 2) break;
    }
    this.depth = depth;
    this.deepest = deepest;
    this.inString = inString;
    this.escaped = escaped;
    return i;
  }

  private endItem(chunk: Buffer, end: number, items: unknown[]): void {
    if (this.itemStart === -1) {
      if (this.itemParts.length === 0) return; // empty array or stray comma
    }
    const start = this.itemStart < 0 ? 0 : this.itemStart;
    // An item within one chunk is decoded in place (no Buffer view allocated per item); one that
    // spans chunks is joined first, as a multi-byte character may be split between them.
    const text = this.itemParts.length ? Buffer.concat([...this.itemParts, chunk.subarray(start, end)]).toString('utf8') : chunk.toString('utf8', start, end);
    this.itemParts = [];
    this.itemStart = -1;
    const deep = this.deepest - 2 > maxItemDepth;
    this.deepest = 0;
    let item: unknown;
    try {
      item = JSON.parse(text);
    } catch (e) {
      throw new MalformedPageError(`item ${this.count + 1} of the page is not valid JSON: ${(e as Error).message}`);
    }
    items.push(deep && item && typeof item === 'object' ? pruneDeep(item as Record<string, unknown>) : item);
    this.count++;
  }

  private endMeta(chunk: Buffer, end: number): void {
    if (this.metaStart === -1 && !this.metaParts) return;
    const start = this.metaStart < 0 ? 0 : this.metaStart;
    const bytes = Buffer.concat([...(this.metaParts ?? []), chunk.subarray(start, end)]);
    this.metaParts = null;
    this.metaStart = -1;
    try {
      this.meta[this.lastKey] = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new MalformedPageError(`${this.lastKey} is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** Call after the last chunk: throws when the page was cut short. */
  end(): void {
    if (!this.done || this.inString || this.depth !== 0) {
      throw new MalformedPageError(`page truncated after ${this.bytes} bytes (${this.count} items read)`);
    }
  }
}
