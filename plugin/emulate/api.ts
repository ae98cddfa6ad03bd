// The Defender for Endpoint API handlers: alerts, machines, export-assessment vulnerabilities and
// machine actions. Auth, faults and rate limits are applied before these run (server.ts).
import { ActionBook, type ActionType } from './actions.js';
import { BodyAborted, BodyWriter } from './body.js';
import { alertJson, alertPieces, vulnerabilityJson, type AlertState } from './data.js';
import { jsonType, queryParam, readBody, sendError, sendJson, type Exchange } from './http-util.js';
import { matches, ODataError, parseFilter, parseTopSkip } from './odata.js';
import { Rng } from './prng.js';
import type { Served } from './served.js';
import type { MachineState, World } from './store.js';
import { exportTimestamp, iso7, isoTrimmed, parseDateTimeOffset } from './time.js';

const MAX_TOP = 10_000;
const MAX_PAGE_SIZE = 200_000;
const DEFAULT_PAGE_SIZE = 50_000;
const SIX_HOURS = 6 * 3600_000;
const FOURTEEN_DAYS = 14 * 24 * 3600_000;

export interface ApiContext {
  world: World;
  served: Served;
  actions: ActionBook;
  origin: () => string;
  now: () => number;
  seed: number;
  vulnerabilities: number;
  vulnerabilityChangesPerBatch: number;
  /** page links of an export older than this are refused with 400 (default: never) */
  exportLinkTtlMs: () => number;
  /** list pages (alerts, machines) hold at most `size` items; `nextLink`: link the rest (to the end of the list) even under $top */
  pageCap: { size: number; nextLink: boolean };
}

/** The items of a list page and its nextLink's $skip (null: no link), under $top, the 10 000 limit and the page cap. */
function listPage(ctx: ApiContext, paging: { top: number | null; skip: number }, total: number): { limit: number; nextSkip: number | null } {
  const asked = paging.top ?? MAX_TOP;
  const limit = Math.min(asked, ctx.pageCap.size);
  // Without $top the API caps a page at 10 000 and (as reported for /api/machines) links the rest.
  const linked = paging.top === null || (ctx.pageCap.nextLink && limit < asked);
  return { limit, nextSkip: linked && total > paging.skip + limit ? paging.skip + limit : null };
}

function expired(ctx: ApiContext, token: SkipToken | null): boolean {
  return token?.t !== undefined && ctx.now() - token.t > ctx.exportLinkTtlMs();
}

/** Streams `{"@odata.context":…,"value":[…]` + nextLink; returns true when the whole body went out. */
async function streamPage(x: Exchange, context: string, count: number, item: (i: number) => string | Array<string | Buffer>, nextLink: string | null, onComplete: () => void): Promise<boolean> {
  x.res.writeHead(200, { 'content-type': jsonType, 'odata-version': '4.0' });
  const w = new BodyWriter(x.res, x.cutAfterBytes, x.trickle);
  try {
    await w.write(`{"@odata.context":${JSON.stringify(context)},"value":[`);
    for (let i = 0; i < count; i++) {
      const it = item(i);
      if (typeof it === 'string') await w.write(i ? `,${it}` : it);
      else await w.writeAll(i ? [',', ...it] : it);
    }
    await w.end(nextLink ? `],"@odata.nextLink":${JSON.stringify(nextLink)}}` : ']}', onComplete);
    return true;
  } catch (e) {
    if (e instanceof BodyAborted) return false;
    throw e;
  }
}

function nextLinkWith(x: Exchange, set: Record<string, string>): string {
  const u = new URL(x.url.pathname, x.url.origin);
  for (const [k, v] of x.url.searchParams) if (!(k in set)) u.searchParams.append(k, v);
  for (const [k, v] of Object.entries(set)) u.searchParams.set(k, v);
  return u.toString();
}

function odataFailure(x: Exchange, e: unknown): Promise<boolean> {
  if (e instanceof ODataError) return sendError(x, 400, 'ODataError', e.message);
  throw e;
}

// ---------------------------------------------------------------- alerts

