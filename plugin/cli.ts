#!/usr/bin/env node
import { Command, Option } from 'commander';
import { runCommand } from './collect/run-command.js';
import { testCommand } from './check/command.js';
import { validateCommand } from './config/validate-command.js';
import { version } from './paths.js';

const program = new Command();
program
  .name('defender-fluent')
  .description('Microsoft Defender for Endpoint → Fluentd / Fluent Bit: collector, transforms, response sidecar')
  .version(version)
  .showHelpAfterError();

const collect = (v: string, prev: string[] = []) => [...prev, v];

program
  .command('run')
  .description('run the collector: every connector × content type on its interval (the first poll at once)')
  .requiredOption('-c, --config <file>', 'defender.yaml')
  .option('--once', 'one full catch-up of every task, wait for acknowledgements, exit (for in_exec with run_interval)')
  .option('--reset-cursor <connector[:content]>', 'forget a cursor so the next poll starts from the lookback (repeatable)', collect)
  .addOption(new Option('--output <type>', 'override output.type').choices(['stdout']))
  .action(async (o: { config: string; once?: boolean; resetCursor?: string[]; output?: 'stdout' }) => {
    process.exitCode = await runCommand(o);
  });

program
  .command('validate')
  .description('check the config, the transform files and lookups; every error with file and JSON pointer')
  .option('-c, --config <file>', 'defender.yaml')
  .action(async (o: { config?: string }) => {
    process.exitCode = await validateCommand(o);
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

await program.parseAsync();
