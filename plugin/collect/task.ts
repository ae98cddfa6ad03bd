import type { Connector, ContentType } from '../config/load.js';
import type { DefenderClient } from '../defender/client.js';
import type { Clock } from '../defender/budget.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { MachineInventory } from './inventory.js';

/** What one poll did; `cursor` is a short human-readable position for status and progress lines. */
export interface PollResult {
  pages: number;
  records: number;
  cursor: string;
  /** more remains to catch up (the poll stopped early, e.g. at a window limit) */
  more?: boolean;
}

export interface TaskContext {
  connector: Connector;
  client: DefenderClient;
  cursors: StateStore;
  /** machines by id, written by the host task, read by the alerts task (absent: no enrichment) */
  inventory?: MachineInventory;
  /** maps, filters and delivers entities; resolves once the pipeline acknowledged them */
  emit(entities: Record<string, unknown>[]): Promise<void>;
  /** called after each page is read, its last slices possibly still awaiting acknowledgement (progress lines in the demo) */
  progress?(p: { pages: number; records: number; cursor: string }): void;
  logger: Logger;
  clock: Clock;
  signal: AbortSignal;
}

export interface CollectorTask {
  readonly content: ContentType;
  poll(ctx: TaskContext): Promise<PollResult>;
}

export class StoppedError extends Error {
  constructor() {
    super('collection stopped');
    this.name = 'StoppedError';
  }
}

export function throwIfStopped(signal: AbortSignal): void {
  if (signal.aborted) throw new StoppedError();
}