export async function listAlerts(ctx: ApiContext, x: Exchange): Promise<boolean> {
  const q = x.url.searchParams;
  let clauses;
  let paging;
  try {
    const filter = q.get('$filter');
    clauses = filter ? parseFilter(filter, { lastUpdateTime: 'date', alertCreationTime: 'date', status: 'string', id: 'string' }) : [];
    paging = parseTopSkip(q, MAX_TOP);
    const expand = q.get('$expand');
    if (expand !== null && expand.trim().toLowerCase() !== 'evidence') throw new ODataError(`Could not find a property named '${expand}' on type 'Alert' to expand (only 'evidence')`);
  } catch (e) {
    return odataFailure(x, e);
  }
  const withEvidence = q.get('$expand') !== null;
  const matching: AlertState[] = [];
  for (const s of ctx.world.alerts) {
    if (matches(clauses, (f) => (f === 'lastUpdateTime' ? s.lastUpdateMs : f === 'alertCreationTime' ? s.createdMs : f === 'status' ? s.status : s.id))) matching.push(s);
  }
  const { limit, nextSkip } = listPage(ctx, paging, matching.length);
  // Snapshot the page now (still synchronous): updates that land while it streams belong to the next poll.
  const page = matching.slice(paging.skip, paging.skip + limit).map((s) => ({ ...s }));
  const next = nextSkip !== null ? nextLinkWith(x, { $skip: String(nextSkip) }) : null;
  const versions: Array<[string, string]> = page.map((s) => [s.id, isoTrimmed(s.lastUpdateMs)]);
  return streamPage(x, `${ctx.origin()}/api/$metadata#Alerts`, page.length, (i) => alertPieces(ctx.world.alertBase(page[i]!), page[i]!, withEvidence), next, () => ctx.served.addAlerts(versions));
}

export async function getAlert(ctx: ApiContext, x: Exchange, id: string): Promise<boolean> {
  const s = ctx.world.alertById.get(id);
  if (!s) return sendError(x, 404, 'ResourceNotFound', `Alert ${id} was not found`);
  const withEvidence = x.url.searchParams.get('$expand') !== null;
  const entity = alertJson(ctx.world.alertBase(s), s, withEvidence);
  const ok = await sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#Alerts/$entity`, ...(JSON.parse(entity) as object) });
  if (ok) ctx.served.addAlerts([[s.id, isoTrimmed(s.lastUpdateMs)]]);
  return ok;
}

