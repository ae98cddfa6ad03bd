// `defender-fluent emulate`: runs the emulator until SIGINT/SIGTERM and prints how to point a
// connector at it.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Logger } from '../log.js';
import { FaultSpecError, parseFaults } from './faults.js';
import { startEmulator, type Emulator, type EmulatorOptions } from './server.js';

/**
 * Options as commander hands them over (strings or numbers):
 *   port                 --port P                 listen port on 127.0.0.1 (default 8443; 0 = any free port)
 *   alerts               --alerts N               initial alerts (default 200)
 *   machines             --machines M             machines (default 50; 0 → /api/machines answers 404)
 *   vulns                --vulns V                vulnerability records in the export snapshot (default 1000)
 *   seed                 --seed S                 data seed (default 1)
 *   updatesPerMinute     --updates-per-minute U   new/changed alerts per minute while running (default 60)
 *   faults               --faults LIST            e.g. "429:count=3,503:p=0.05,truncate:after=2" (see README)
 *   rateScale            --rate-scale F           shrink rate-limit windows (default 1)
 *   rateLimits           --no-rate-limits         turn rate limits off (benchmarks)
 *   historyHours         --history-hours H        spread of the initial alerts before now (default 2)
 *   tokenLifetime        --token-lifetime S       access-token lifetime in seconds (default 3599)
 *   stateDir             --state-dir DIR          where the certificate is kept (default <tmp>/defender-fluent-emulator)
 *   prebuildAlerts       --prebuild-alerts        serialise every alert at start: slower start, ~4× faster pages (benchmarks)
 *   pageCap              --page-cap N             alert and machine pages hold at most N items whatever $top says (default: no cap)
 *   pageCapNextLink      --page-cap-next-link     capped pages link the rest with @odata.nextLink (default: no link)
 *   machineActions       --machine-actions N      machine actions taken before the start, over --history-hours (default 20)
 */
export interface EmulateCommandOptions {
  port?: string | number;
  alerts?: string | number;
  machines?: string | number;
  vulns?: string | number;
  seed?: string | number;
  updatesPerMinute?: string | number;
  faults?: string;
  rateScale?: string | number;
  rateLimits?: boolean;
  historyHours?: string | number;
  tokenLifetime?: string | number;
  stateDir?: string;
  prebuildAlerts?: boolean;
  pageCap?: string | number;
  pageCapNextLink?: boolean;
  machineActions?: string | number;
  logger?: Logger;
  /** stdout by default (tests pass their own) */
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** stops the emulator (tests); SIGINT/SIGTERM always do */
  signal?: AbortSignal;
  /** called once listening (tests) */
  onReady?: (emulator: Emulator) => void;
}

type NumberRule = { name: string; min: number; max: number; integer: boolean };

function num(value: string | number | undefined, rule: NumberRule, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(n) || (rule.integer && !Number.isInteger(n)) || n < rule.min || n > rule.max) {
    problems.push(`--${rule.name}: expected ${rule.integer ? 'an integer' : 'a number'} from ${rule.min} to ${rule.max}, got "${value}"`);
    return undefined;
  }
  return n;
}

