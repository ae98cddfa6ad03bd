import { createHash } from 'node:crypto';
import type { WaitHook } from '../defender/idle-waits.js';

/** A poll's place in the slot queue: oldest due first; among polls due together, the lower tie first. */
export interface Claim {
  due: number;
  tie: number;
}

/**
 * A stable fraction in [0, 1) per connector × content type: its phase within the interval (so that
 * tasks started together spread out over it) and its place among tasks due at the same moment
 * (so that a connector's content types, and the connectors, interleave rather than go in config order).
 */
export function jitter(connector: string, content: string): number {
  return createHash('sha1').update(`${connector}\0${content}`).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * The next due time after a poll that was due at `due` and started at `started`: one interval on,
 * or, for a poll that started more than an interval late, the first time on the task's own phase
 * after its start. Missed intervals are not polled again one by one (one poll reads everything
 * since the cursor), and no two starts are more than an interval apart.
 */
export function nextDue(due: number, started: number, intervalMs: number): number {
  return due + intervalMs * Math.max(1, Math.ceil((started - due) / intervalMs));
}

/**
 * At most `size` polls at once. Waiting claims are served oldest due first. While a poll sleeps on
 * the API (Retry-After, backoff, the rate budget), it gives its slot up (hook()) and queues again
 * with its original claim afterwards, so a throttled or failing tenant never holds a slot for long.
 */
export class PollSlots {
  private running = 0;
  private readonly waiting: (Claim & { go: () => void })[] = [];
  private opened = false;

  constructor(readonly size: number) {}

  /** Polls running now (sleeping ones not counted). */
  get busy(): number {
    return this.running;
  }

  /** Claims waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  take(claim: Claim): Promise<void> {
    if (this.opened || this.running < this.size) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((go) => {
      const at = this.waiting.findIndex((w) => w.due > claim.due || (w.due === claim.due && w.tie > claim.tie));
      this.waiting.splice(at === -1 ? this.waiting.length : at, 0, { ...claim, go });
    });
  }

  give(): void {
    this.running--;
    while (this.running < this.size && this.waiting.length) {
      this.running++;
      this.waiting.shift()!.go();
    }
  }

  /** Stopping: every claim, waiting or to come, goes through at once (the polls then end at their next step). */
  open(): void {
    this.opened = true;
    for (const w of this.waiting.splice(0)) {
      this.running++;
      w.go();
    }
  }

  /** The wait hook of a poll holding a slot under `claim`: the slot is free while the poll sleeps. */
  hook(claim: Claim): WaitHook {
    let sleeping = false;
    return async (wait) => {
      // a wait inside a wait (a budget queue behind a sleep) has already given the slot up
      if (sleeping) return wait();
      sleeping = true;
      this.give();
      try {
        return await wait();
      } finally {
        await this.take(claim);
        sleeping = false;
      }
    };
  }
}
