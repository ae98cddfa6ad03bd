import { AsyncLocalStorage } from 'node:async_hooks';

/** Runs `wait` (a sleep on Retry-After, a backoff or the rate budget) and resolves like it. */
export type WaitHook = <T>(wait: () => Promise<T>) => Promise<T>;

const hooks = new AsyncLocalStorage<WaitHook>();

/**
 * Runs `work` with `hook` around every wait it does on the API: the collector's scheduler gives up
 * the poll's slot while the poll sleeps and takes it back after. The hook follows the async call
 * chain, not an argument: a connector's client is shared by its content types, and each wait belongs
 * to the poll that called, whatever the task (new content types get it without any plumbing).
 */
export function withWaitHook<T>(hook: WaitHook, work: () => Promise<T>): Promise<T> {
  return hooks.run(hook, work);
}

/** `wait()`, through the hook of the poll this call belongs to, if any. */
export function idleWait<T>(wait: () => Promise<T>): Promise<T> {
  const hook = hooks.getStore();
  return hook ? hook(wait) : wait();
}
