// Fluentd's configuration syntax and tag patterns, re-implemented for the tests of the example
// configs: test/shipper-configs.test.ts routes events with them, and `npm run test:fluentd` checks
// the pattern matcher against Fluentd's own.
import assert from 'node:assert/strict';

// --- Fluentd config format (the subset the example uses) ----------------------------------------

export interface Section {
  name: string;
  arg: string;
  params: Record<string, string>;
  children: Section[];
  line: number;
}

/** Parses Fluentd's config syntax: `<name arg>` … `</name>`, `key value`, `#` comments. */
export function parseFluentd(text: string, file = 'fluent.conf'): Section {
  const root: Section = { name: 'ROOT', arg: '', params: {}, children: [], line: 0 };
  const stack = [root];
  text.split('\n').forEach((raw, i) => {
    const line = stripComment(raw).trim();
    if (!line) return;
    const at = `${file}:${i + 1}`;
    const close = /^<\/([\w@]+)\s*>$/.exec(line);
    if (close) {
      const top = stack.pop();
      if (!top || top === root || top.name !== close[1]) throw new Error(`${at}: </${close[1]}> does not close <${top?.name}>`);
      return;
    }
    const open = /^<([\w@]+)(?:\s+([^>]*))?>$/.exec(line);
    if (open) {
      const section: Section = { name: open[1]!, arg: (open[2] ?? '').trim(), params: {}, children: [], line: i + 1 };
      stack.at(-1)!.children.push(section);
      stack.push(section);
      return;
    }
    const param = /^(\S+)\s+(.*)$/.exec(line) ?? /^(\S+)$/.exec(line);
    if (!param || line.startsWith('<')) throw new Error(`${at}: cannot parse "${line}"`);
    stack.at(-1)!.params[param[1]!] = unquote((param[2] ?? '').trim());
  });
  if (stack.length !== 1) throw new Error(`${file}: <${stack.at(-1)!.name}> (line ${stack.at(-1)!.line}) is never closed`);
  return root;
}

/** A `#` starts a comment at the line start or after whitespace, outside quotes (`"#{ENV[…]}"` is not one). */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(["\\])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/**
 * Fluentd's tag pattern (lib/fluent/match.rb GlobMatchPattern): `*` one tag part, `**` zero or
 * more parts (`a.**` matches `a` too), `{x,y}` alternatives, `/re/` a regexp.
 */
export function fluentdPattern(pat: string): RegExp {
  if (pat.startsWith('/') && pat.endsWith('/') && pat.length > 1) return new RegExp(`^${pat.slice(1, -1)}$`);
  const stack: string[][] = [];
  const regex = [''];
  let dot = false;
  let escape = false;
  const append = (s: string) => (regex[regex.length - 1] += s);
  const union = (parts: string[]) => `(?:${parts.join('|')})`;
  for (let i = 0; i < pat.length; ) {
    const c = pat[i]!;
    if (escape) {
      append(c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      escape = false;
      i++;
      continue;
    }
    if (pat.startsWith('**', i)) {
      if (dot) append('(?![^.])');
      dot = false;
      if (pat[i + 2] === '.') {
        append('(?:.*\\.|^)');
        i += 3;
      } else {
        append('.*');
        i += 2;
      }
      continue;
    }
    if (dot) {
      append('\\.');
      dot = false;
    }
    if (c === '\\') escape = true;
    else if (c === '.') dot = true;
    else if (c === '*') append('[^.]*');
    else if (c === '{') {
      stack.push([]);
      regex.push('');
    } else if (c === '}' && stack.length) {
      stack.at(-1)!.push(regex.pop()!);
      append(union(stack.pop()!));
    } else if (c === ',' && stack.length) {
      stack.at(-1)!.push(regex.pop()!);
      regex.push('');
    } else if (/[A-Za-z0-9_]/.test(c)) append(c);
    else append(`\\${c}`);
    i++;
  }
  while (stack.length) {
    stack.at(-1)!.push(regex.pop()!);
    append(union(stack.pop()!));
  }
  return new RegExp(`^${regex.at(-1)}$`);
}

/** `<match a b>`: any of the space-separated patterns. */
export function fluentdMatches(arg: string, tag: string): boolean {
  return arg.split(/\s+/).filter(Boolean).some((p) => fluentdPattern(p).test(tag));
}

/** A Ruby regexp literal `/…/` as a JS RegExp (the syntax the examples use is common to both). */
export function rubyRegexp(literal: string): RegExp {
  const m = /^\/(.*)\/([imx]*)$/.exec(literal);
  assert.ok(m, `not a regexp literal: ${literal}`);
  return new RegExp(m[1]!, m[2]!.replace('x', ''));
}

/** The commented block between `# --- BEGIN name ---` and `# --- END name ---`, uncommented. */
export function commentedBlock(text: string, name: string): string {
  const block = new RegExp(`# --- BEGIN ${name} ---\n([\\s\\S]*?)# --- END ${name} ---`).exec(text);
  assert.ok(block, `marked block ${name}`);
  return block[1]!.replace(/^#( |$)/gm, '');
}
