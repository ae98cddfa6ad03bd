import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { ConnectorConfig, DefenderFluentConfig, FileStateConfig, ForwardOutputConfig, PostgresStateConfig, RespondConfig, StdoutOutputConfig } from '../generated/config.js';
import type { ErrorObject } from 'ajv';
import { ajvProblems, compileSchema, pointerSegments, type Problem } from '../schema-check.js';
import { registerSecret } from '../log.js';
import { parseEndpoint } from './endpoints.js';
import { resolveReferences } from './secrets.js';
import { checkLogFilters } from './log-filters.js';
import { huntingDir } from '../paths.js';
import { pemProblem, stateDirProblem } from './local-files.js';

export type ContentType = 'alerts' | 'host' | 'vulnerabilities' | 'machineActions' | 'hunting';
export const contentTypes: readonly ContentType[] = ['alerts', 'host', 'vulnerabilities', 'machineActions', 'hunting'];

type ConnectorDefaulted =
  | 'functions'
  | 'apiEndpoint'
  | 'graphEndpoint'
  | 'authorityHost'
  | 'intervalMinutes'
  | 'lookbackHours'
  | 'contentTypes'
  | 'allowCustomEndpoint'
  | 'requestTimeoutSeconds'
  | 'pageTimeoutSeconds'
  | 'alertOverlapMinutes'
  | 'hostFullRefreshHours'
  | 'vulnerabilityBaselineDays'
  | 'vulnerabilityPageSize'
  | 'logFilters';

/** A connector after defaults and endpoint normalisation. */
export type Connector = ConnectorConfig &
  Required<Pick<ConnectorConfig, ConnectorDefaulted>> & {
    contentTypes: ContentType[];
    /** https://host[:port] of the Defender API */
    apiBaseUrl: string;
    /** https://host[:port] of the Entra authority */
    authorityUrl: string;
    /** https://host[:port] of Microsoft Graph (runHuntingQuery) */
    graphBaseUrl: string;
    /** absolute: the scheduled hunting queries (*.kql) */
    huntingDir: string;
  };

export type Output = Required<StdoutOutputConfig> | (ForwardOutputConfig & Required<Omit<ForwardOutputConfig, 'tls' | 'sharedKey' | 'username' | 'password'>>);

export type State = FileStateConfig | Required<PostgresStateConfig>;

export interface Config extends Omit<DefenderFluentConfig, 'connectors' | 'output' | 'state'> {
  /** absolute */
  stateDir: string;
  state: State;
  logLevel: NonNullable<DefenderFluentConfig['logLevel']>;
  shutdownTimeoutSeconds: number;
  statusIntervalMinutes: number;
  maxConcurrentPolls: number;
  workers: number;
  output: Output;
  connectors: Connector[];
  respond?: RespondConfig;
}

export interface LoadedConfig {
  file: string;
  config: Config;
  warnings: Problem[];
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(`${file}: ${problems.length} configuration error${problems.length === 1 ? '' : 's'}`);
    this.name = 'ConfigError';
  }
}

const validateConfig = compileSchema<DefenderFluentConfig>('config.schema.json', { useDefaults: true });

/** 1-based line of the node a JSON pointer designates in a YAML document (its nearest existing parent's otherwise). */
export function lineOf(doc: Document, counter: LineCounter, pointer: string): number | undefined {
  let segments = pointerSegments(pointer);
  while (true) {
    const node = segments.length ? doc.getIn(segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true) : doc.contents;
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
    if (!segments.length) return undefined;
    segments = segments.slice(0, -1);
  }
}

/**
 * Parses, resolves secrets, validates and normalises a config text. Returns every problem at once;
 * `config` is set only when there are none.
 */