/** The request body as a JSON object; null when it is not one. */
async function readObject(x: Exchange): Promise<Record<string, unknown> | null> {
  try {
    const v: unknown = JSON.parse(await readBody(x.req));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** update-alert.md: the values Status, Classification and Determination take. */
export const alertUpdateValues = {
  status: ['New', 'InProgress', 'Resolved'],
  classification: ['TruePositive', 'InformationalExpectedActivity', 'FalsePositive'],
  determination: ['MultiStagedAttack', 'MaliciousUserActivity', 'CompromisedUser', 'Malware', 'Phishing', 'UnwantedSoftware', 'Other', 'SecurityTesting', 'LineOfBusinessApplication', 'ConfirmedActivity', 'NotMalicious', 'InsufficientData'],
} as const;

/** PATCH /api/alerts/{id}: status, assignedTo, classification, determination and/or a comment (Alert.ReadWrite.All). */
export async function updateAlert(ctx: ApiContext, x: Exchange, id: string, requestor: string): Promise<boolean> {
  const s = ctx.world.alertById.get(id);
  if (!s) return sendError(x, 404, 'ResourceNotFound', `Alert ${id} was not found`);
  const body = await readObject(x);
  if (!body) return sendError(x, 400, 'InvalidRequestBody', 'Request body must be a JSON object');
  const known = ['status', 'assignedTo', 'classification', 'determination', 'comment'];
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length) return sendError(x, 400, 'InvalidRequestBody', `Unknown properties ${unknown.join(', ')} (updatable: ${known.join(', ')}; names are case-sensitive)`);
  if (!Object.keys(body).length) return sendError(x, 400, 'InvalidRequestBody', 'Nothing to update');
  for (const [key, values] of Object.entries(alertUpdateValues)) {
    if (body[key] !== undefined && !(values as readonly string[]).includes(body[key] as string)) return sendError(x, 400, 'InvalidRequestBody', `${key} must be one of ${values.join(', ')}`);
  }
  for (const key of ['assignedTo', 'comment']) if (body[key] !== undefined && typeof body[key] !== 'string') return sendError(x, 400, 'InvalidRequestBody', `${key} must be a string`);
  ctx.world.patchAlert(s, body, requestor, ctx.now());
  return sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#Alerts/$entity`, ...(JSON.parse(alertJson(ctx.world.alertBase(s), s, false)) as object) });
}

// ---------------------------------------------------------------- machines

export function machineEntity(m: MachineState): Record<string, unknown> {
  return { ...m.base.json, lastSeen: iso7(m.lastSeenMs), healthStatus: m.healthStatus, riskScore: m.riskScore, ...(m.tags ? { machineTags: m.tags } : {}) };
}

/** POST /api/machines/{id}/tags {Value, Action: Add|Remove} (add-or-remove-machine-tags.md): the machine with its tags; adding a present tag changes nothing. */
export async function machineTags(ctx: ApiContext, x: Exchange, machineId: string): Promise<boolean> {
  const m = findMachine(ctx, machineId);
  if (!m) return sendError(x, 404, 'ResourceNotFound', `Machine ${machineId} was not found`);
  const body = await readObject(x);
  if (!body) return sendError(x, 400, 'InvalidRequestBody', 'Request body must be a JSON object');
  if (typeof body.Value !== 'string' || !body.Value.trim()) return sendError(x, 400, 'MissingRequiredParameter', "Parameter 'Value' is missing or empty (names are case-sensitive)");
  if (body.Action !== 'Add' && body.Action !== 'Remove') return sendError(x, 400, 'InvalidRequestBody', `Action must be Add or Remove (got ${JSON.stringify(body.Action)})`);
  const tags = new Set(m.tags ?? ((m.base.json.machineTags as string[] | undefined) ?? []));
  if (body.Action === 'Add') tags.add(body.Value);
  else tags.delete(body.Value);
  m.tags = [...tags];
  return sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#Machines/$entity`, ...machineEntity(m) });
}

export async function listMachines(ctx: ApiContext, x: Exchange): Promise<boolean> {
  const q = x.url.searchParams;
  let clauses;
  let paging;
  try {
    const filter = q.get('$filter');
    clauses = filter ? parseFilter(filter, { lastSeen: 'date', firstSeen: 'date', healthStatus: 'string', computerDnsName: 'string', id: 'string', riskScore: 'string', osPlatform: 'string' }) : [];
    paging = parseTopSkip(q, MAX_TOP);
  } catch (e) {
    return odataFailure(x, e);
  }
  // The API answers 404 when the tenant has no (recent) machines at all (common-errors.md).
  if (!ctx.world.machines.length) return sendError(x, 404, 'ResourceNotFound', 'No machines found');
  const matching = ctx.world.machines.filter((m) =>
    matches(clauses, (f) => {
      switch (f) {
        case 'lastSeen':
          return m.lastSeenMs;
        case 'firstSeen':
          return m.base.firstSeenMs;
        case 'healthStatus':
          return m.healthStatus;
        case 'riskScore':
          return m.riskScore;
        case 'osPlatform':
          return m.base.profile.osPlatform;
        case 'computerDnsName':
          return m.base.computerDnsName;
        default:
          return m.base.id;
      }
    }),
  );
  const { limit, nextSkip } = listPage(ctx, paging, matching.length);
  const page = matching.slice(paging.skip, paging.skip + limit).map(machineEntity);
  const next = nextSkip !== null ? nextLinkWith(x, { $skip: String(nextSkip) }) : null;
  return streamPage(x, `${ctx.origin()}/api/$metadata#Machines`, page.length, (i) => JSON.stringify(page[i]), next, () => ctx.served.addMachines(page.map((m) => m.id as string)));
}

function findMachine(ctx: ApiContext, id: string): MachineState | undefined {
  return ctx.world.machineById.get(id.toLowerCase());
}

export async function getMachine(ctx: ApiContext, x: Exchange, id: string): Promise<boolean> {
  const m = findMachine(ctx, id);
  if (!m) return sendError(x, 404, 'ResourceNotFound', `Machine ${id} was not found`);
  const ok = await sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#Machines/$entity`, ...machineEntity(m) });
  if (ok) ctx.served.addMachines([m.base.id]);
  return ok;
}

// ---------------------------------------------------------------- vulnerabilities (export assessment)

interface SkipToken {
  /** offset of the next record */
  o: number;
  /** when the export started (emulator ms): links older than exportLinkTtlMs are refused */
  t?: number;
  /** delta window (ms), pinned by the first page */
  s?: number;
  u?: number;
}

function readSkipToken(raw: string | null): SkipToken | null | 'invalid' {
  if (raw === null) return null;
  try {
    const t = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as SkipToken;
    return Number.isInteger(t.o) && t.o >= 0 ? t : 'invalid';
  } catch {
    return 'invalid';
  }
}

const writeSkipToken = (t: SkipToken) => Buffer.from(JSON.stringify(t)).toString('base64url');

function pageSizeOf(q: URLSearchParams): number | string {
  const raw = queryParam(q, 'pageSize');
  if (raw === null) return DEFAULT_PAGE_SIZE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) return `pageSize must be an integer between 1 and ${MAX_PAGE_SIZE} (got '${raw}')`;
  return n;
}

