import { dirname, resolve } from 'node:path';
import type { Config } from '../config/load.js';
import { loadConfigOrReport } from '../config/report.js';
import { createLogger } from '../log.js';
import type { Sink } from '../output/sink.js';
import { createSink } from '../output/create.js';
import { formatProblem } from '../schema-check.js';
import { RespondServer } from './server.js';

export interface RespondOptions {
  /** path of defender.yaml */
  config: string;
  /** the Fluent sink for audit records; default: built from config.output (forward with ack, or stdout NDJSON) */
  makeSink?: (config: Config) => Sink;
  /** override respond.listen (host:port) */
  listen?: string;
}

/**
 * `defender-fluent respond --config F`: the response sidecar. Serves until SIGTERM/SIGINT, then
 * stops accepting, finishes in-flight requests and closes the sink. Returns the exit code:
 * 0 after a clean stop, 2 for config problems, no respond connector, or a listen address it cannot bind.
 */
export async function respondCommand(opts: RespondOptions): Promise<number> {
  const loaded = loadConfigOrReport(opts.config);
  if (!loaded) return 2;
  const { config } = loaded;
  const logger = createLogger(config.logLevel);
  for (const w of loaded.warnings) logger.warn(formatProblem(w));
  if (!config.connectors.some((c) => c.functions.includes('respond'))) {
    process.stderr.write(`error: ${opts.config}: no connector has "respond" in functions; the sidecar has nothing to serve\n`);
    return 2;
  }
  const sink = opts.makeSink ? opts.makeSink(config) : createSink(config.output, logger, dirname(resolve(opts.config)));
  const server = new RespondServer({ config, sink, logger, baseDir: dirname(resolve(opts.config)) });
  try {
    await server.listen(opts.listen);
  } catch (e) {
    process.stderr.write(`error: cannot listen on ${opts.listen ?? config.respond?.listen ?? '127.0.0.1:8686'}: ${(e as Error).message}\n`);
    await sink.close(1000).catch(() => undefined);
    return 2;
  }
  await new Promise<void>((resolveStop) => {
    const stop = (sig: NodeJS.Signals) => {
      logger.info(`${sig}: stopping the response sidecar`);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolveStop();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await server.close();
  await sink.close(config.shutdownTimeoutSeconds * 1000).catch(() => undefined);
  return 0;
}
