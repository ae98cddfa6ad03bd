import { formatProblem, type Problem } from '../schema-check.js';
import { ConfigError, loadConfig, type LoadedConfig } from './load.js';

/**
 * Loads the config for a command; on problems prints every one of them (file:line: pointer: what
 * was expected) to `err` and returns undefined, so the command exits 2.
 */
export function loadConfigOrReport(file: string, err: NodeJS.WritableStream = process.stderr): LoadedConfig | undefined {
  try {
    return loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    reportProblems(e.problems, err);
    return undefined;
  }
}

export function reportProblems(problems: Problem[], err: NodeJS.WritableStream = process.stderr): void {
  for (const p of problems) err.write(`error: ${formatProblem(p)}\n`);
  err.write(`${problems.length} error${problems.length === 1 ? '' : 's'}\n`);
}
