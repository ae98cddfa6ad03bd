import { formatProblem, type Problem } from '../schema-check.js';
import { checkConfigText } from './load.js';
import { readFileSync } from 'node:fs';
import { reportProblems } from './report.js';
import { logFilterFieldProblems, transformsDir, validateTransforms } from '../transform/transforms.js';
import { loadHuntingQueries } from '../collect/hunting-queries.js';
import { huntingDir } from '../paths.js';

/** `defender-fluent validate`: every problem at once; exit 0 when valid, 2 when not. */
export async function validateCommand(opts: { config?: string; transforms?: string }, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  let checked: ReturnType<typeof checkConfigText> | undefined;
  if (opts.config) {
    let text: string | undefined;
    try {
      text = readFileSync(opts.config, 'utf8');
    } catch (e) {
      problems.push({ file: opts.config, pointer: '', message: `cannot read config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
    }
    if (text !== undefined) {
      checked = checkConfigText(opts.config, text);
      problems.push(...checked.problems);
      warnings.push(...checked.warnings);
    }
  }
  const dir = opts.transforms ?? transformsDir;
  const transformProblems = validateTransforms(dir);
  problems.push(...transformProblems);
  if (opts.config && checked?.config && !transformProblems.length) problems.push(...logFilterFieldProblems(opts.config, checked.config.connectors, dir));
  // the hunting queries of every connector that runs them (the packaged ones without a config)
  const huntingDirs = checked?.config ? checked.config.connectors.filter((c) => c.contentTypes.includes('hunting')).map((c) => c.huntingDir) : opts.config ? [] : [huntingDir];
  for (const d of new Set(huntingDirs)) problems.push(...loadHuntingQueries(d).problems);
  for (const w of warnings) err.write(`warning: ${formatProblem(w)}\n`);
  if (problems.length) {
    reportProblems(problems, err);
    return 2;
  }
  out.write(`valid: ${opts.config ? `${opts.config} and ` : ''}the transforms in ${dir}\n`);
  return 0;
}
