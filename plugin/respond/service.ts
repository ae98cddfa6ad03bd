import type { Config, Connector } from '../config/load.js';
import { finalStatuses, MachineActionError, MachineActions, type ActionResult, type MachineAction, type ResponseType } from '../defender/machine-actions.js';
import { redact, type Logger } from '../log.js';
import { actions as actionsMetric } from '../status/metrics.js';
import { connectorHealth, readStatusFile } from '../status/store.js';
import { AuditLog, type AuditEntry } from './audit.js';
import { mayAct, mayUse, type Caller } from './auth.js';
import { RequestError } from './body.js';
import { CapLedger, type CapEntry } from './cap-ledger.js';
import { IsolationCaps, policyWithDefaults, screenAlert, type Policy, type Reservation } from './policy.js';
import { checkRecordOwner, machineIdFrom } from './target.js';
import { alertRecordProblems, checkAlertUpdateRequest, checkContainRequest, checkIndicatorRequest, checkReleaseRequest, checkResponseActionRequest, checkTagRequest } from './validate.js';
import { Indicators, indicatorTypes } from '../defender/indicators.js';

/** POST /v1/actions/<name> beside contain and release: the machine action each one asks Defender for. */
export const responseActionNames = {
  scan: 'RunAntiVirusScan',
  quarantine: 'StopAndQuarantineFile',
  restrict: 'RestrictCodeExecution',
  unrestrict: 'UnrestrictCodeExecution',
  'collect-package': 'CollectInvestigationPackage',
} as const satisfies Record<string, ResponseType>;
export type ResponseActionName = keyof typeof responseActionNames;

/** Per-request facts; `audit` collects what the request named so a refusal is audited with it. */
export interface RequestContext {
  requestId: string;
  remoteAddress?: string;
  method: string;
  path: string;
  caller?: Caller;
  audit: Partial<AuditEntry>;
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** The part of a machine action a caller sees. */
function actionView(a: MachineAction): Record<string, unknown> {
  return {
    id: a.id,
    type: a.type,
    status: a.status,
    final: finalStatuses.has(a.status),
    succeeded: a.status === 'Succeeded',
    machineId: a.machineId ?? undefined,
    computerDnsName: a.computerDnsName ?? undefined,
    scope: a.scope ?? undefined,
    requestor: a.requestor ?? undefined,
    requestorComment: a.requestorComment ?? undefined,
    creationDateTimeUtc: a.creationDateTimeUtc ?? undefined,
    lastUpdateDateTimeUtc: a.lastUpdateDateTimeUtc ?? a.lastUpdateTimeUtc ?? undefined,
  };
}

export type AutoStatus = 'accepted' | 'existing' | 'duplicate' | 'dry_run' | 'skipped' | 'refused' | 'rejected' | 'error';

export interface AutoResult {
  index: number;
  status: AutoStatus;
  httpStatus: number;
  code?: string;
  reason?: string;
  connector?: string;
  machineId?: string;
  alertId?: string;
  action?: Record<string, unknown>;
  retryAfterMs?: number;
}

const hour = 3_600_000;
const isDone = (s: AutoStatus) => s === 'accepted' || s === 'existing' || s === 'dry_run' || s === 'duplicate';

/**
 * What the sidecar does, independent of HTTP: contain, release, action status, isolation state,
 * guarded automated containment, connector status. Every acting call and every refusal is audited.
 */
export class RespondService {
  readonly audit: AuditLog;
  readonly policy: Policy;
  readonly caps: IsolationCaps;
  private readonly ledger: CapLedger;
  private readonly connectors = new Map<string, Connector>();
  private readonly machineActions = new Map<string, MachineActions>();
  /** automated containment per connector:machine: in flight, or done within the hour */
  private readonly autoFlights = new Map<string, Promise<AutoResult>>();
  private readonly autoDone = new Map<string, { at: number; result: AutoResult }>();
  /** action ids whose final outcome has been audited */
  private readonly finalSeen = new Set<string>();
  private readonly watchers = new Map<string, NodeJS.Timeout>();
  private readonly watchIntervalMs: number;
  private readonly maxWatchMs: number;
  private readonly logger?: Logger;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly config: Config,
    opts: { actions: Map<string, MachineActions>; audit: AuditLog; logger?: Logger; now?: () => number; watchIntervalMs?: number; maxWatchMs?: number },
  ) {
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger;
    this.watchIntervalMs = opts.watchIntervalMs ?? 60_000;
    this.maxWatchMs = opts.maxWatchMs ?? 4 * 3_600_000;
    for (const c of config.connectors) if (c.functions.includes('respond')) this.connectors.set(c.name, c);
    this.machineActions = opts.actions;
    this.audit = opts.audit;
    this.policy = policyWithDefaults(config.respond?.auto);
    this.caps = new IsolationCaps(this.policy, this.now);
    this.ledger = new CapLedger(config.stateDir, this.now);
  }

