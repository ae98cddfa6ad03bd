// Response actions on one connector's tenant: isolate, unisolate, read actions, derive isolation
// state. Facts: defender-api.md §6 (isolate-machine.md, unisolate-machine.md, machineaction.md,
// get-machineactions-collection.md).
import type { RequestOptions } from './client.js';
import { DefenderApiError } from './errors.js';

/** Defender's machine id: 40 hex characters (never aadDeviceId, never a host name). */
export const machineIdPattern = /^[0-9a-fA-F]{40}$/;
/** Alert ids: da638853917402611234_-1187734598, 121688558380765161_2136280442; nothing else reaches a URL path. */
export const alertIdPattern = /^[A-Za-z0-9_-]{1,128}$/;
/** Machine action ids are GUIDs; anything else never reaches a URL path. */
export const actionIdPattern = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export type ActionStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed' | 'TimeOut' | 'Cancelled';
export const actionStatuses: readonly ActionStatus[] = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled'];
export const finalStatuses: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);
export type IsolationType = 'Full' | 'Selective';
export type ActionType = 'Isolate' | 'Unisolate' | ResponseType;

/**
 * The machine response actions besides isolation (run-av-scan.md, stop-and-quarantine-file.md,
 * restrict-code-execution.md, unrestrict-code-execution.md, collect-investigation-package.md):
 * POST /api/machines/{id}/<path> with a Comment, 201 and a MachineAction, 100 calls/min and
 * 1 500/h; `permission` is what a 403 means.
 */
export const responseActions = {
  RunAntiVirusScan: { path: 'runAntiVirusScan', permission: 'Machine.Scan', what: 'running an antivirus scan on' },
  StopAndQuarantineFile: { path: 'StopAndQuarantineFile', permission: 'Machine.StopAndQuarantine', what: 'stopping and quarantining a file on' },
  RestrictCodeExecution: { path: 'restrictCodeExecution', permission: 'Machine.RestrictExecution', what: 'restricting app execution on' },
  UnrestrictCodeExecution: { path: 'unrestrictCodeExecution', permission: 'Machine.RestrictExecution', what: 'removing the app execution restriction of' },
  CollectInvestigationPackage: { path: 'collectInvestigationPackage', permission: 'Machine.CollectForensics', what: 'collecting an investigation package from' },
} as const;
export type ResponseType = keyof typeof responseActions;
const actionTypes: readonly string[] = ['Isolate', 'Unisolate', ...Object.keys(responseActions)];

/** The fields of a MachineAction we read (schemas/defender/machine-action.schema.json has them all). */
export interface MachineAction {
  id: string;
  type: string;
  status: string;
  machineId?: string | null;
  scope?: string | null;
  requestor?: string | null;
  requestorComment?: string | null;
  computerDnsName?: string | null;
  creationDateTimeUtc?: string | null;
  lastUpdateDateTimeUtc?: string | null;
  lastUpdateTimeUtc?: string | null;
  [k: string]: unknown;
}

/** What we need of DefenderClient (plugin/defender/client.ts); tests and the sidecar pass the real one. */
export interface ActionClient {
  readonly connector: { name: string };
  request<T = unknown>(opts: RequestOptions): Promise<{ status: number; body: T }>;
}

export type MachineActionErrorCode =
  | 'invalid_machine_id'
  | 'invalid_action_id'
  | 'invalid_alert_id'
  | 'not_found'
  | 'defender_permission'
  | 'conflict'
  | 'throttled'
  | 'defender_error'
  | 'malformed'
  | 'not_ours';

/** A failure the sidecar turns into an HTTP answer: httpStatus for its client, a message without secrets. */
export class MachineActionError extends Error {
  readonly code: MachineActionErrorCode;
  readonly httpStatus: number;
  readonly retryAfterMs?: number;
  readonly errorClass?: string;