function vulnerabilityAt(ctx: ApiContext, v: number, extra = ''): { id: string; json: string } {
  const machines = ctx.world.machines;
  const m = machines[v % machines.length]!;
  return vulnerabilityJson(ctx.seed, v, m.base, Math.floor(v / machines.length), ctx.world.opts.startMs, extra);
}

export async function softwareVulnerabilities(ctx: ApiContext, x: Exchange): Promise<boolean> {
  const q = x.url.searchParams;
  const pageSize = pageSizeOf(q);
  if (typeof pageSize === 'string') return sendError(x, 400, 'InvalidInput', pageSize);
  const token = readSkipToken(queryParam(q, '$skiptoken'));
  if (token === 'invalid') return sendError(x, 400, 'InvalidInput', 'Invalid $skiptoken');
  const topRaw = queryParam(q, '$top');
  const top = topRaw === null ? null : Number(topRaw);
  if (top !== null && (!Number.isInteger(top) || top < 0 || top > MAX_PAGE_SIZE)) return sendError(x, 400, 'InvalidInput', `$top must be an integer between 0 and ${MAX_PAGE_SIZE}`);
  if (expired(ctx, token)) return sendError(x, 400, 'InvalidInput', 'The $skiptoken has expired; start the export again');
  const total = ctx.world.machines.length ? ctx.vulnerabilities : 0;
  const offset = token?.o ?? 0;
  const startedAt = token?.t ?? ctx.now();
  const count = Math.max(0, Math.min(top ?? pageSize, total - offset));
  // $top returns one page and no nextLink (get-assessment-software-vulnerabilities.md).
  const next = top === null && offset + count < total ? `${ctx.origin()}/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=${pageSize}&$skiptoken=${writeSkipToken({ o: offset + count, t: startedAt })}` : null;
  const ids: string[] = [];
  const record = ctx.served.vulnerabilityIds !== null;
  return streamPage(
    x,
    `${ctx.origin()}/api/$metadata#Collection(microsoft.windowsDefenderATP.api.AssetVulnerability)`,
    count,
    (i) => {
      const r = vulnerabilityAt(ctx, offset + i);
      if (record) ids.push(r.id);
      return r.json;
    },
    next,
    () => ctx.served.addVulnerabilities(ids, count),
  );
}

