/** Waits until `cond` holds (it may be async), or fails naming what did not happen: a liveness bound, not a timing assertion. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; !(await cond()); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`not within ${ms / 1000} s: ${what}`);
  }
}