  constructor(message: string, opts: { code: MachineActionErrorCode; httpStatus: number; retryAfterMs?: number; errorClass?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MachineActionError';
    this.code = opts.code;
    this.httpStatus = opts.httpStatus;
    this.retryAfterMs = opts.retryAfterMs;
    this.errorClass = opts.errorClass;
  }
}

export function isMachineId(value: unknown): value is string {
  return typeof value === 'string' && machineIdPattern.test(value);
}

function assertMachineId(id: string): string {
  if (!isMachineId(id)) {
    throw new MachineActionError(`machine id must be 40 hex characters (Defender machine id), got ${JSON.stringify(String(id).slice(0, 64))}`, {
      code: 'invalid_machine_id',
      httpStatus: 400,
    });
  }
  // Defender ids are lower-case hex; normalising keeps the single-flight key and filters consistent.
  return id.toLowerCase();
}

function isConflict(e: unknown): boolean {
  return e instanceof DefenderApiError && e.status === 400 && (e.code === 'ActiveRequestAlreadyExists' || /already in progress/i.test(e.message));
}

/** Translates a Defender failure; `permission` names what a 403 means for this call. */
export function translate(e: unknown, permission: string, what: string): MachineActionError {
  if (e instanceof MachineActionError) return e;
  if (e instanceof DefenderApiError) {
    if (e.status === 403) {
      return new MachineActionError(
        `Defender refused ${what} (403 Forbidden): the app registration lacks the ${permission} application permission (APIs my organization uses → WindowsDefenderATP → ${permission}, then grant admin consent)${e.target ? `; correlation id ${e.target}` : ''}`,
        { code: 'defender_permission', httpStatus: 502, errorClass: e.errorClass, cause: e },
      );
    }
    if (e.status === 404) return new MachineActionError(`Defender: ${what}: not found${e.target ? ` (correlation id ${e.target})` : ''}`, { code: 'not_found', httpStatus: 404, errorClass: e.errorClass, cause: e });
    if (e.status === 429) {
      return new MachineActionError(`Defender throttled ${what} (429); retry later`, { code: 'throttled', httpStatus: 503, retryAfterMs: e.retryAfterMs, errorClass: e.errorClass, cause: e });
    }
    return new MachineActionError(`Defender: ${what} failed: ${e.message}`, { code: 'defender_error', httpStatus: 502, errorClass: e.errorClass, cause: e });
  }
  const err = e as { message?: string; errorClass?: string };
  return new MachineActionError(`${what} failed: ${err?.message ?? String(e)}`, { code: 'defender_error', httpStatus: 502, errorClass: err?.errorClass, cause: e });
}

function checkAction(body: unknown, what: string): MachineAction {
  const a = body as MachineAction | undefined;
  if (!a || typeof a !== 'object' || typeof a.id !== 'string' || typeof a.status !== 'string' || typeof a.type !== 'string') {
    throw new MachineActionError(`Defender: ${what}: the answer is not a machine action (no id, type or status)`, { code: 'malformed', httpStatus: 502 });
  }
  return a;
}

function created(a: MachineAction): number {
  return Date.parse(a.creationDateTimeUtc ?? '') || 0;
}

/** Completion time: the entity doc spells it lastUpdateDateTimeUtc, the list examples lastUpdateTimeUtc. */
function updated(a: MachineAction): number {
  return Date.parse(a.lastUpdateDateTimeUtc ?? a.lastUpdateTimeUtc ?? '') || created(a);
}

export interface ActionResult {
  action: MachineAction;
  /** false: an isolation/release already pending or in progress was returned instead of a new one */
  created: boolean;
}

export type Isolation = 'isolated' | 'not_isolated' | 'pending';

export interface IsolationState {
  machineId: string;
  isolation: Isolation;
  /** the non-final Isolate/Unisolate action when pending */
  pending?: MachineAction;
  /** the succeeded action the state derives from (none: never isolated through Defender) */
  basis?: MachineAction;
  lastIsolate?: MachineAction;
  lastRelease?: MachineAction;
}

/**
 * Derives a machine's isolation from its Isolate and Unisolate actions. A pending one wins
 * ('pending'); otherwise the succeeded action that completed last decides: a duplicate isolate can
 * finish after a later unisolate (microsoft-365-docs #5903), so completion time, not creation time.
 * Failed, TimeOut and Cancelled actions change nothing.
 */
export function deriveIsolation(machineId: string, list: MachineAction[]): IsolationState {
  const relevant = list.filter((a) => a.type === 'Isolate' || a.type === 'Unisolate');
  const byCreation = [...relevant].sort((a, b) => created(b) - created(a));
  const pending = byCreation.find((a) => !finalStatuses.has(a.status));
  const succeeded = relevant.filter((a) => a.status === 'Succeeded').sort((a, b) => updated(b) - updated(a));
  const basis = succeeded[0];
  const state: IsolationState = {
    machineId,
    isolation: pending ? 'pending' : basis?.type === 'Isolate' ? 'isolated' : 'not_isolated',
    pending,
    basis,
    lastIsolate: byCreation.find((a) => a.type === 'Isolate'),
    lastRelease: byCreation.find((a) => a.type === 'Unisolate'),
  };
  return state;
}

/**
 * Isolate / unisolate with idempotency. Concurrent calls for one machine share one in-flight call
 * (single-flight), and an action this process started is returned while Defender still reports it
 * Pending or InProgress. Across processes and restarts, Defender's own 400 "Action is already in
 * progress" / ActiveRequestAlreadyExists is answered by looking the pending action up.
 *
 * POSTs go out with the client's default retry: DefenderClient repeats a POST only after a 429
 * (Retry-After; a throttled call was not executed) or one 401 re-authentication (refused, not
 * executed); never after a timeout, reset or 5xx, which may have created an action.
 */
export class MachineActions {
  private readonly inflight = new Map<string, Promise<ActionResult>>();
  private readonly started = new Map<string, string>();
  /** ids of actions already returned by a POST (bounded), to tell a re-delivered pending action from a new one */
  private readonly seen = new Set<string>();