  /**
   * Restores the last hour of automated isolations (caps and per-machine dedupe) from the caps'
   * own file, so neither a restart nor a rotated audit.log resets them. Without that file (state
   * of an older version) the audit log is read, and what it held is written to the file.
   */
  async restoreCaps(): Promise<{ restored: number; from: 'ledger' | 'audit' }> {
    const saved = this.ledger.load();
    if (saved) return { restored: saved.filter((e) => this.seedOne(e)).length, from: 'ledger' };
    const entries = await this.audit.recent(this.now() - hour, 'auto_contain');
    let n = 0;
    for (const r of entries) {
      const md = r.microsoft_defender as Record<string, unknown>;
      if (md.outcome !== 'accepted' && md.outcome !== 'dry_run') continue;
      const connector = md.connector as string | undefined;
      const machineId = md.machineId as string | undefined;
      if (!connector || !machineId) continue;
      const entry: CapEntry = { connector, machineId, at: r.timestamp as number, status: md.outcome, dryRun: md.outcome === 'dry_run', action: md.action as CapEntry['action'] };
      if (this.seedOne(entry)) n++;
      this.ledger.put(entry);
    }
    return { restored: n, from: 'audit' };
  }

  /** One saved slot into the caps (and the dedupe when it isolated); false when it no longer counts. */
  private seedOne(e: CapEntry): boolean {
    // Dry runs count only while still dry: after switching to real isolation they isolated nothing.
    if (e.status === 'dry_run' && !this.policy.dryRun) return false;
    this.caps.seed(e.connector, e.at);
    if (e.status === 'accepted' || e.status === 'dry_run') {
      this.autoDone.set(`${e.connector}:${e.machineId}`, {
        at: e.at,
        result: { index: 0, status: e.status, httpStatus: 200, connector: e.connector, machineId: e.machineId, action: e.action },
      });
    }
    return true;
  }

  /** Saves a slot's change (held, or given back); a failure is logged: the entry on file still holds the slot. */
  private keep(entry: CapEntry, held = true): void {
    try {
      if (held) this.ledger.put(entry);
      else this.ledger.drop(entry);
    } catch (e) {
      this.logger?.error({ err: e, file: this.ledger.file }, 'cannot update the automation caps file');
    }
  }

  /** Connectors (names) the caller may act on and that have functions: respond. */
  usableConnectors(caller: Caller): string[] {
    return [...this.connectors.keys()].filter((n) => mayUse(caller, n));
  }

  /** 403 before 404: a scoped token learns nothing about connectors outside its scope. */
  private connector(ctx: RequestContext, name: string | undefined): { connector: Connector; actions: MachineActions } {
    if (!name) {
      const usable = this.usableConnectors(ctx.caller!);
      if (usable.length !== 1) throw new RequestError(400, 'connector_required', 'query parameter connector is required (this token may use several connectors)');
      name = usable[0]!;
    }
    ctx.audit.connector = name;
    if (!mayUse(ctx.caller!, name)) throw new RequestError(403, 'forbidden_connector', `token "${ctx.caller!.name}" may not act on connector ${JSON.stringify(name)}`);
    const connector = this.connectors.get(name);
    const actions = this.machineActions.get(name);
    if (!connector || !actions) throw new RequestError(404, 'unknown_connector', `no connector named ${JSON.stringify(name)} with functions: [respond]`);
    ctx.audit.tenant = connector.tenant;
    return { connector, actions };
  }

  private async write(ctx: RequestContext, entry: Omit<AuditEntry, 'requester' | 'remoteAddress' | 'requestId' | 'method' | 'path'>): Promise<void> {
    await this.audit.write({
      requester: ctx.caller?.name,
      remoteAddress: ctx.remoteAddress,
      requestId: ctx.requestId,
      method: ctx.method,
      path: ctx.path,
      ...entry,
    });
  }