export function checkConfigText(
  file: string,
  text: string,
  env: NodeJS.ProcessEnv = process.env,
): { config?: Config; problems: Problem[]; warnings: Problem[] } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const at = (pointer: string, message: string): Problem => ({ file, pointer, message, line: lineOf(doc, counter, pointer) });
  if (doc.errors.length) {
    return {
      problems: doc.errors.map((e) => ({ file, pointer: '', message: yamlMessage(e.code, e.message, text, e.pos[0]), line: counter.linePos(e.pos[0]).line })),
      warnings: [],
    };
  }
  const baseDir = dirname(resolve(file));
  let parsed: unknown;
  try {
    parsed = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // the yaml library refuses alias expansion beyond maxAliasCount (a "billion laughs" document)
    return { problems: [{ file, pointer: '', message: `YAML: ${(e as Error).message} (aliases expand to too many nodes)` }], warnings: [] };
  }
  const resolved = resolveReferences(parsed ?? {}, baseDir, env);
  const problems: Problem[] = resolved.problems.map((p) => at(p.pointer, p.message));
  const warnings: Problem[] = [];
  const raw = resolved.value as DefenderFluentConfig;
  // The semantic checks below still run on every part the schema accepted, so that one `validate`
  // lists all problems at once; a part with schema errors is skipped (its values may be any type).
  const schemaProblems = validateConfig(raw) ? [] : schemaErrors(file, validateConfig.errors);
  problems.push(...schemaProblems.map((p) => at(p.pointer, p.message)));
  const schemaOk = (pointer: string) => !schemaProblems.some((p) => p.pointer === pointer || p.pointer.startsWith(`${pointer}/`));
  if (!raw || typeof raw !== 'object' || !Array.isArray(raw.connectors)) return { problems: inFileOrder(problems), warnings };

  const connectors: Connector[] = [];
  const names = new Map<string, number>();
  raw.connectors.forEach((c, i) => {
    const ptr = `/connectors/${i}`;
    if (!schemaOk(ptr)) {
      if (c && typeof c === 'object' && typeof c.name === 'string' && !names.has(c.name)) names.set(c.name, i);
      return;
    }
    if (/[/\\:]/.test(c.name)) problems.push(at(`${ptr}/name`, 'must not contain "/", "\\" or ":" (the name is part of file names and of --reset-cursor NAME:CONTENT)'));
    const first = names.get(c.name);
    if (first !== undefined) problems.push(at(`${ptr}/name`, `duplicate connector name "${c.name}" (also /connectors/${first}/name)`));
    else names.set(c.name, i);
    const functions = c.functions ?? ['collect'];
    if (functions.includes('respond') && !functions.includes('collect')) {
      problems.push(at(`${ptr}/functions`, '"respond" requires "collect" in the same connector'));
    }
    const api = parseEndpoint(c.apiEndpoint!, 'defender');
    const auth = parseEndpoint(c.authorityHost!, 'authority');
    const graph = parseEndpoint(c.graphEndpoint!, 'graph');
    for (const [key, parsed, label] of [
      ['apiEndpoint', api, 'a documented Defender API host (e.g. api.security.microsoft.com, api-us.securitycenter.microsoft.com, api-gov.securitycenter.microsoft.us)'],
      ['authorityHost', auth, 'login.microsoftonline.com or login.microsoftonline.us'],
      ['graphEndpoint', graph, 'graph.microsoft.com, graph.microsoft.us or dod-graph.microsoft.us'],
    ] as const) {
      if ('error' in parsed) problems.push(at(`${ptr}/${key}`, parsed.error));
      else if (!parsed.documented) {
        if (c.allowCustomEndpoint) warnings.push(at(`${ptr}/${key}`, `custom host ${parsed.host} in use (allowCustomEndpoint: true); expected ${label}`));
        else problems.push(at(`${ptr}/${key}`, `expected ${label}; got "${parsed.host}" (set allowCustomEndpoint: true only for emulators or proxies)`));
      }
    }
    const caProblem = c.caFile ? pemProblem(resolve(baseDir, c.caFile), 'certificate') : undefined;
    if (caProblem) problems.push(at(`${ptr}/caFile`, caProblem));
    if (!resolved.referenced.has(`${ptr}/clientSecret`)) {
      warnings.push(at(`${ptr}/clientSecret`, 'literal secret in the config file; prefer ${env:NAME} or ${file:/run/secrets/NAME}'));
      registerSecret(c.clientSecret); // a literal secret must be kept out of logs just like a resolved one
    }
    for (const p of checkLogFilters(c.logFilters ?? [], `${ptr}/logFilters`)) problems.push(at(p.pointer, p.message));
    if (!('error' in api) && !('error' in auth) && !('error' in graph)) {
      connectors.push({
        ...(c as Connector),
        caFile: c.caFile ? resolve(baseDir, c.caFile) : undefined,
        apiBaseUrl: api.origin,
        authorityUrl: auth.origin,
        graphBaseUrl: graph.origin,
        huntingDir: c.huntingDir ? resolve(baseDir, c.huntingDir) : huntingDir,
      });
    }
  });

  const output = raw.output as Output;
  if (schemaOk('/output') && output.type === 'forward') {
    if (output.username && !output.password) problems.push(at('/output/password', 'is required when username is set'));
    if (output.password && !output.username) problems.push(at('/output/username', 'is required when password is set'));
    if (output.tls?.cert && !output.tls.key) problems.push(at('/output/tls/key', 'is required when tls.cert is set'));
    for (const key of ['ca', 'cert', 'key'] as const) {
      const f = output.tls?.[key];
      const problem = f ? pemProblem(resolve(baseDir, f), key === 'key' ? 'key' : 'certificate') : undefined;
      if (problem) problems.push(at(`/output/tls/${key}`, problem));
    }
    for (const key of ['sharedKey', 'password'] as const) {
      if (output[key] && !resolved.referenced.has(`/output/${key}`)) {
        warnings.push(at(`/output/${key}`, 'literal secret in the config file; prefer ${env:NAME}'));
        registerSecret(output[key]!);
      }
    }
  }

  const state = raw.state as State;
  if (schemaOk('/state') && state.type === 'postgres') {
    // the URL's password is a secret even when the rest of the URL is not; a literal one is kept out of logs too
    let password = '';
    try {
      password = decodeURIComponent(new URL(state.url).password);
    } catch {
      problems.push(at('/state/url', 'must be a URL: postgres://user:password@host:port/database'));
    }
    if (password) registerSecret(password);
    if (password && !resolved.referenced.has('/state/url')) warnings.push(at('/state/url', 'literal password in the config file; prefer ${env:NAME} or ${file:/run/secrets/NAME}'));
  }

  if (raw.respond && schemaOk('/respond')) {
    const tokenNames = new Set<string>();
    const tokenValues = new Map<string, number>();
    (raw.respond.tokens ?? []).forEach((t, i) => {
      const ptr = `/respond/tokens/${i}`;
      if (tokenNames.has(t.name)) problems.push(at(`${ptr}/name`, `duplicate token name "${t.name}"`));
      tokenNames.add(t.name);
      // the token names its caller and decides its connectors: one value for two entries is ambiguous
      const same = tokenValues.get(t.token);
      if (same !== undefined) problems.push(at(`${ptr}/token`, `the same token as /respond/tokens/${same}/token (each entry needs its own token)`));
      else tokenValues.set(t.token, i);
      t.connectors.forEach((name, j) => {
        if (name !== '*' && !names.has(name)) problems.push(at(`${ptr}/connectors/${j}`, `no connector named "${name}" (known: ${[...names.keys()].join(', ')})`));
      });
      if (!resolved.referenced.has(`${ptr}/token`)) {
        warnings.push(at(`${ptr}/token`, 'literal token in the config file; prefer ${env:NAME}'));
        registerSecret(t.token);
      }
    });
    if (raw.respond.tls) {
      for (const key of ['cert', 'key'] as const) {
        const problem = pemProblem(resolve(baseDir, raw.respond.tls[key]), key === 'key' ? 'key' : 'certificate');
        if (problem) problems.push(at(`/respond/tls/${key}`, problem));
      }
    }
    const listen = raw.respond.listen ?? '127.0.0.1:8686';
    const host = listen.slice(0, listen.lastIndexOf(':'));
    const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
    if (port > 65535) problems.push(at('/respond/listen', `port ${port} is out of range (1-65535, or 0 for any free port)`));
    if (!raw.respond.tls && (host === '0.0.0.0' || host === '::' || host === '*')) {
      warnings.push(at('/respond/listen', `listens on every interface without TLS: bearer tokens and containment requests cross the network in clear text (set respond.tls, or listen on 127.0.0.1 behind a TLS proxy)`));
    }
  }

  if (raw.health && schemaOk('/health')) {
    const port = Number(raw.health.listen.slice(raw.health.listen.lastIndexOf(':') + 1));
    if (port > 65535) problems.push(at('/health/listen', `port ${port} is out of range (1-65535, or 0 for any free port)`));
  }

  const stateDir = resolve(baseDir, raw.stateDir ?? './state');
  const stateProblem = schemaOk('/stateDir') ? stateDirProblem(stateDir) : undefined;
  if (stateProblem) problems.push(at('/stateDir', stateProblem));

  if (problems.length) return { problems: inFileOrder(problems), warnings: inFileOrder(warnings) };
  const config: Config = {
    ...(raw as Omit<Config, 'connectors'>),
    stateDir,
    state,
    maxConcurrentPolls: raw.maxConcurrentPolls ?? defaultMaxConcurrentPolls(),
    output,
    connectors,
  };
  return { config, problems, warnings: inFileOrder(warnings) };
}

