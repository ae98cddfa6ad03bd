#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { runCommand } from './collect/run-command.js';
import { testCommand } from './check/command.js';
import { respondCommand } from './respond/command.js';
import { suppressAvCommand } from './status/suppress-av.js';
import { validateCommand } from './config/validate-command.js';
import type { EmulateCommandOptions } from './emulate/command.js';
import { createLogger, logFormats, logLevels, setCliLogOptions, type LogFormat } from './log.js';
import { docsCommand } from './transform/docs.js';
import { previewCommand, type PreviewOptions } from './transform/preview.js';
import { contentTypes } from './config/load.js';
import { version } from './paths.js';

const program = new Command();
program
  .name('defender-fluent')
  .description('Microsoft Defender for Endpoint → Fluentd / Fluent Bit: collector, transforms, response sidecar')
  .version(version)
  .showHelpAfterError()
  // every command's help lists --log-level / --log-format
  .configureHelp({ showGlobalOptions: true })
  // a usage error (unknown option, missing argument, bad choice) exits 2, like an invalid config:
  // 1 means a check or a poll failed
  .exitOverride()
  .addOption(new Option('--log-level <level>', 'log level (overrides logLevel of the config)').choices(logLevels))
  .addOption(new Option('--log-format <format>', 'json lines, or text: one readable line per entry for a terminal').choices(logFormats).default('json'))
  .hook('preAction', (_program, command) => {
    const o = command.optsWithGlobals<{ logLevel?: string; logFormat?: LogFormat }>();
    setCliLogOptions({ level: o.logLevel, format: o.logFormat });
  });

const collect = (v: string, prev: string[] = []) => [...prev, v];

program
  .command('run')
  .description('run the collector: every connector × content type on its interval (the first poll at once)')
  .requiredOption('-c, --config <file>', 'defender.yaml')
  .option('--once', 'one full catch-up of every task, wait for acknowledgements, exit (for in_exec with run_interval)')
  .option('--reset-cursor <connector[:content]>', 'forget a cursor so the next poll starts from the lookback (repeatable)', collect)
  .addOption(new Option('--output <type>', 'override output.type').choices(['stdout']))
  .option('--progress', 'print a progress line per content type to stderr as pages are delivered')
  .option('--transforms <dir>', 'transforms folder (default: the packaged transforms/)')
  .action(async (o: { config: string; once?: boolean; resetCursor?: string[]; output?: 'stdout'; progress?: boolean; transforms?: string }) => {
    process.exitCode = await runCommand(o);
  });

program
  .command('validate')
  .description('check the config, the transform files and lookups; every error with file and JSON pointer')
  .option('-c, --config <file>', 'defender.yaml')
  .option('--transforms <dir>', 'transforms folder (default: the packaged transforms/)')
  .action(async (o: { config?: string; transforms?: string }) => {
    process.exitCode = await validateCommand(o);
  });

program
  .command('preview')
  .description('map raw Defender API JSON (page, array, object or NDJSON) through the transforms; NDJSON records on stdout')
  .addOption(new Option('--content <type>', 'content type of the input').choices(contentTypes).makeOptionMandatory())
  .option('--transforms <dir>', 'transforms folder (default: the packaged transforms/)')
  .option('--query <file.kql>', 'hunting: the query whose header maps the saved rows')
  .option('--pretty', 'indent records')
  .option('--tags', 'print {tag, time, record} instead of the record alone')
  .option('--tenant <name>', 'tenant_name in the records', 'preview')
  .option('--connector <name>', 'connector name used in engid_name', 'preview')
  .argument('<file...>', 'input files; - reads stdin')
  .action(async (files: string[], o: Omit<PreviewOptions, 'files'>) => {
    process.exitCode = await previewCommand({ ...o, files });
  });

