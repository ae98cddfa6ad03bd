import type { Output } from '../config/load.js';
import type { Logger } from '../log.js';
import { ForwardSink } from './forward.js';
import type { Sink } from './sink.js';
import { StdoutSink } from './stdout.js';

/**
 * The sink `output` configures: forward with acknowledgements, or NDJSON on stdout. `baseDir` (the
 * config file's folder) resolves relative TLS file paths.
 */
export function createSink(output: Output, logger: Logger, baseDir: string): Sink {
  return output.type === 'forward' ? new ForwardSink(output, { logger, baseDir }) : new StdoutSink();
}
