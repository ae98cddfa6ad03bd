import assert from 'node:assert/strict';
import { MalformedPageError, PageSplitter } from '../plugin/defender/page-stream.js';

/** Feeds `bytes` in chunks of `size`; returns every item and the splitter. end() is called. */
function split(bytes: Buffer, size: number): { items: unknown[]; splitter: PageSplitter } {
  const splitter = new PageSplitter();
  const items: unknown[] = [];
  for (let i = 0; i < bytes.length; i += size) items.push(...splitter.push(bytes.subarray(i, i + size)));
  splitter.end();
  return { items, splitter };
}

// Items chosen to put every awkward byte at some chunk edge as the chunk size varies.
const trickyItems: unknown[] = [
  { id: 'da637', title: 'He said "hi" \\ and left', path: 'C:\\Windows\\System32\\', empty: '' },
  { brackets: '}]{[,:"', nested: { a: [1, [2, [3, { b: '],}' }]]], c: null }, n: -1.5e-3 },
  { text: 'Ünïcödé – 日本語 – 🛡️ emoji', ends: '\\' },
  { evidence: [], tags: ['a', 'b\\"c'], deep: [[[[]]]], obj: {} },
  'a bare string item, with "quotes", [brackets] and {braces}',
  'a bare string item ending in a backslash \\',
  '\\"\\\\"',
  42,
  true,
  null,
  -0.25,
  [1, 'two', { three: 3 }],
  { last: 'backslash at the end\\\\', quote: '\\"' },
  // escaped quotes and backslash runs of every parity in keys and values below the item level
  { 'k\\"ey': { 'x"\\': '\\\\\\', y: ['\\\\"', '"\\\\\\"'] } },
];
const context = 'https://api.security.microsoft.com/api/$metadata#Alerts';
const nextLink = 'https://api.security.microsoft.com/api/alerts?$top=2&$skip=2&$filter=title eq \'a "b" \\ c \\\\\'';

/** The page as the API would write it, with whitespace around the tokens as a pretty printer would. */
function page(opts: { items: unknown[]; nextLinkFirst?: boolean; withNextLink?: boolean; extra?: Record<string, unknown> }): Buffer {
  const parts: string[] = [`"@odata.context" : ${JSON.stringify(context)}`];
  const link = `"@odata.nextLink":${JSON.stringify(nextLink)}`;
  if (opts.withNextLink !== false && opts.nextLinkFirst) parts.push(link);
  parts.push(`"value": [\n  ${opts.items.map((i) => JSON.stringify(i, null, 1)).join(' ,\n  ')}\n ]`);
  if (opts.withNextLink !== false && !opts.nextLinkFirst) parts.push(link);
  for (const [k, v] of Object.entries(opts.extra ?? {})) parts.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return Buffer.from(`{\n ${parts.join(',\n ')}\n}\n`, 'utf8');
}