  constructor(readonly client: ActionClient) {}

  isolate(machineId: string, opts: { comment: string; isolationType?: IsolationType }): Promise<ActionResult> {
    const id = assertMachineId(machineId);
    return this.singleFlight('Isolate', id, () =>
      this.post(id, 'Isolate', `/api/machines/${id}/isolate`, { Comment: opts.comment, IsolationType: opts.isolationType ?? 'Full' }),
    );
  }

  unisolate(machineId: string, opts: { comment: string }): Promise<ActionResult> {
    const id = assertMachineId(machineId);
    return this.singleFlight('Unisolate', id, () => this.post(id, 'Unisolate', `/api/machines/${id}/unisolate`, { Comment: opts.comment }));
  }

  /** A scan, quarantine, app restriction or package collection: one pending action per machine and type, as for isolation. */
  respond(type: ResponseType, machineId: string, body: { Comment: string } & Record<string, string>): Promise<ActionResult> {
    const id = assertMachineId(machineId);
    return this.singleFlight(type, id, () => this.post(id, type, `/api/machines/${id}/${responseActions[type].path}`, body));
  }

  /** POST /api/machines/{id}/tags {Value, Action} (add-or-remove-machine-tags.md): the machine's tags afterwards; adding a present tag or removing an absent one changes nothing. */
  async tag(machineId: string, tag: string, action: 'Add' | 'Remove'): Promise<string[]> {
    const id = assertMachineId(machineId);
    try {
      const res = await this.client.request<{ id?: unknown; machineTags?: unknown }>({ method: 'POST', path: `/api/machines/${id}/tags`, body: { Value: tag, Action: action } });
      const tags = res.body?.machineTags;
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new MachineActionError(`Defender: tagging machine ${id}: the answer has no machineTags list`, { code: 'malformed', httpStatus: 502 });
      return tags as string[];
    } catch (e) {
      throw translate(e, 'Machine.ReadWrite.All', `${action === 'Add' ? 'adding' : 'removing'} tag ${JSON.stringify(tag)} ${action === 'Add' ? 'to' : 'from'} machine ${id}`);
    }
  }

  /** PATCH /api/alerts/{id} (update-alert.md): status, assignedTo, classification, determination and/or a comment; Defender answers with the updated alert. */
  async updateAlert(alertId: string, patch: Record<string, string>): Promise<Record<string, unknown>> {
    if (!alertIdPattern.test(alertId)) throw new MachineActionError(`alert id must be letters, digits, _ and - (e.g. da638853917402611234_-1187734598), got ${JSON.stringify(alertId.slice(0, 64))}`, { code: 'invalid_alert_id', httpStatus: 400 });
    try {
      const res = await this.client.request<Record<string, unknown>>({ method: 'PATCH', path: `/api/alerts/${alertId}`, body: patch });
      if (!res.body || typeof res.body.id !== 'string') throw new MachineActionError(`Defender: updating alert ${alertId}: the answer is not an alert`, { code: 'malformed', httpStatus: 502 });
      return res.body;
    } catch (e) {
      throw translate(e, 'Alert.ReadWrite.All', `updating alert ${alertId}`);
    }
  }

