import { isDeepStrictEqual } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { configReloads } from '../status/metrics.js';
import { formatProblem } from '../schema-check.js';

/**
 * SIGHUP's config half: re-reads and checks the config file (secrets from ${env}/${file} read
 * again). Only the connectors change live; every other top-level setting (stateDir, output,
 * workers, health, ...) keeps its running value and a warning names it. Returns the config to run
 * with, or undefined when the new file is invalid: every problem is logged (file:line: pointer:
 * message, as `validate` prints them) and the running config stays. `kept` lists the settings that
 * changed and wait for a restart.
 */
export function reloadConfig(file: string, running: Config, logger: Logger): { config: Config; kept: string[] } | undefined {
  let loaded;
  try {
    loaded = loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) logger.error(`config reload: ${formatProblem(p)}`);
    logger.error(`config reload: ${e.problems.length} error${e.problems.length === 1 ? '' : 's'}: keeping the running configuration`);
    configReloads.inc({ outcome: 'invalid' });
    return undefined;
  }
  configReloads.inc({ outcome: 'ok' });
  for (const w of loaded.warnings) logger.warn(`config reload: ${formatProblem(w)}`);
  const next = loaded.config;
  const keys = new Set([...Object.keys(running), ...Object.keys(next)] as (keyof Config)[]);
  // respond is the sidecar's own section: the collector does not read it
  const kept = [...keys].filter((key) => key !== 'connectors' && key !== 'respond' && !isDeepStrictEqual(running[key], next[key]));
  for (const key of kept) logger.warn(`config reload: /${key} changed: it takes effect at the next restart; running with the old value`);
  return { config: { ...running, connectors: next.connectors }, kept: kept.map((k) => `/${k}`) };
}