/** Validates CLI options into EmulatorOptions; returns the problems instead when any. */
export function emulatorOptionsFromCli(o: EmulateCommandOptions): EmulatorOptions | { problems: string[] } {
  const problems: string[] = [];
  const opts: EmulatorOptions = {
    // a fixed default port (and the seed-derived identity) keeps a pasted connector config valid across restarts
    port: num(o.port ?? 8443, { name: 'port', min: 0, max: 65535, integer: true }, problems),
    alerts: num(o.alerts, { name: 'alerts', min: 0, max: 5_000_000, integer: true }, problems),
    machines: num(o.machines, { name: 'machines', min: 0, max: 1_000_000, integer: true }, problems),
    vulnerabilities: num(o.vulns, { name: 'vulns', min: 0, max: 100_000_000, integer: true }, problems),
    seed: num(o.seed, { name: 'seed', min: 0, max: 0xffffffff, integer: true }, problems),
    updatesPerMinute: num(o.updatesPerMinute ?? 60, { name: 'updates-per-minute', min: 0, max: 6_000_000, integer: false }, problems),
    rateScale: num(o.rateScale, { name: 'rate-scale', min: 0.0001, max: 1000, integer: false }, problems),
    rateLimits: o.rateLimits ?? true,
    historyHours: num(o.historyHours, { name: 'history-hours', min: 0, max: 24 * 365, integer: false }, problems),
    tokenLifetimeSeconds: num(o.tokenLifetime, { name: 'token-lifetime', min: 1, max: 86_400, integer: true }, problems),
    // a stable folder: the printed caFile stays valid across restarts
    stateDir: o.stateDir ?? join(tmpdir(), 'defender-fluent-emulator'),
    prebuildAlerts: o.prebuildAlerts ?? false,
    pageCap: num(o.pageCap, { name: 'page-cap', min: 1, max: 10_000, integer: true }, problems),
    pageCapNextLink: o.pageCapNextLink ?? false,
    machineActions: num(o.machineActions ?? 20, { name: 'machine-actions', min: 0, max: 1_000_000, integer: true }, problems),
    // nobody can read `served` from outside the process: do not keep a million ids
    recordVulnerabilityIds: false,
    logger: o.logger,
  };
  if (o.faults) {
    try {
      opts.faults = parseFaults(o.faults);
    } catch (e) {
      if (!(e instanceof FaultSpecError)) throw e;
      problems.push(`--faults: ${e.message}`);
    }
  }
  return problems.length ? { problems } : opts;
}

/** The text printed at start: URL, CA file and a connector snippet for defender.yaml. */
export function describe(emu: Emulator, opts: EmulatorOptions): string {
  const connector = { ...emu.connectorConfig('emulator'), clientSecret: '${env:DEFENDER_EMULATOR_SECRET}' };
  const lines = [
    `defender-fluent emulator listening on ${emu.url}`,
    `  Defender API   ${emu.apiBaseUrl}/api/...`,
    `  Entra token    ${emu.authorityUrl}/${emu.tenantId}/oauth2/v2.0/token`,
    `  CA certificate ${emu.caFile}   (connector caFile, or NODE_EXTRA_CA_CERTS for other tools)`,
    `  data           seed ${opts.seed ?? 1}, ${emu.alertVersions().length} alerts, ${emu.machineIds().length} machines, ${opts.vulnerabilities ?? 1000} vulnerability records, ${opts.updatesPerMinute ?? 0} updates/min`,
    `  rate limits    ${opts.rateLimits === false ? 'off' : `on (window scale ${opts.rateScale ?? 1})`}`,
    ...(Array.isArray(opts.faults) && opts.faults.length ? [`  faults         ${opts.faults.map((f) => Object.entries(f).map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`)).join(':')).join(', ')}`] : []),
    '',
    'The emulator accepts this (fake) client secret:',
    `  export DEFENDER_EMULATOR_SECRET='${emu.clientSecret}'`,
    '',
    'Connector for defender.yaml (under connectors:):',
    stringify([connector]).trimEnd().replace(/^/gm, '  '),
    '',
    'Ctrl-C stops it.',
  ];
  return `${lines.join('\n')}\n`;
}

export async function emulateCommand(o: EmulateCommandOptions = {}): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const opts = emulatorOptionsFromCli(o);
  if ('problems' in opts) {
    err.write(`defender-fluent emulate: ${opts.problems.join('\n  ')}\n`);
    return 2;
  }
  let emu: Emulator;
  try {
    emu = await startEmulator(opts);
  } catch (e) {
    err.write(`defender-fluent emulate: cannot start: ${(e as Error).message}\n`);
    return 2;
  }
  out.write(describe(emu, opts));
  o.onReady?.(emu);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      o.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    o.signal?.addEventListener('abort', stop, { once: true });
    if (o.signal?.aborted) stop();
  });
  await emu.close();
  out.write(`emulator stopped (${emu.served.requests.length} requests served)\n`);
  return 0;
}