export async function vulnerabilityChanges(ctx: ApiContext, x: Exchange): Promise<boolean> {
  const q = x.url.searchParams;
  const pageSize = pageSizeOf(q);
  if (typeof pageSize === 'string') return sendError(x, 400, 'InvalidInput', pageSize);
  const token = readSkipToken(queryParam(q, '$skiptoken'));
  if (token === 'invalid') return sendError(x, 400, 'InvalidInput', 'Invalid $skiptoken');
  if (expired(ctx, token)) return sendError(x, 400, 'InvalidInput', 'The $skiptoken has expired; start the export again');
  const now = ctx.now();
  let sinceMs: number;
  let untilMs: number;
  if (token && token.s !== undefined && token.u !== undefined) {
    sinceMs = token.s;
    untilMs = token.u;
  } else {
    const raw = queryParam(q, 'sinceTime');
    if (!raw) return sendError(x, 400, 'MissingRequiredParameter', 'sinceTime is required');
    const since = parseDateTimeOffset(raw);
    if (!since) return sendError(x, 400, 'InvalidInput', `sinceTime '${raw}' is not an ISO-8601 date and time`);
    if (since.ms < now - FOURTEEN_DAYS) return sendError(x, 400, 'InvalidInput', 'sinceTime must be within the last 14 days');
    sinceMs = since.ms;
    untilMs = now;
  }
  // Changes are produced in 6-hour batches; every batch at or after sinceTime (and not in the future)
  // contributes. Inclusive: a client that passes its last eventTimestamp back gets that batch again.
  const firstBatch = Math.ceil(sinceMs / SIX_HOURS);
  const lastBatch = Math.floor(untilMs / SIX_HOURS);
  const perBatch = ctx.world.machines.length && ctx.vulnerabilities ? ctx.vulnerabilityChangesPerBatch : 0;
  const total = Math.max(0, lastBatch - firstBatch + 1) * perBatch;
  const offset = token?.o ?? 0;
  const count = Math.max(0, Math.min(pageSize, total - offset));
  const next = offset + count < total ? `${ctx.origin()}/api/machines/SoftwareVulnerabilityChangesByMachine?pageSize=${pageSize}&$skiptoken=${writeSkipToken({ o: offset + count, s: sinceMs, u: untilMs, t: token?.t ?? now })}` : null;
  const keys: string[] = [];
  const record = ctx.served.vulnerabilityChangeKeys !== null;
  const statuses = ['New', 'Fixed', 'Updated'] as const;
  return streamPage(
    x,
    `${ctx.origin()}/api/$metadata#Collection(microsoft.windowsDefenderATP.api.DeltaAssetVulnerability)`,
    count,
    (i) => {
      const j = offset + i;
      const batch = firstBatch + Math.floor(j / perBatch);
      const r = Rng.for(ctx.seed, 'change', batch, j % perBatch);
      const v = r.int(0, ctx.vulnerabilities - 1);
      const status = r.pick(statuses);
      const at = `${exportTimestamp(batch * SIX_HOURS)}.0000000`;
      const rec = vulnerabilityAt(ctx, v, `,"status":"${status}","eventTimestamp":"${at}"`);
      if (record) keys.push(`${rec.id}|${status}|${at}`);
      return rec.json;
    },
    next,
    () => ctx.served.addVulnerabilityChanges(keys, count),
  );
}

// ---------------------------------------------------------------- machine actions

export async function startAction(ctx: ApiContext, x: Exchange, machineId: string, type: ActionType, requestor: string): Promise<boolean> {
  const m = findMachine(ctx, machineId);
  if (!m) return sendError(x, 404, 'ResourceNotFound', `Machine ${machineId} was not found`);
  const body = await readObject(x);
  if (!body) return sendError(x, 400, 'InvalidRequestBody', 'Request body must be a JSON object');
  // Body parameter names are case-sensitive (common-errors.md).
  if (typeof body.Comment !== 'string' || !body.Comment.trim()) return sendError(x, 400, 'MissingRequiredParameter', "Parameter 'Comment' is missing or empty (names are case-sensitive)");
  let scope: string | null = null;
  let file: string | undefined;
  if (type === 'RunAntiVirusScan') {
    if (body.ScanType !== 'Quick' && body.ScanType !== 'Full') return sendError(x, 400, 'InvalidRequestBody', `ScanType must be Quick or Full (got ${JSON.stringify(body.ScanType)})`);
    scope = body.ScanType;
  }
  if (type === 'StopAndQuarantineFile') {
    if (typeof body.Sha1 !== 'string' || !/^[0-9a-fA-F]{40}$/.test(body.Sha1)) return sendError(x, 400, 'InvalidHashValue', `Sha1 must be a SHA-1 (40 hex characters), got ${JSON.stringify(body.Sha1)}`);
    file = body.Sha1.toLowerCase();
  }
  if (type === 'Isolate') {
    const it = body.IsolationType ?? 'Full';
    if (it !== 'Full' && it !== 'Selective' && it !== 'UnManagedDevice') return sendError(x, 400, 'InvalidRequestBody', `IsolationType must be Full, Selective or UnManagedDevice (got ${JSON.stringify(it)})`);
    if (it === 'Selective' && m.base.profile.linux) return sendError(x, 400, 'OsPlatformNotSupported', `Selective isolation is not supported on ${m.base.profile.osPlatform}`);
    scope = it;
  }
  const now = ctx.now();
  if (ctx.actions.active(m.base.id, now, type)) return sendError(x, 400, 'ActiveRequestAlreadyExists', 'Action is already in progress');
  const a = ctx.actions.create({ type, scope, requestor, requestorComment: body.Comment, machineId: m.base.id, computerDnsName: m.base.computerDnsName, createdMs: now, ...(file ? { file } : {}) });
  return sendJson(x, 201, { '@odata.context': `${ctx.origin()}/api/$metadata#MachineActions/$entity`, ...ctx.actions.entity(a, now) });
}

