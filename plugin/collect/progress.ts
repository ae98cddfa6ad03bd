import type { CollectorHooks, TaskState } from './collector.js';

/**
 * One line per content type as pages are delivered, for a person watching (the demo, a first run):
 * `acme-mde alerts: 12 pages, 120 000 records, 48 210/s, cursor 2026-03-01T12:00:00.000Z`.
 */
export function progressHooks(out: NodeJS.WritableStream = process.stderr, now: () => number = Date.now): CollectorHooks {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const line = (s: TaskState, text: string) => out.write(`${s.connector} ${s.content}: ${text}\n`);
  return {
    onProgress(s, p) {
      const secs = Math.max(0.001, (now() - (s.lastStart ?? now())) / 1000);
      line(s, `${fmt(p.pages)} page${p.pages === 1 ? '' : 's'}, ${fmt(p.records)} records, ${fmt(p.records / secs)}/s, cursor ${p.cursor}`);
    },
    onPollDone(s, r) {
      line(s, `poll done: ${fmt(r.records)} records in ${fmt(r.pages)} page${r.pages === 1 ? '' : 's'}; cursor ${r.cursor}`);
    },
    onPollFailed(s) {
      line(s, `poll failed (${s.lastError?.class}): ${s.lastError?.message}; the cursor did not move`);
    },
  };
}