  /** GET /api/machineactions/{id}/GetPackageUri: the investigation package's download link (valid a limited time), once the collection succeeded. */
  async packageUri(actionId: string): Promise<string> {
    if (!actionIdPattern.test(actionId)) {
      throw new MachineActionError(`action id must be a GUID, got ${JSON.stringify(actionId.slice(0, 64))}`, { code: 'invalid_action_id', httpStatus: 400 });
    }
    try {
      const res = await this.client.request<{ value?: unknown }>({ path: `/api/machineactions/${actionId}/GetPackageUri` });
      if (typeof res.body?.value !== 'string') throw new MachineActionError(`Defender: package link of ${actionId}: the answer has no value`, { code: 'malformed', httpStatus: 502 });
      return res.body.value;
    } catch (e) {
      throw translate(e, 'Machine.Read.All', `reading the investigation package link of action ${actionId}`);
    }
  }

  async getAction(actionId: string): Promise<MachineAction> {
    if (!actionIdPattern.test(actionId)) {
      throw new MachineActionError(`action id must be a GUID, got ${JSON.stringify(actionId.slice(0, 64))}`, { code: 'invalid_action_id', httpStatus: 400 });
    }
    try {
      const res = await this.client.request<unknown>({ path: `/api/machineactions/${actionId}` });
      return checkAction(res.body, `GET machine action ${actionId}`);
    } catch (e) {
      throw translate(e, 'Machine.Read.All', `reading machine action ${actionId}`);
    }
  }

  /** GET /api/machineactions with a $filter built from checked values only. */
  async listActions(filter: { machineId?: string; type?: ActionType; status?: ActionStatus }, top = 1000): Promise<MachineAction[]> {
    const parts: string[] = [];
    if (filter.machineId !== undefined) parts.push(`machineId eq '${assertMachineId(filter.machineId)}'`);
    if (filter.type !== undefined) {
      if (!actionTypes.includes(filter.type)) throw new MachineActionError(`unsupported action type ${filter.type}`, { code: 'defender_error', httpStatus: 400 });
      parts.push(`type eq '${filter.type}'`);
    }
    if (filter.status !== undefined) {
      if (!actionStatuses.includes(filter.status)) throw new MachineActionError(`unsupported action status ${filter.status}`, { code: 'defender_error', httpStatus: 400 });
      parts.push(`status eq '${filter.status}'`);
    }
    const query: Record<string, string | number> = { $top: top };
    if (parts.length) query.$filter = parts.join(' and ');
    try {
      const res = await this.client.request<{ value?: unknown }>({ path: '/api/machineactions', query });
      const value = res.body?.value;
      if (!Array.isArray(value)) throw new MachineActionError('Defender: GET /api/machineactions: the answer has no value array', { code: 'malformed', httpStatus: 502 });
      return value.map((a) => checkAction(a, 'GET /api/machineactions'));
    } catch (e) {
      throw translate(e, 'Machine.Read.All', 'listing machine actions');
    }
  }

  /** The newest Pending, then InProgress, action of a type for a machine (two plain filters: no OData grouping needed). */
  async findActive(machineId: string, type: ActionType): Promise<MachineAction | undefined> {
    for (const status of ['Pending', 'InProgress'] as const) {
      const list = await this.listActions({ machineId, type, status });
      const newest = list.sort((a, b) => created(b) - created(a))[0];
      if (newest) return newest;
    }
    return undefined;
  }

  async isolationState(machineId: string): Promise<IsolationState> {
    const id = assertMachineId(machineId);
    const [isolates, releases] = await Promise.all([this.listActions({ machineId: id, type: 'Isolate' }), this.listActions({ machineId: id, type: 'Unisolate' })]);
    return deriveIsolation(id, [...isolates, ...releases]);
  }

