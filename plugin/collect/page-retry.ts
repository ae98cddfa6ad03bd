import { sleepUnless } from '../defender/budget.js';
import type { OpenedPage, PageEnd } from '../defender/client.js';
import { DefenderApiError } from '../defender/errors.js';
import { backoffMs, retryPolicy } from '../defender/retry.js';
import type { TaskContext } from './task.js';

/** A 200 whose body was cut short, malformed, or too slow in coming: worth asking for again. */
export function isBrokenPage(e: unknown): boolean {
  return e instanceof DefenderApiError && e.status === 200 && (e.errorClass === 'malformed' || e.errorClass === 'timeout');
}

/**
 * Reads one page in slices; a page cut short, malformed or stalled mid-stream is asked for again
 * a few times with the transient backoff (failing the poll instead re-reads, and re-delivers,
 * everything since the last cursor). `restart` resets the caller's per-attempt bookkeeping before
 * each attempt; `open(attempt)` sends the request.
 */
export async function readPageRetrying(
  ctx: TaskContext,
  what: string,
  open: (attempt: number) => Promise<OpenedPage>,
  batch: number,
  restart: () => void,
  onItems: (items: Record<string, unknown>[]) => Promise<void>,
): Promise<PageEnd> {
  for (let attempt = 0; ; attempt++) {
    restart();
    try {
      return await (await open(attempt)).read(batch, onItems);
    } catch (e) {
      if (!isBrokenPage(e) || attempt >= retryPolicy.maxTransientRetries) throw e;
      ctx.logger.warn({ connector: ctx.connector.name, err: e }, `${what} page cut short, malformed or stalled; asking for it again`);
      await sleepUnless(ctx.clock, backoffMs(attempt), ctx.signal);
    }
  }
}
