import type pg from 'pg';
import type { CollectorHooks, TaskState } from '../collect/collector.js';
import type { ContentType } from '../config/load.js';
import type { Logger } from '../log.js';
import type { ContentStatus, StatusStore } from '../status/store.js';

/**
 * Replicas on PostgreSQL: each one polls only its share of the tasks, so its own status.json would
 * show the others' tasks as never polled. After each poll, a replica writes that task's status to
 * the shared table (unless a newer one is there) and takes every newer entry from it into its
 * StatusStore, which then saves the whole fleet's view to its status.json: the status records, the
 * sidecar's GET /v1/status and `test` read it as with one collector.
 */
export class PgStatusMirror {
  constructor(
    private readonly pool: pg.Pool,
    private readonly status: StatusStore,
    private readonly logger: Logger,
  ) {}

  /** Hooks to combine after statusHooks() (which records the poll in the StatusStore first). */
  hooks(): CollectorHooks {
    const sync = (s: TaskState) => void this.sync(s.connector, s.content).catch((e) => this.logger.warn({ err: e }, 'status not shared with the other replicas'));
    return { onPollDone: sync, onPollFailed: sync };
  }

  /** Also takes the others' newer entries every `ms` (a replica may poll nothing for an interval); returns the stop. */
  start(ms: number): () => void {
    const timer = setInterval(() => void this.sync().catch((e) => this.logger.debug({ err: e }, 'status of the other replicas not read')), ms);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Shares this replica's entry of a task (when given), then takes every newer entry of the others. */
  async sync(connector?: string, content?: ContentType): Promise<void> {
    const mine = connector && content ? this.status.read().connectors[connector]?.contentTypes[content] : undefined;
    if (mine) {
      await this.pool.query(
        `INSERT INTO defender_fluent_status (connector, content, status) VALUES ($1, $2, $3::json)
         ON CONFLICT (connector, content) DO UPDATE SET status = EXCLUDED.status
         WHERE coalesce(defender_fluent_status.status->>'lastAttempt', '') <= coalesce(EXCLUDED.status->>'lastAttempt', '')`,
        [connector, content, JSON.stringify(mine)],
      );
    }
    const { rows } = await this.pool.query<{ connector: string; content: ContentType; status: ContentStatus }>('SELECT connector, content, status FROM defender_fluent_status');
    let changed = false;
    for (const r of rows) changed = this.status.adopt(r.connector, r.content, r.status) || changed;
    if (changed) this.status.save();
  }
}
