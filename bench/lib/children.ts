import type { EmulatorOptions } from '../../plugin/emulate/index.js';
import type { CollectorRunArgs, CollectorRunResult } from '../proc/collector.js';
import { startChild, type Child } from './ipc.js';

// `npm run bench` runs the compiled bench (dist/bench, plain node: the product as shipped);
// `node --import tsx bench/run.ts` runs the sources.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export interface EmulatorInfo {
  connector: Record<string, unknown>;
  url: string;
  startMs: number;
}

export interface EmulatorStats {
  requests: number;
  byApi: Record<string, Record<string, number>>;
  alertRecords: number;
  machineRecords: number;
  vulnerabilityRecords: number;
  pages: Record<string, number>;
  tokensIssued: number;
  maxRssMB: number;
}

export const startEmulatorChild = (opts: EmulatorOptions): Promise<Child<EmulatorInfo>> =>
  startChild<EmulatorInfo>(new URL(`../proc/emulator${ext}`, import.meta.url), [JSON.stringify(opts)]);

export const startFluentChild = (): Promise<Child<{ port: number }>> => startChild<{ port: number }>(new URL(`../proc/fluent${ext}`, import.meta.url));

/** Runs the collector once in a fresh child process (its own CPU and RSS), then stops it. */
export async function runCollectorChild(args: CollectorRunArgs, execArgv: string[] = []): Promise<CollectorRunResult> {
  const child = await startChild(new URL(`../proc/collector${ext}`, import.meta.url), [], execArgv);
  try {
    return await child.call<CollectorRunResult>('run', args);
  } finally {
    await child.stop();
  }
}