/**
 * Polls mostly wait on the API, so a few per core keep the cores busy; the bound keeps memory (each
 * running poll holds up to a page in flight) and the burst on Entra and Defender bounded.
 */
export const defaultMaxConcurrentPolls = (): number => Math.max(4, 4 * availableParallelism());

/** Problems sorted by line (stable; those without a line last), so a report reads top to bottom. */
function inFileOrder(problems: Problem[]): Problem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.i - b.i)
    .map(({ p }) => p);
}

// Schema patterns whose bare regex would not tell a user what is expected.
const patternMessages: Record<string, string> = {
  '^[!-~]+$': 'must be printable ASCII without spaces (no multibyte characters)',
  '^postgres(ql)?://': 'must be a postgres:// (or postgresql://) URL',
  '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$':
    'must be a GUID (8-4-4-4-12 hex digits, e.g. 00000000-0000-0000-0000-000000000000)',
};

/** ajv errors → problems, with an unknown output type and the opaque patterns said in words. */
function schemaErrors(file: string, errors: ErrorObject[] | null | undefined): Problem[] {
  const out: Problem[] = [];
  const rest: ErrorObject[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'discriminator') {
      const { tag, tagValue } = e.params as { tag: string; tagValue: unknown };
      const allowed = (e.instancePath === '/state' ? stateTypes : outputTypes).map((t) => JSON.stringify(t)).join(', ');
      out.push({ file, pointer: `${e.instancePath}/${tag}`, message: `must be one of ${allowed} (got ${JSON.stringify(tagValue)})` });
    } else if (e.keyword === 'pattern' && patternMessages[(e.params as { pattern: string }).pattern]) {
      out.push({ file, pointer: e.instancePath, message: patternMessages[(e.params as { pattern: string }).pattern]! });
    } else rest.push(e);
  }
  return [...out, ...ajvProblems(file, rest)];
}

const outputTypes = ['stdout', 'forward'];
const stateTypes = ['file', 'postgres'];

/** The first line of a YAML parser message; a duplicate key is named (the parser only says "must be unique"). */
function yamlMessage(code: string, message: string, text: string, pos: number): string {
  if (code === 'DUPLICATE_KEY') {
    const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:\n]+?)\s*:/.exec(text.slice(pos))?.[1];
    if (key) return `YAML: duplicate key ${key.startsWith('"') || key.startsWith("'") ? key : `"${key}"`} (map keys must be unique)`;
  }
  return `YAML: ${message.split('\n')[0]}`;
}

/** Loads and checks a config file; throws ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ file, pointer: '', message: `cannot read config file: ${(e as NodeJS.ErrnoException).code ?? String(e)}` }]);
  }
  const { config, problems, warnings } = checkConfigText(file, text, env);
  if (!config) throw new ConfigError(file, problems);
  return { file, config, warnings };
}
