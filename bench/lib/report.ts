// One row per figure: what was measured, its value, its target and whether it was met.
export interface Row {
  bench: string;
  metric: string;
  value: string;
  target: string;
  /** undefined: informational (no target) */
  met?: boolean;
}

export interface BenchOutput {
  rows: Row[];
  /** how it was measured, details, hot spots: printed under the table */
  notes: string[];
}

export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function table(rows: Row[]): string {
  const head = ['benchmark', 'metric', 'value', 'target', 'met'];
  const cells = rows.map((r) => [r.bench, r.metric, r.value, r.target || '—', r.met === undefined ? '—' : r.met ? 'yes' : '**NO**']);
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...cells.map((c) => `| ${c.join(' | ')} |`)].join('\n');
}