describe('PageSplitter', () => {
  for (const nextLinkFirst of [false, true]) {
    it(`splits items and keeps @odata.* meta at every chunk size (nextLink ${nextLinkFirst ? 'before' : 'after'} value)`, () => {
      const bytes = page({ items: trickyItems, nextLinkFirst, extra: { '@odata.count': 11 } });
      for (let size = 1; size <= bytes.length; size++) {
        const { items, splitter } = split(bytes, size);
        assert.deepEqual(items, trickyItems, `chunk size ${size}`);
        assert.deepEqual(splitter.meta, { '@odata.context': context, '@odata.nextLink': nextLink, '@odata.count': 11 }, `chunk size ${size}`);
        assert.equal(splitter.count, trickyItems.length);
        assert.equal(splitter.bytes, bytes.length);
      }
    });
  }

  it('splits a multibyte character across chunks without corrupting it', () => {
    const bytes = page({ items: [{ s: '🛡️日本' }, { s: 'é' }], withNextLink: false });
    // 🛡 is 4 bytes: every size cuts it somewhere for some offset
    for (let size = 1; size <= 7; size++) {
      assert.deepEqual(split(bytes, size).items, [{ s: '🛡️日本' }, { s: 'é' }], `chunk size ${size}`);
    }
  });

  it('a page without nextLink has only @odata.context in meta', () => {
    const { items, splitter } = split(page({ items: [{ id: 1 }], withNextLink: false }), 5);
    assert.deepEqual(items, [{ id: 1 }]);
    assert.deepEqual(splitter.meta, { '@odata.context': context });
  });

  it('an empty value array yields no items and still ends cleanly', () => {
    for (const text of ['{"value":[]}', '{ "@odata.context": "x", "value" : [ ] }', `{"value":[\n]}`]) {
      for (let size = 1; size <= text.length; size++) {
        const { items, splitter } = split(Buffer.from(text), size);
        assert.deepEqual(items, [], `${text} / ${size}`);
        assert.equal(splitter.count, 0);
      }
    }
  });

  it('ignores non-@odata members, including ones holding arrays and objects', () => {
    const text = '{"other":{"value":[9,9]},"list":[1,{"value":[8]}],"value":[{"id":"a"}],"n":3}';
    for (let size = 1; size <= text.length; size++) {
      const { items, splitter } = split(Buffer.from(text), size);
      assert.deepEqual(items, [{ id: 'a' }], `chunk size ${size}`);
      assert.deepEqual(splitter.meta, {});
    }
  });

  it('a page cut short anywhere makes end() throw', () => {
    const bytes = page({ items: trickyItems.slice(0, 4) });
    // every cut point strictly inside the page (the trailing newline after "}" is not part of the JSON)
    const closing = bytes.lastIndexOf('}');
    for (let cut = 0; cut <= closing; cut++) {
      const splitter = new PageSplitter();
      let threw: unknown;
      try {
        for (let i = 0; i < cut; i += 7) splitter.push(bytes.subarray(i, Math.min(i + 7, cut)));
        splitter.end();
      } catch (e) {
        threw = e;
      }
      assert.ok(threw instanceof MalformedPageError, `cut at ${cut} of ${bytes.length} was not detected`);
      if (cut > 0 && (threw as Error).message.startsWith('page truncated')) {
        assert.match((threw as Error).message, new RegExp(`^page truncated after ${cut} bytes \\(\\d+ items read\\)$`));
      }
    }
    assert.doesNotThrow(() => split(bytes.subarray(0, closing + 1), 7));
  });

  it('a malformed item throws naming its number', () => {
    const text = '{"value":[{"id":1},{"id":2},{"id":3,,},{"id":4}]}';
    for (let size = 1; size <= text.length; size++) {
      assert.throws(
        () => split(Buffer.from(text), size),
        (e: unknown) => e instanceof MalformedPageError && /^item 3 of the page is not valid JSON: /.test(e.message),
        `chunk size ${size}`,
      );
    }
  });

  it('a malformed @odata value throws naming the member', () => {
    assert.throws(() => split(Buffer.from('{"@odata.nextLink":tru,"value":[]}'), 4), /^MalformedPageError: @odata\.nextLink is not valid JSON/);
  });

  // Fails today: bytes after the closing brace (a second page, garbage) are silently ignored.
  it('data after the end of the page throws', () => {
    for (const text of ['{"value":[{"id":1}]} trailing', '{"value":[{"id":1}]}{"value":[{"id":2}]}', '{"value":[]}]']) {
      assert.throws(() => split(Buffer.from(text), 4), MalformedPageError, text);
    }
    assert.doesNotThrow(() => split(Buffer.from('{"value":[]}\r\n \t'), 4));
  });

  it('a top-level array is not a page', () => {
    assert.throws(() => split(Buffer.from('[{"id":1}]'), 3), (e: unknown) => e instanceof MalformedPageError && e.message === 'page is not a JSON object');
  });
});