  /**
   * The start of every request that acts beside contain / release: audit event, the token may call
   * the action, the body checked, the connector the token may use, a record only of that connector.
   */
  private open<B extends { connector: string; record?: Record<string, unknown> }>(ctx: RequestContext, event: string, action: string, check: (raw: unknown) => B, raw: unknown): { body: B; connector: Connector; actions: MachineActions } {
    ctx.audit.event = event;
    this.permit(ctx, action);
    const body = check(raw);
    const { connector, actions } = this.connector(ctx, body.connector);
    checkRecordOwner(body.record, connector);
    return { body, connector, actions };
  }

  /** The token's actions list (respond.tokens[].actions) must name the action. */
  private permit(ctx: RequestContext, action: string): void {
    if (!mayAct(ctx.caller!, action)) throw new RequestError(403, 'forbidden_action', `token "${ctx.caller!.name}" may not call ${action} (respond.tokens[].actions: ${ctx.caller!.actions.join(', ')})`);
  }

  async contain(ctx: RequestContext, raw: unknown): Promise<Reply> {
    ctx.audit.event = 'contain';
    this.permit(ctx, 'contain');
    const body = checkContainRequest(raw);
    const { connector, actions } = this.connector(ctx, body.connector);
    ctx.audit.comment = body.comment;
    ctx.audit.isolationType = body.isolationType ?? 'Full';
    checkRecordOwner(body.record, connector);
    const machineId = machineIdFrom(body);
    ctx.audit.machineId = machineId;
    const result = await this.act(ctx, 'contain', () => actions.isolate(machineId, { comment: body.comment, isolationType: body.isolationType ?? 'Full' }));
    return this.actedReply(ctx, 'contain', connector, machineId, result);
  }

  async release(ctx: RequestContext, raw: unknown): Promise<Reply> {
    ctx.audit.event = 'release';
    this.permit(ctx, 'release');
    const body = checkReleaseRequest(raw);
    const { connector, actions } = this.connector(ctx, body.connector);
    ctx.audit.comment = body.comment;
    checkRecordOwner(body.record, connector);
    const machineId = machineIdFrom(body);
    ctx.audit.machineId = machineId;
    const result = await this.act(ctx, 'release', () => actions.unisolate(machineId, { comment: body.comment }));
    return this.actedReply(ctx, 'release', connector, machineId, result);
  }

  /** Antivirus scan, stop and quarantine a file, restrict / unrestrict app execution, collect an investigation package: tracked to a final status like contain. */
  async respondAction(ctx: RequestContext, action: ResponseActionName, raw: unknown): Promise<Reply> {
    const { body, connector, actions } = this.open(ctx, action, action, (b) => checkResponseActionRequest(b, action), raw);
    ctx.audit.comment = body.comment;
    const machineId = machineIdFrom(body);
    ctx.audit.machineId = machineId;
    const extra: Record<string, string> = action === 'scan' ? { ScanType: body.scanType ?? 'Quick' } : action === 'quarantine' ? { Sha1: body.sha1!.toLowerCase() } : {};
    const result = await this.act(ctx, action, () => actions.respond(responseActionNames[action], machineId, { Comment: body.comment, ...extra }));
    return this.actedReply(ctx, action, connector, machineId, result);
  }

  /** POST /v1/indicators: a file hash, IP, URL, domain or certificate indicator, tagged as this product's. */
  async submitIndicator(ctx: RequestContext, raw: unknown): Promise<Reply> {
    const check = (b: unknown) => checkIndicatorRequest(b, { now: this.now(), mayOmitExpiration: ctx.caller!.indicatorsWithoutExpiration ?? false });
    const { body, connector, actions } = this.open(ctx, 'indicator_submit', 'indicators', check, raw);
    const defenderBody: Record<string, unknown> = {
      indicatorValue: body.value,
      indicatorType: indicatorTypes[body.type],
      action: body.action,
      title: body.title,
      description: body.description ?? body.title,
      ...(body.severity ? { severity: body.severity } : {}),
      ...(body.recommendedActions ? { recommendedActions: body.recommendedActions } : {}),
      ...(body.expiration ? { expirationTime: new Date(body.expiration).toISOString() } : {}),
      ...(body.generateAlert !== undefined || body.action === 'Audit' ? { generateAlert: body.generateAlert ?? true } : {}),
    };
    const indicator = await this.act(ctx, 'indicator_submit', () => new Indicators(actions.client).submit(defenderBody));
    await this.accepted(ctx, connector, 'indicator_submit', `${body.action} ${indicatorTypes[body.type]} ${body.value} (indicator ${indicator.id}${body.expiration ? `, expires ${body.expiration}` : ', no expiration'})`);
    return { status: 200, body: { connector: connector.name, indicator } };
  }