  /** GET /api/machines/{id}: used for machineTags (the exclusion tag), only ever by machine id. */
  async getMachine(machineId: string): Promise<{ id: string; machineTags?: string[]; [k: string]: unknown }> {
    const id = assertMachineId(machineId);
    try {
      const res = await this.client.request<{ id?: unknown; machineTags?: unknown }>({ path: `/api/machines/${id}` });
      const m = res.body;
      if (!m || typeof m !== 'object' || typeof m.id !== 'string') throw new MachineActionError(`Defender: GET machine ${id}: the answer is not a machine`, { code: 'malformed', httpStatus: 502 });
      if (m.machineTags !== undefined && m.machineTags !== null && !(Array.isArray(m.machineTags) && m.machineTags.every((t) => typeof t === 'string'))) {
        throw new MachineActionError(`Defender: GET machine ${id}: machineTags is not a list of strings`, { code: 'malformed', httpStatus: 502 });
      }
      return m as { id: string; machineTags?: string[] };
    } catch (e) {
      throw translate(e, 'Machine.Read.All', `reading machine ${id}`);
    }
  }

  private singleFlight(type: ActionType, id: string, run: () => Promise<ActionResult>): Promise<ActionResult> {
    const key = `${type}:${id}`;
    const running = this.inflight.get(key);
    if (running) return running.then((r) => ({ ...r, created: false }));
    const p = (async () => {
      const known = await this.knownActive(key);
      return known ? { action: known, created: false } : run();
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** The action this process started for key, if Defender still reports it Pending/InProgress. */
  private async knownActive(key: string): Promise<MachineAction | undefined> {
    const actionId = this.started.get(key);
    if (!actionId) return undefined;
    const action = await this.getAction(actionId);
    if (finalStatuses.has(action.status)) {
      this.started.delete(key);
      return undefined;
    }
    return action;
  }

  private remember(actionId: string): void {
    this.seen.add(actionId);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.values().next().value as string);
  }

  private async post(id: string, type: ActionType, path: string, body: Record<string, string>): Promise<ActionResult> {
    const what = type === 'Isolate' ? `isolating machine ${id}` : type === 'Unisolate' ? `releasing machine ${id} from isolation` : `${responseActions[type].what} machine ${id}`;
    const permission = type === 'Isolate' || type === 'Unisolate' ? 'Machine.Isolate' : responseActions[type].permission;
    try {
      const res = await this.client.request<unknown>({ method: 'POST', path, body });
      const action = checkAction(res.body, what);
      this.started.set(`${type}:${id}`, action.id);
      // Defender may answer 201 with the already-pending action (defender-api.md §6.3): dedupe by id.
      const isNew = !this.seen.has(action.id);
      this.remember(action.id);
      return { action, created: isNew };
    } catch (e) {
      if (isConflict(e)) {
        const active = await this.findActive(id, type);
        if (active) {
          this.started.set(`${type}:${id}`, active.id);
          this.remember(active.id);
          return { action: active, created: false };
        }
        throw new MachineActionError(
          `Defender reports another action already in progress for machine ${id}, and no pending ${type} action was found (perhaps ${type === 'Isolate' ? 'a release' : type === 'Unisolate' ? 'an isolation' : 'another action'} is pending); retry when it has finished`,
          { code: 'conflict', httpStatus: 409, errorClass: 'bad_request', cause: e },
        );
      }
      if (mayHaveActed(e)) {
        // The answer was lost (cut, malformed, timed out, reset, 5xx) but the action may exist: look
        // before reporting a failure, or a machine isolated a moment ago is audited as not isolated
        // and the next request asks again.
        const active = await this.findActive(id, type).catch(() => undefined);
        if (active) {
          this.started.set(`${type}:${id}`, active.id);
          const isNew = !this.seen.has(active.id);
          this.remember(active.id);
          return { action: active, created: isNew };
        }
      }
      throw translate(e, permission, what);
    }
  }
}

/** A POST failure after which Defender may still have created the action. */
function mayHaveActed(e: unknown): boolean {
  if (e instanceof MachineActionError) return e.code === 'malformed';
  if (!(e instanceof DefenderApiError)) return false;
  return e.errorClass === 'malformed' || e.errorClass === 'timeout' || e.errorClass === 'network' || e.errorClass === 'server';
}
