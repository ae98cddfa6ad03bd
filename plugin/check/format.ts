import type { CheckItem, CheckOutput, ConnectorCheckReport } from '../generated/check-output.js';

export const scopeNote = 'This test validates authentication and connectivity only (token, permissions, one minimal read per API); it does not collect, transform or forward any data.';

const width = 100;

function wrap(text: string, indent: number, first: number): string[] {
  const out: string[] = [];
  let line = '';
  let room = width - first;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > room) {
      out.push(line);
      line = word;
      room = width - indent;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.length ? out : [''];
}

const mark: Record<CheckItem['result'], string> = { pass: 'pass', fail: 'FAIL', warn: 'warn', skip: 'skip' };

function rows(c: CheckItem): string[] {
  const col1 = 22;
  const col2 = 6;
  const pad = ' '.repeat(2 + col1 + 1 + col2 + 1);
  const head = `  ${c.id.padEnd(col1)} ${mark[c.result].padEnd(col2)} `;
  const lines: string[] = [];
  const add = (label: string, text: string) => {
    const w = wrap(label + text, pad.length + 2, pad.length);
    lines.push(...w.map((l, i) => (i === 0 ? l : `  ${l}`)));
  };
  add('', c.detail);
  // Problems stay one per line, exactly as `validate` prints them (greppable, copyable).
  for (const p of c.problems ?? []) lines.push(p.text);
  if (c.request && c.result === 'fail') add('request: ', `${c.request.method} ${c.request.url}${c.request.status !== undefined ? ` → ${c.request.status}` : ''}`);
  if (c.defenderError) {
    const d = c.defenderError;
    add('Defender: ', [d.code && `code ${d.code}`, d.message && `message "${d.message}"`, d.target && `correlation id ${d.target}`].filter(Boolean).join(', '));
  }
  if (c.entraError?.message) add('Entra: ', c.entraError.message);
  if (c.retryAfterSeconds !== undefined) add('Retry-After: ', `${c.retryAfterSeconds} s`);
  if (c.fix) add('fix: ', c.fix);
  return lines.map((l, i) => (i === 0 ? head + l : pad + l));
}

export function formatConnector(r: ConnectorCheckReport): string {
  const failed = r.checks.filter((c) => c.result === 'fail').length;
  const title = `connector ${r.name}${r.apiEndpoint ? ` (${r.apiEndpoint})` : ''}: ${r.ok ? 'PASSED' : `FAILED (${failed} check${failed === 1 ? '' : 's'} failed)`}`;
  const lines = [title, `  ${'check'.padEnd(22)} ${'result'.padEnd(6)} detail / fix`, `  ${'-'.repeat(22)} ${'-'.repeat(6)} ${'-'.repeat(width - 31)}`];
  for (const c of r.checks) lines.push(...rows(c));
  if (r.statusCleared) lines.push('  (the connector\'s red status was cleared)');
  return lines.join('\n') + '\n';
}

export function formatProblems(o: Pick<CheckOutput, 'problems'>): string {
  if (!o.problems.length) return '';
  return `configuration problems:\n${o.problems.map((p) => `  ${p.text}`).join('\n')}\n`;
}

export function formatSummary(o: CheckOutput): string {
  const verdict = o.exitCode === 0 ? 'all checks passed' : o.exitCode === 2 ? 'the configuration is invalid (exit 2)' : 'some checks failed (exit 1)';
  return `${verdict}. ${scopeNote}\n`;
}