program
  .command('docs')
  .description('write docs/fields.md: every output field, its source and rule, per transform')
  .option('--transforms <dir>', 'transforms folder')
  .option('--out <file>', 'output file (default: docs/fields.md in the current folder)')
  .option('--check', 'do not write; exit 1 when the file is out of date')
  .action(async (o: { transforms?: string; out?: string; check?: boolean }) => {
    process.exitCode = await docsCommand(o);
  });

program
  .command('test')
  .description('check each connector: config, token, API permissions, one minimal call per API (authentication and connectivity only, no data flow)')
  .requiredOption('-c, --config <file>', 'defender.yaml')
  .option('--connector <name>', 'test only this connector')
  .option('--json', 'print one JSON document (schemas/check-output.schema.json) instead of tables')
  .action(async (o: { config: string; connector?: string; json?: boolean }) => {
    process.exitCode = await testCommand(o);
  });

program
  .command('respond')
  .description('run the response sidecar: contain/release hosts, action status, guarded automated response (HTTP, /v1)')
  .requiredOption('-c, --config <file>', 'defender.yaml')
  .option('--listen <host:port>', 'override respond.listen')
  .action(async (o: { config: string; listen?: string }) => {
    process.exitCode = await respondCommand(o);
  });

program
  .command('suppress-av')
  .description('Fluentd exec_filter child: drop Windows Defender Antivirus detection events of tenants whose Defender connector is green')
  .requiredOption('-c, --config <file>', 'defender.yaml')
  .action(async (o: { config: string }) => {
    process.exitCode = await suppressAvCommand(o);
  });

program
  .command('emulate')
  .description('local Defender for Endpoint API + Entra token endpoint (HTTPS on 127.0.0.1) for demos, tests and benchmarks')
  .option('--port <port>', 'port on 127.0.0.1 (0 = any free port)', '8443')
  .option('--alerts <n>', 'initial alerts', '200')
  .option('--machines <n>', 'machines (0: GET /api/machines answers 404)', '50')
  .option('--vulns <n>', 'vulnerability records in the export snapshot', '1000')
  .option('--seed <n>', 'data seed: the same seed gives the same data and credentials', '1')
  .option('--updates-per-minute <n>', 'new and changed alerts per minute while running', '60')
  .option('--history-hours <h>', 'spread of the initial alerts before now', '2')
  .option('--faults <list>', 'faults to inject, e.g. "429:count=3,503:p=0.05,truncate:after=2"')
  .option('--rate-scale <f>', 'shrink the rate-limit windows (0.01: 100 calls per 0.6 s)', '1')
  .option('--no-rate-limits', 'do not enforce rate limits (benchmarks)')
  .option('--token-lifetime <s>', 'access-token lifetime in seconds', '3599')
  .option('--state-dir <dir>', 'where the certificate is kept (default <tmp>/defender-fluent-emulator)')
  .option('--prebuild-alerts', 'serialise every alert at start: slower start, faster pages (benchmarks)')
  .option('--page-cap <n>', 'alert and machine pages hold at most n items whatever $top asks (a gateway that caps pages)')
  .option('--page-cap-next-link', 'capped pages link the rest with @odata.nextLink (default: no link)')
  .option('--machine-actions <n>', 'machine actions taken before the start (portal, other tools), over --history-hours', '20')
  .action(async (o: EmulateCommandOptions) => {
    // loaded only here: the emulator (and selfsigned) stays out of what run and respond load
    const { emulateCommand } = await import('./emulate/command.js');
    process.exitCode = await emulateCommand({ ...o, logger: createLogger('info') });
  });

try {
  await program.parseAsync();
} catch (e) {
  // commander has printed the message (and the help); --help and --version end here with 0
  if (!(e instanceof CommanderError)) throw e;
  process.exitCode = e.exitCode === 0 ? 0 : 2;
}
// Every command has finished its work and flushed what it owes (stdout is synchronous for pipes and
// files on Linux); a forgotten idle handle must not keep the process, or in_exec, waiting.
process.exit(process.exitCode ?? 0);
