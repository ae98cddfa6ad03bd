/** Bounded retries: 429 waits Retry-After; 5xx, timeouts and resets back off exponentially with full jitter. */
export const retryPolicy = {
  maxTransientRetries: 5,
  maxThrottleRetries: 8,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  /** used when a 429 carries no usable Retry-After */
  defaultRetryAfterMs: 30_000,
};

export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(retryPolicy.maxDelayMs, retryPolicy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** Retry-After is seconds or an HTTP date (RFC 9110); anything else → undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (!Number.isNaN(date)) return Math.max(0, date - now);
  return undefined;
}
