// `defender-fluent test --config F [--connector NAME] [--json]`: connectivity and permission check.
import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { parse } from 'yaml';
import { checkConfigText, type Config, type ContentType } from '../config/load.js';
import type { CheckConfigProblem, CheckItem, CheckOutput, ConnectorCheckReport } from '../generated/check-output.js';
import { redact, redactValue, registerSecret } from '../log.js';
import { version } from '../paths.js';
import { formatProblem, type Problem } from '../schema-check.js';
import { StatusStore } from '../status/store.js';
import { formatConnector, formatProblems, formatSummary, scopeNote } from './format.js';
import { checkConnector } from './run.js';

export interface TestCommandOptions {
  /** path of defender.yaml */
  config: string;
  /** test only this connector (default: every connector in the file) */
  connector?: string;
  /** print one JSON document (schemas/check-output.schema.json) instead of the tables */
  json?: boolean;
  /** where the result goes (default process.stdout) */
  out?: Writable;
  /** environment for ${env:NAME} references and HTTPS_PROXY (default process.env) */
  env?: NodeJS.ProcessEnv;
}

function toCheckProblem(p: Problem): CheckConfigProblem {
  return { file: p.file, pointer: p.pointer, ...(p.line ? { line: p.line } : {}), message: p.message, text: formatProblem(p) };
}

/**
 * Secrets written literally in the file are not registered by the config loader (it registers
 * resolved ${env:}/${file:} values only); register them before anything can echo them.
 */
function registerLiteralSecrets(raw: unknown): void {
  const lit = (v: unknown) => {
    if (typeof v === 'string' && !v.includes('${')) registerSecret(v);
  };
  const doc = raw as { connectors?: { clientSecret?: unknown }[]; output?: { sharedKey?: unknown; password?: unknown }; respond?: { tokens?: { token?: unknown }[] } } | null;
  if (!doc || typeof doc !== 'object') return;
  if (Array.isArray(doc.connectors)) for (const c of doc.connectors) lit(c?.clientSecret);
  lit(doc.output?.sharedKey);
  lit(doc.output?.password);
  if (Array.isArray(doc.respond?.tokens)) for (const t of doc.respond.tokens) lit(t?.token);
}

function parseLoosely(text: string): { connectors?: { name?: unknown }[] } | null {
  try {
    return parse(text, { logLevel: 'silent' }) as { connectors?: { name?: unknown }[] } | null;
  } catch {
    return null; // checkConfigText reports the YAML error with its line
  }
}

function connectorIndex(pointer: string): number | undefined {
  const m = /^\/connectors\/(\d+)(?:\/|$)/.exec(pointer);
  return m ? Number(m[1]) : undefined;
}

/** Clears the connector's red status after a passing test (the collector's next failure sets it again). */
function clearRedStatus(config: Config, report: ConnectorCheckReport, contentTypes: readonly ContentType[]): void {
  const store = new StatusStore(config.stateDir);
  store.clearRed(report.name, contentTypes);
  store.save();
  report.statusCleared = true;
}

/** Runs the check; returns the exit code: 0 every check passed, 1 a check failed, 2 invalid config. */
export async function testCommand(opts: TestCommandOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const env = opts.env ?? process.env;
  const file = opts.config;
  const output: CheckOutput = { command: 'test', version, scope: scopeNote, configFile: file, ok: false, exitCode: 2, problems: [], connectors: [] };
  const write = (s: string) => {
    if (!opts.json) out.write(redact(s));
  };
  const finish = (code: 0 | 1 | 2): number => {
    output.exitCode = code;
    output.ok = code === 0;
    if (opts.json) out.write(JSON.stringify(redactValue(output), null, 2) + '\n');
    else {
      write(formatProblems(output));
      write(formatSummary(output));
    }
    return code;
  };

  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    output.problems.push(toCheckProblem({ file, pointer: '', message: `cannot read config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }));
    return finish(2);
  }
  const raw = parseLoosely(text);
  registerLiteralSecrets(raw);
  const rawNames = Array.isArray(raw?.connectors) ? raw.connectors.map((c, i) => (typeof c?.name === 'string' ? c.name : `#${i}`)) : [];

  const { config, problems, warnings } = checkConfigText(file, text, env);
  // Which connectors to report on: all, or the one asked for.
  const indexes = opts.connector === undefined ? rawNames.map((_, i) => i) : rawNames.flatMap((n, i) => (n === opts.connector ? [i] : []));
  if (opts.connector !== undefined && indexes.length === 0) {
    output.problems.push(
      toCheckProblem({ file, pointer: '/connectors', message: `no connector named "${opts.connector}" (known: ${rawNames.join(', ') || 'none'})` }),
    );
  }
  for (const p of problems) if (connectorIndex(p.pointer) === undefined) output.problems.push(toCheckProblem(p));

  const configItem = (i: number): CheckItem => {
    const own = problems.filter((p) => connectorIndex(p.pointer) === i).map(toCheckProblem);
    const warn = warnings.filter((p) => connectorIndex(p.pointer) === i).map(toCheckProblem);
    if (own.length) {
      return {
        id: 'config',
        title: 'configuration',
        result: 'fail',
        detail: `${own.length} problem${own.length === 1 ? '' : 's'} in /connectors/${i} (same as \`defender-fluent validate\`)`,
        fix: 'Correct the values listed above (file:line: pointer: what is expected), then run the test again.',
        configKeys: own.map((p) => p.pointer),
        problems: own,
      };
    }
    if (warn.length) return { id: 'config', title: 'configuration', result: 'warn', detail: `/connectors/${i} is valid, with ${warn.length} warning${warn.length === 1 ? '' : 's'}`, problems: warn };
    return { id: 'config', title: 'configuration', result: 'pass', detail: `/connectors/${i} is valid` };
  };

  if (!config || output.problems.length) {
    // Invalid configuration: report every problem, call nothing.
    for (const i of indexes) {
      const checks = [configItem(i)];
      checks.push({ id: 'token', title: 'token from Entra ID', result: 'skip', detail: 'not run: the configuration has errors; nothing was called' });
      const report: ConnectorCheckReport = { name: rawNames[i]!, ok: false, checks };
      output.connectors.push(report);
      write(formatConnector(report) + '\n');
    }
    return finish(2);
  }

  write(`defender-fluent test: ${scopeNote}\n\n`);
  for (const i of indexes) {
    const c = config.connectors[i]!;
    const respondActions = [...new Set((config.respond?.tokens ?? []).filter((t) => t.connectors.includes('*') || t.connectors.includes(c.name)).flatMap((t) => t.actions ?? []))];
    const report = await checkConnector(c, { stateDir: config.stateDir, pointer: `/connectors/${i}`, env, respondActions }, [configItem(i)]);
    if (report.ok) {
      try {
        clearRedStatus(config, report, c.contentTypes);
      } catch (e) {
        report.checks.push({
          id: 'status',
          title: 'clear red status',
          result: 'warn',
          detail: `the checks passed but ${config.stateDir}/status.json could not be updated: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
          fix: 'Check that stateDir is writable by this user.',
          configKeys: ['/stateDir'],
        });
      }
    }
    output.connectors.push(report);
    write(formatConnector(redactValue(report)) + '\n');
  }
  return finish(output.connectors.every((r) => r.ok) ? 0 : 1);
}