  /** DELETE /v1/indicators/{id} */
  async deleteIndicator(ctx: RequestContext, id: string, connectorName: string | undefined): Promise<Reply> {
    ctx.audit.event = 'indicator_delete';
    this.permit(ctx, 'indicators');
    const { connector, actions } = this.connector(ctx, connectorName);
    await this.act(ctx, 'indicator_delete', () => new Indicators(actions.client).remove(id));
    await this.accepted(ctx, connector, 'indicator_delete', `indicator ${id} deleted`);
    return { status: 200, body: { connector: connector.name, id, deleted: true } };
  }

  /** GET /v1/indicators: the indicators this product submitted. */
  async listIndicators(ctx: RequestContext, connectorName: string | undefined): Promise<Reply> {
    ctx.audit.event = 'indicator_list';
    this.permit(ctx, 'indicators');
    const { connector, actions } = this.connector(ctx, connectorName);
    return { status: 200, body: { connector: connector.name, indicators: await new Indicators(actions.client).ours() } };
  }

  /** A change Defender made at once (no action to follow): counted and audited as accepted with what the request named. */
  private async accepted(ctx: RequestContext, connector: Connector, event: string, reason: string): Promise<void> {
    actionsMetric.inc({ connector: connector.name, type: event, outcome: 'accepted' });
    await this.write(ctx, { ...(ctx.audit as AuditEntry), event, outcome: 'accepted', httpStatus: 200, connector: connector.name, tenant: connector.tenant, reason });
  }

  /** POST /v1/actions/tag: add or remove a machine tag (idempotent: Defender keeps one of each). */
  async tag(ctx: RequestContext, raw: unknown): Promise<Reply> {
    const { body, connector, actions } = this.open(ctx, 'tag', 'tag', checkTagRequest, raw);
    const machineId = machineIdFrom(body);
    ctx.audit.machineId = machineId;
    const tags = await this.act(ctx, 'tag', () => actions.tag(machineId, body.tag, body.action === 'add' ? 'Add' : 'Remove'));
    await this.accepted(ctx, connector, 'tag', `${body.action} tag ${JSON.stringify(body.tag)}`);
    return { status: 200, body: { connector: connector.name, machineId, tags } };
  }

  /**
   * POST /v1/actions/update-alert: status, assignee, classification, determination, comment. An
   * alert record is only updated through the connector that collected it (tenant and engid_name);
   * an alertId is looked up in the connector's own tenant only.
   */
  async updateAlert(ctx: RequestContext, raw: unknown): Promise<Reply> {
    const { body, connector, actions } = this.open(ctx, 'update_alert', 'update-alert', checkAlertUpdateRequest, raw);
    const alertId = body.alertId ?? (body.record!.microsoft_defender.id as string);
    ctx.audit.alertId = alertId;
    ctx.audit.comment = body.comment;
    const patch: Record<string, string> = {};
    for (const k of ['status', 'assignedTo', 'classification', 'determination', 'comment'] as const) if (body[k] !== undefined) patch[k] = body[k]!;
    const alert = await this.act(ctx, 'update_alert', () => actions.updateAlert(alertId, patch));
    await this.accepted(ctx, connector, 'update_alert', `set ${Object.keys(patch).join(', ')}`);
    const view = Object.fromEntries(['id', 'status', 'assignedTo', 'classification', 'determination', 'lastUpdateTime'].map((k) => [k, alert[k] ?? undefined]));
    return { status: 200, body: { connector: connector.name, alertId, alert: view } };
  }