export async function getAction(ctx: ApiContext, x: Exchange, id: string): Promise<boolean> {
  const a = ctx.actions.get(id);
  if (!a) return sendError(x, 404, 'ResourceNotFound', `MachineAction ${id} was not found`);
  return sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#MachineActions/$entity`, ...ctx.actions.entity(a, ctx.now()) });
}

/** GET /api/machineactions/{id}/GetPackageUri: a download link once the package collection succeeded. */
export async function getPackageUri(ctx: ApiContext, x: Exchange, id: string): Promise<boolean> {
  const a = ctx.actions.get(id);
  if (!a || a.type !== 'CollectInvestigationPackage') return sendError(x, 404, 'ResourceNotFound', `Investigation package of machine action ${id} was not found`);
  const status = ctx.actions.status(a, ctx.now()).status;
  if (status !== 'Succeeded') return sendError(x, 404, 'ResourceNotFound', `The investigation package of machine action ${id} is not ready (${status})`);
  return sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#Edm.String`, value: `${ctx.origin()}/packages/${a.id}.zip?sv=emulated&se=${encodeURIComponent(new Date(ctx.now() + 3600_000).toISOString())}` });
}

export async function cancelAction(ctx: ApiContext, x: Exchange, id: string, requestor: string): Promise<boolean> {
  const a = ctx.actions.get(id);
  if (!a) return sendError(x, 404, 'ResourceNotFound', `MachineAction ${id} was not found`);
  let comment = '';
  try {
    comment = String((JSON.parse(await readBody(x.req)) as { Comment?: unknown }).Comment ?? '');
  } catch {
    return sendError(x, 400, 'InvalidRequestBody', 'Request body must be a JSON object');
  }
  if (!comment) return sendError(x, 400, 'MissingRequiredParameter', "Parameter 'Comment' is missing or empty");
  const now = ctx.now();
  if (ctx.actions.isFinal(a, now)) return sendError(x, 400, 'BadRequest', `Machine action ${id} is already ${ctx.actions.status(a, now).status}`);
  a.cancelled = { ms: now, comment, requestor };
  return sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#MachineActions/$entity`, ...ctx.actions.entity(a, now) });
}

export async function listActions(ctx: ApiContext, x: Exchange): Promise<boolean> {
  const q = x.url.searchParams;
  let clauses;
  let paging;
  try {
    const filter = q.get('$filter');
    // The documented filter fields, and lastUpdateDateTimeUtc: not in the docs' list, but what
    // public integrations filter on (and the machineActions collector does).
    clauses = filter ? parseFilter(filter, { id: 'string', status: 'string', machineId: 'string', type: 'string', requestor: 'string', creationDateTimeUtc: 'date', lastUpdateDateTimeUtc: 'date' }) : [];
    paging = parseTopSkip(q, MAX_TOP);
  } catch (e) {
    return odataFailure(x, e);
  }
  const now = ctx.now();
  const entities = ctx.actions.all
    .map((a) => ctx.actions.entity(a, now))
    .filter((e) => matches(clauses, (f) => (f === 'creationDateTimeUtc' || f === 'lastUpdateDateTimeUtc' ? Date.parse(e[f] as string) : (e[f] as string))))
    .reverse(); // newest first
  const { limit, nextSkip } = listPage(ctx, paging, entities.length);
  const page = entities.slice(paging.skip, paging.skip + limit);
  const next = nextSkip !== null ? nextLinkWith(x, { $skip: String(nextSkip) }) : null;
  const ok = await sendJson(x, 200, { '@odata.context': `${ctx.origin()}/api/$metadata#MachineActions`, value: page, ...(next ? { '@odata.nextLink': next } : {}) });
  if (ok) ctx.served.addMachineActions(page.map((e) => [e.id as string, e.lastUpdateDateTimeUtc as string]));
  return ok;
}
