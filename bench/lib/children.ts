import type { EmulatorOptions } from '../../plugin/emulate/index.js';
import type { CollectorRunArgs, CollectorRunResult } from '../proc/collector.js';
import type { ForwardServerMode, ForwardServerStats } from '../proc/fluent.js';
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
  /** the emulator's CPU time since it started (user + system) */
  cpuMs: number;
}

export const startEmulatorChild = (opts: EmulatorOptions): Promise<Child<EmulatorInfo>> =>
  startChild<EmulatorInfo>(new URL(`../proc/emulator${ext}`, import.meta.url), [JSON.stringify(opts)]);

export type ForwardServerChild = Child<{ port: number }>;

/** A forward server with acks (bench/proc/fluent.ts): the native-speed stand-in or the library's FluentServer. */
export const startFluentChild = (mode: ForwardServerMode): Promise<ForwardServerChild> =>
  startChild<{ port: number }>(new URL(`../proc/fluent${ext}`, import.meta.url), [mode]);

export const forwardServerStats = (server: ForwardServerChild): Promise<ForwardServerStats> => server.call<ForwardServerStats>('count');

/** For unlessProblem() / runCollectorChild(): the messages the forward server rejected, if any. */
export const forwardServerProblem = (server: ForwardServerChild) => async (): Promise<string | undefined> => {
  const s = await forwardServerStats(server);
  return s.errorCount ? `the ${s.mode} forward server rejected ${s.errorCount} message(s): ${s.errors.join('; ')}` : undefined;
};

/**
 * Settles like `work`, unless `problem` (asked every 250 ms meanwhile) answers first: then it
 * rejects with that answer. The forward stand-in does not acknowledge a malformed chunk, so
 * without this a sink would re-send it until the bench is killed.
 */
export async function unlessProblem<T>(work: Promise<T>, problem: () => Promise<string | undefined>): Promise<T> {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    const poll = async () => {
      const p = await problem();
      if (p) reject(new Error(p));
      else if (!done) timer = setTimeout(() => void poll().catch(reject), 250);
    };
    timer = setTimeout(() => void poll().catch(reject), 250);
  });
  try {
    return await Promise.race([work, failed]);
  } finally {
    done = true;
    clearTimeout(timer);
  }
}

/** Runs the collector once in a fresh child process (its own CPU and RSS), then stops it; see unlessProblem() for `problem`. */
export async function runCollectorChild(args: CollectorRunArgs, execArgv: string[] = [], problem?: () => Promise<string | undefined>): Promise<CollectorRunResult> {
  const child = await startChild(new URL(`../proc/collector${ext}`, import.meta.url), [], execArgv);
  try {
    const run = child.call<CollectorRunResult>('run', args);
    return await (problem ? unlessProblem(run, problem) : run);
  } finally {
    await child.stop();
  }
}