  /**
   * POST /v1/fluent/update-alert: update-alert bodies from Fluentd out_http (a JSON array, what
   * `json_array true` sends, or NDJSON), e.g. the alerts the SOC closed. Each one is checked,
   * permitted and audited as POST /v1/actions/update-alert is; a body without `connector` takes
   * ?connector= or its record's engid_name. A Defender failure or throttling answers 503 / 429 so
   * out_http sends the chunk again (setting the same fields twice changes nothing); a refused body
   * is answered, not retried.
   */
  async fluentUpdateAlerts(ctx: RequestContext, items: unknown[], connectorHint: string | undefined): Promise<Reply> {
    ctx.audit.event = 'update_alert';
    this.permit(ctx, 'update-alert');
    if (!Array.isArray(items)) throw new RequestError(400, 'invalid_request', 'expected a JSON array or NDJSON of update-alert requests');
    const results: { index: number; status: 'accepted' | 'rejected' | 'error'; httpStatus: number; connector?: string; alertId?: string; code?: string; reason?: string }[] = [];
    let retryAfterMs: number | undefined;
    for (let index = 0; index < items.length; index++) {
      const sub: RequestContext = { ...ctx, audit: {} };
      const raw = items[index];
      const body = raw && typeof raw === 'object' && !Array.isArray(raw) && !('connector' in raw) ? { ...raw, connector: connectorHint ?? connectorOfRecord((raw as { record?: unknown }).record) } : raw;
      try {
        const r = (await this.updateAlert(sub, body)).body as { connector: string; alertId: string };
        results.push({ index, status: 'accepted', httpStatus: 200, connector: r.connector, alertId: r.alertId });
      } catch (e) {
        if (!(e instanceof RequestError) && !(e instanceof MachineActionError)) throw e;
        const failed = e.httpStatus >= 500 || e.httpStatus === 429;
        if (e.httpStatus === 429) retryAfterMs = Math.max(retryAfterMs ?? 0, (e instanceof MachineActionError ? e.retryAfterMs : undefined) ?? 60_000);
        const reason = `${e.code}: ${redact(e.message)}`;
        results.push({ index, status: failed ? 'error' : 'rejected', httpStatus: e.httpStatus, connector: sub.audit.connector, alertId: sub.audit.alertId, code: e.code, reason });
        await this.write(sub, { ...(sub.audit as AuditEntry), event: 'update_alert', outcome: e.httpStatus >= 500 ? 'error' : 'refused', httpStatus: e.httpStatus, reason });
      }
    }
    const summary: Record<string, number> = {};
    for (const r of results) summary[r.status] = (summary[r.status] ?? 0) + 1;
    if (retryAfterMs !== undefined) return { status: 429, body: { summary, results }, headers: { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) } };
    if (summary.error) return { status: 503, body: { summary, results }, headers: { 'Retry-After': '30' } };
    return { status: 200, body: { summary, results } };
  }

  /** GET /v1/actions/{id}/package: the investigation package's download link, once its collection succeeded. */
  async packageUri(ctx: RequestContext, actionId: string, connectorName: string | undefined): Promise<Reply> {
    ctx.audit.event = 'package_uri';
    const { connector, actions } = this.connector(ctx, connectorName);
    return { status: 200, body: { connector: connector.name, actionId, uri: await actions.packageUri(actionId) } };
  }

  /** Runs a Defender call; its failure is counted here and audited by the caller of the service. */
  private async act<T = ActionResult>(ctx: RequestContext, type: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      actionsMetric.inc({ connector: ctx.audit.connector ?? '', type, outcome: e instanceof MachineActionError && e.httpStatus < 500 ? 'refused' : 'error' });
      throw e;
    }
  }

  private async actedReply(ctx: RequestContext, type: 'contain' | 'release' | ResponseActionName, connector: Connector, machineId: string, r: ActionResult): Promise<Reply> {
    const outcome = r.created ? 'accepted' : 'existing';
    actionsMetric.inc({ connector: connector.name, type, outcome });
    await this.write(ctx, {
      ...(ctx.audit as AuditEntry),
      event: type,
      outcome,
      httpStatus: 202,
      connector: connector.name,
      tenant: connector.tenant,
      machineId,
      action: { id: r.action.id, type: r.action.type, status: r.action.status },
      reason: r.created ? undefined : `an ${r.action.type} action for this machine is already ${r.action.status}; returned instead of creating another`,
    });
    this.watch(ctx, connector, this.machineActions.get(connector.name)!, r.action.id);
    // 202: Defender accepted (or already had) the action; success is only ever reported once it says Succeeded.
    return { status: 202, body: { connector: connector.name, machineId, created: r.created, action: actionView(r.action) } };
  }

  async action(ctx: RequestContext, actionId: string, connectorName: string | undefined): Promise<Reply> {
    ctx.audit.event = 'action_status';
    const { connector, actions } = this.connector(ctx, connectorName);
    const a = await actions.getAction(actionId);
    await this.recordOutcome(ctx, connector, a);
    return { status: 200, body: { connector: connector.name, action: actionView(a) } };
  }

  /** The first time this process sees an action's final status: count and audit it (Failed/TimeOut/Cancelled as such). */
  private async recordOutcome(ctx: RequestContext, connector: Connector, a: MachineAction): Promise<void> {
    if (!finalStatuses.has(a.status) || this.finalSeen.has(a.id)) return;
    this.finalSeen.add(a.id);
    const timer = this.watchers.get(a.id);
    if (timer) clearTimeout(timer);
    this.watchers.delete(a.id);
    const type = a.type === 'Isolate' ? 'contain' : a.type === 'Unisolate' ? 'release' : (Object.entries(responseActionNames).find(([, t]) => t === a.type)?.[0] ?? a.type);
    actionsMetric.inc({ connector: connector.name, type, outcome: a.status });
    await this.write(ctx, {
      event: 'action_outcome',
      outcome: a.status,
      httpStatus: 200,
      connector: connector.name,
      tenant: connector.tenant,
      machineId: a.machineId ?? undefined,
      action: { id: a.id, type: a.type, status: a.status },
    });
  }

  /**
   * Follows an accepted action until Defender reports a final status, so its outcome is audited
   * even when nobody asks GET /v1/actions/{id}. One GET per interval per pending action; gives up
   * after maxWatchMs (Defender times actions out itself: TimeOut).
   */
  private watch(ctx: RequestContext, connector: Connector, actions: MachineActions, actionId: string): void {
    if (this.watchIntervalMs <= 0 || this.watchers.has(actionId) || this.finalSeen.has(actionId) || this.stopped) return;
    const started = this.now();
    const tick = async () => {
      this.watchers.delete(actionId);
      if (this.stopped) return;
      try {
        const a = await actions.getAction(actionId);
        if (finalStatuses.has(a.status)) return void (await this.recordOutcome({ ...ctx, audit: {} }, connector, a));
      } catch (e) {
        this.logger?.warn({ err: e, actionId, connector: connector.name }, 'cannot read machine action status; will retry');
      }
      if (this.now() - started < this.maxWatchMs) schedule();
    };
    const schedule = () => {
      if (this.stopped) return;
      const t = setTimeout(() => void tick(), this.watchIntervalMs);
      t.unref();
      this.watchers.set(actionId, t);
    };
    schedule();
  }

  /** Stops following actions (server shutdown). */
  stop(): void {
    this.stopped = true;
    for (const t of this.watchers.values()) clearTimeout(t);
    this.watchers.clear();
  }

  async isolation(ctx: RequestContext, machineId: string, connectorName: string | undefined): Promise<Reply> {
    ctx.audit.event = 'isolation_status';
    ctx.audit.machineId = machineId;
    const { connector, actions } = this.connector(ctx, connectorName);
    const s = await actions.isolationState(machineId);
    return {
      status: 200,
      body: {
        connector: connector.name,
        machineId: s.machineId,
        isolation: s.isolation,
        pending: s.pending && actionView(s.pending),
        basis: s.basis && actionView(s.basis),
        lastIsolate: s.lastIsolate && actionView(s.lastIsolate),
        lastRelease: s.lastRelease && actionView(s.lastRelease),
      },
    };
  }

  status(ctx: RequestContext): Reply {
    const file = readStatusFile(this.config.stateDir);
    const now = this.now();
    const connectors = this.config.connectors
      .filter((c) => mayUse(ctx.caller!, c.name) && c.functions.includes('collect'))
      .map((c) => {
        const h = connectorHealth(c, file, now);
        return { ...h, tenant: c.tenant };
      });
    return { status: 200, body: { updatedAt: file?.updatedAt, connectors } };
  }

  /**
   * POST /v1/fluent/contain: alert records from Fluentd out_http, each judged by respond.auto.
   * Records of one payload are handled in order (the cap goes to the earliest); concurrent payloads
   * meet in the per-machine flights and the synchronous cap reservation.
   */
  async autoContain(ctx: RequestContext, records: unknown[], connectorHint: string | undefined): Promise<Reply> {
    ctx.audit.event = 'auto_contain';
    if (!Array.isArray(records)) throw new RequestError(400, 'invalid_request', 'expected a JSON array or NDJSON of alert records');
    const results: AutoResult[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = await this.autoOne(ctx, records[i], i, connectorHint);
      results.push(r);
      await this.write(ctx, {
        event: 'auto_contain',
        outcome: r.status,
        httpStatus: r.httpStatus,
        reason: r.reason,
        connector: r.connector,
        tenant: r.connector ? this.connectors.get(r.connector)?.tenant : undefined,
        machineId: r.machineId,
        alertId: r.alertId,
        dryRun: this.policy.dryRun || undefined,
        isolationType: r.status === 'accepted' || r.status === 'dry_run' ? this.policy.isolationType : undefined,
        action: r.action ? { id: String(r.action.id), type: r.action.type as string | undefined, status: r.action.status as string | undefined } : undefined,
      });
      actionsMetric.inc({ connector: r.connector ?? '', type: 'auto_contain', outcome: r.status });
    }
    const summary: Record<string, number> = {};
    for (const r of results) summary[r.status] = (summary[r.status] ?? 0) + 1;
    const body = { dryRun: this.policy.dryRun, summary, results };
    // A policy refusal (cap reached, excluded, disabled, dry run) is a decision, audited and listed
    // per record: 200, so out_http neither retries it nor moves the chunk aside as an unrecoverable
    // error. Only a record that failed (Defender 5xx or timeout, exclusion check unreadable) must
    // not look delivered: 503 (retryable_response_codes [503] in fluent.conf.example) makes
    // out_http send the chunk again; records already handled come back as duplicates.
    if (results.some((r) => r.status === 'error')) return { status: 503, body, headers: { 'Retry-After': '30' } };
    return { status: 200, body };
  }

  private async autoOne(ctx: RequestContext, raw: unknown, index: number, hint: string | undefined): Promise<AutoResult> {
    const problems = alertRecordProblems(raw);
    if (problems.length) {
      return { index, status: 'rejected', httpStatus: 400, code: 'invalid_record', reason: problems.map((p) => `${p.pointer}: ${p.message}`).join('; ') };
    }
    const rec = raw as Record<string, unknown> & { engid_name: string; microsoft_defender: Record<string, unknown> };
    const md = rec.microsoft_defender;
    const alertId = md.id as string;
    const name = hint ?? rec.engid_name.slice('microsoft_defender_'.length);
    const base = { index, connector: name, alertId };
    let connector: Connector;
    let actions: MachineActions;
    try {
      const sub: RequestContext = { ...ctx, audit: {} };
      ({ connector, actions } = this.connector(sub, name));
      checkRecordOwner(rec, connector, '');
    } catch (e) {
      const err = e as RequestError;
      return { ...base, status: err.httpStatus === 404 ? 'rejected' : 'refused', httpStatus: err.httpStatus, code: err.code, reason: err.message };
    }
    if (!this.policy.enabled) return { ...base, status: 'refused', httpStatus: 403, code: 'auto_disabled', reason: 'automated response is disabled (respond.auto.enabled: false)' };
    const skip = screenAlert(this.policy, { severity: md.severity as string, detectionSource: md.detectionSource as string | undefined, category: md.category as string | undefined });
    if (skip) return { ...base, status: 'skipped', httpStatus: 200, code: 'policy', reason: skip };
    const machineId = md.machineId as string;
    if (!/^[0-9a-fA-F]{40}$/.test(machineId)) {
      return { ...base, status: 'rejected', httpStatus: 400, code: 'invalid_machine_id', reason: '/microsoft_defender/machineId: must be a Defender machine id (40 hex characters)' };
    }
    const id = machineId.toLowerCase();
    const key = `${connector.name}:${id}`;
    const withBase = (r: AutoResult): AutoResult => ({ ...r, ...base, machineId: id });

    const done = this.autoDone.get(key);
    if (done && done.at > this.now() - hour) {
      return withBase({ ...done.result, status: 'duplicate', httpStatus: 200, code: 'already_contained', reason: `machine already contained automatically at ${new Date(done.at).toISOString()} (${done.result.status})` });
    }
    const running = this.autoFlights.get(key);
    if (running) {
      const r = await running;
      return withBase(isDone(r.status) ? { ...r, status: 'duplicate', httpStatus: 200, code: 'already_contained', reason: `same machine as another record handled at the same time (${r.status})` } : r);
    }
    const flight = this.autoFlight(ctx, connector, actions, id, Array.isArray(md.machineTags) ? (md.machineTags as string[]) : undefined);
    this.autoFlights.set(key, flight);
    try {
      const r = await flight;
      if (isDone(r.status)) this.autoDone.set(key, { at: this.now(), result: r });
      return withBase(r);
    } finally {
      this.autoFlights.delete(key);
      for (const [k, v] of this.autoDone) if (v.at <= this.now() - hour) this.autoDone.delete(k);
    }
  }

  private capRefusal(base: Pick<AutoResult, 'index' | 'connector' | 'machineId'>, connector: Connector, slot: Extract<Reservation, { ok: false }>): AutoResult {
    const what = slot.scope === 'connector' ? `maxPerHourPerConnector (${slot.limit}) reached for connector ${connector.name}` : `maxPerHour (${slot.limit}) reached across connectors`;
    return { ...base, status: 'refused', httpStatus: 429, code: 'cap_exceeded', reason: `${what}; not isolated`, retryAfterMs: slot.retryAfterMs };
  }

  private async autoFlight(ctx: RequestContext, connector: Connector, actions: MachineActions, machineId: string, recordTags: string[] | undefined): Promise<AutoResult> {
    const base = { index: 0, connector: connector.name, machineId };
    // Cheap check first: once a cap is full, refuse without spending Defender calls on the tag look-up.
    const early = this.caps.full(connector.name);
    if (early && !early.ok) return this.capRefusal(base, connector, early);
    let tags = recordTags;
    if (!tags) {
      // Alert records carry no machineTags: ask Defender by machine id (never by host name). If
      // that fails, do not isolate: the exclusion cannot be verified.
      try {
        tags = (await actions.getMachine(machineId)).machineTags ?? [];
      } catch (e) {
        const err = e as MachineActionError;
        return { ...base, status: 'error', httpStatus: err.httpStatus ?? 502, code: 'exclusion_check_failed', reason: `cannot read the machine's tags to check excludeTag, so it is not isolated: ${err.message}` };
      }
    }
    if (tags.includes(this.policy.excludeTag)) {
      return { ...base, status: 'skipped', httpStatus: 200, code: 'excluded', reason: `machine has the exclusion tag ${JSON.stringify(this.policy.excludeTag)}` };
    }
    const slot = this.caps.reserve(connector.name);
    if (!slot.ok) return this.capRefusal(base, connector, slot);
    // On file before Defender is asked: a crash during the call still counts against the caps.
    const entry: CapEntry = { connector: connector.name, machineId, at: this.now(), status: this.policy.dryRun ? 'dry_run' : 'reserved', dryRun: this.policy.dryRun };
    try {
      this.ledger.put(entry);
    } catch (e) {
      slot.release();
      return { ...base, status: 'error', httpStatus: 500, code: 'cap_state_unwritable', reason: `cannot record the isolation in ${this.ledger.file}, so nothing is isolated: ${(e as Error).message}` };
    }
    if (this.policy.dryRun) {
      return { ...base, status: 'dry_run', httpStatus: 200, code: 'dry_run', reason: 'would isolate (respond.auto.dryRun: true)' };
    }
    try {
      const r = await actions.isolate(machineId, {
        comment: `defender-fluent automated response (respond.auto) for connector ${connector.name}`,
        isolationType: this.policy.isolationType,
      });
      if (!r.created) {
        slot.release();
        this.keep(entry, false);
      } else {
        entry.status = 'accepted';
        entry.action = { id: r.action.id, type: r.action.type, status: r.action.status };
        this.keep(entry);
      }
      this.watch(ctx, connector, actions, r.action.id);
      return { ...base, status: r.created ? 'accepted' : 'existing', httpStatus: r.created ? 202 : 200, action: actionView(r.action) };
    } catch (e) {
      const err = e as MachineActionError;
      // The slot goes back only when Defender definitely created nothing (a 4xx refusal or 429). A
      // timeout, reset or 5xx may have created an action, so it keeps counting against the cap.
      const definite = ['defender_permission', 'not_found', 'conflict', 'throttled', 'invalid_machine_id'].includes(err.code) || err.errorClass === 'bad_request' || err.errorClass === 'auth';
      if (definite) {
        slot.release();
        this.keep(entry, false);
      } else {
        entry.status = 'error';
        this.keep(entry);
      }
      return { ...base, status: 'error', httpStatus: err.httpStatus ?? 502, code: err.code ?? 'error', reason: err.message, retryAfterMs: err.retryAfterMs };
    }
  }
}

/** The connector that collected an alert record (engid_name microsoft_defender_<name>), if it is one. */
function connectorOfRecord(record: unknown): string | undefined {
  const engid = (record as { engid_name?: unknown } | undefined)?.engid_name;
  return typeof engid === 'string' && engid.startsWith('microsoft_defender_') ? engid.slice('microsoft_defender_'.length) : undefined;
}
