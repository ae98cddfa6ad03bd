// startEmulator: a local Defender for Endpoint API + Entra token endpoint over HTTPS on 127.0.0.1,
// with deterministic data, live alert updates, documented rate limits and faults on demand.
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { ActionBook, historyTypes, type ActionOutcome, type ActionType } from './actions.js';
import * as api from './api.js';
import { Entra, allRoles, graphResources } from './entra.js';
import { HuntingTable, runHuntingQuery } from './hunting.js';
import { IndicatorStore } from './indicators.js';
import { FaultInjector, parseFaults, type CallInfo, type FaultSpec } from './faults.js';
import { readBody, sendError, sendJson, type Exchange } from './http-util.js';
import { Rng } from './prng.js';
import { documentedLimits, SlidingWindowLimiter } from './ratelimit.js';
import { Served } from './served.js';
import { World, type MachineState } from './store.js';
import { loadOrCreateCertificate } from './tls.js';
import type { AlertState } from './data.js';
import { isoTrimmed } from './time.js';

export interface EmulatorOptions {
  /** 0 (default) picks a free port */
  port?: number;
  seed?: number;
  /** initial alerts (default 200) */
  alerts?: number;
  /** machines (default 50; 0 makes GET /api/machines answer 404) */
  machines?: number;
  /** snapshot vulnerability records, generated on the fly (default 1 000) */
  vulnerabilities?: number;
  /** delta records per 6-hour batch (default 1% of vulnerabilities, at least 1) */
  vulnerabilityChangesPerBatch?: number;
  /** initial alerts spread over this many hours before the start time (default 2) */
  historyHours?: number;
  /** alert arrivals + changes per minute while running (default 0) */
  updatesPerMinute?: number;
  /** a new version's lastUpdateTime may be up to this much older than "now" (late arrival; default 0) */
  lateArrivalMs?: number;
  /** fault list (see faults.ts) or parsed specs */
  faults?: string | FaultSpec[];
  /** rate-limit window scale (default 1; 0.01 → 100 calls per 0.6 s) */
  rateScale?: number;
  /** enforce rate limits (default true) */
  rateLimits?: boolean;
  /** 'api' (default): one budget per API as documented; 'family': one for all standard APIs and one for the export APIs */
  rateLimitScope?: 'api' | 'family';
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** roles in issued tokens (default all four the connector uses) */
  roles?: string[];
  /** token lifetime (default 3599 s) */
  tokenLifetimeSeconds?: number;
  /** emulator clock start (default: now) */
  startTime?: number | string | Date;
  /** the clock moves only through advanceTime() (default false) */
  freezeClock?: boolean;
  /** where the certificate is kept and reused (default: a fresh temporary folder, removed on close) */
  stateDir?: string;
  /** export page links ($skiptoken) older than this are refused with 400, as when a snapshot is regenerated (default: never) */
  exportLinkTtlMs?: number;
  /** one DeviceProcessEvents row for advanced hunting every this many ms (default 60 000) */
  huntingRowEveryMs?: number;
  /** roles of Microsoft Graph tokens (default ThreatHunting.Read.All) */
  graphRoles?: string[];
  /** machine actions taken before the start (portal, other tools), spread over historyHours (default 0) */
  machineActions?: number;
  /** machine actions stay Pending this long, then InProgress this long (defaults 2 000 / 3 000 ms) */
  actionPendingMs?: number;
  actionInProgressMs?: number;
  /** build and keep every alert's serialised immutable part at start (~2.5 KB each): for benchmarks, so pages cost concatenation only */
  prebuildAlerts?: boolean;
  /** every alert gets exactly this many evidence items (benchmarks); default: 0–5, ~20% none */
  evidencePerAlert?: number;
  /**
   * alert and machine list pages hold at most this many items whatever $top asks (a server or gateway
   * capping pages below $top; default: no cap beyond the API's 10 000)
   */
  pageCap?: number;
  /** capped pages link the rest with @odata.nextLink even when $top was given (default false: no link) */
  pageCapNextLink?: boolean;
  /** keep the ids of served vulnerability records in `served` (default true; turn off for million-record benchmarks) */
  recordVulnerabilityIds?: boolean;
  logger?: Logger;
}

export interface AlertVersion {
  id: string;
  lastUpdateTime: string;
  status: string;
}

export interface Emulator {
  /** https://127.0.0.1:PORT (the API base URL, and the authority host) */
  url: string;
  origin: string;
  apiBaseUrl: string;
  authorityUrl: string;
  port: number;
  /** PEM of the self-signed certificate: caFile / NODE_EXTRA_CA_CERTS */
  caFile: string;
  caPem: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** what was served, counted only for complete responses */
  served: Served;
  now(): number;
  advanceTime(ms: number): void;
  /** new alerts stamped now (all share one lastUpdateTime) */
  addAlerts(n: number): AlertVersion[];
  /** changes to existing alerts (status New → InProgress → Resolved, or a comment), lastUpdateTime bumped */
  updateAlerts(n: number): AlertVersion[];
  /** one ticker step: a mix of new alerts and updates */
  tick(n: number): void;
  /** current version of every alert */
  alertVersions(): AlertVersion[];
  machineIds(): string[];
  /** the advanced hunting table's rows with from ≤ Timestamp < to */
  huntingRows(fromMs: number, toMs: number): Record<string, unknown>[];
  isIsolated(machineId: string): boolean;
  /** a machine action someone else took (the portal, another tool) now; it runs through the usual statuses. Its id */
  addMachineAction(type: ActionType, machineId: string, requestor: string): string;
  /** an indicator submitted by another tool (the portal, another app); its id */
  addForeignIndicator(fields: { indicatorValue: string; indicatorType: string; action: string; application?: string | null; createdBy: string }): string;
  setFaults(faults: string | FaultSpec[]): void;
  faultsFired(): Record<string, number>;
  setRateLimits(opts: { enabled?: boolean; scale?: number }): void;
  setActionTiming(pendingMs: number, inProgressMs: number): void;
  /** the next machine actions end with these statuses instead of Succeeded */
  queueActionOutcomes(...outcomes: ActionOutcome[]): void;
  /** export page links older than this are refused with 400 (Infinity: never) */
  setExportLinkTtl(ms: number): void;
  /** every token issued so far is refused from now on */
  revokeTokens(): void;
  tokensIssued(): number;
  /** connector entry for defender.yaml pointing at this emulator */
  connectorConfig(name?: string): Record<string, unknown>;
  close(): Promise<void>;
}

type Route =
  | { kind: 'entra'; run: (x: Exchange) => Promise<boolean> }
  | { kind: 'api'; api: CallInfo['api']; bucket: string; family: 'standard' | 'export' | 'hunting'; roles: string[]; graph?: true; run: (x: Exchange, requestor: string) => Promise<boolean> };

const readRoles = {
  alerts: ['Alert.Read.All', 'Alert.ReadWrite.All'],
  machines: ['Machine.Read.All', 'Machine.ReadWrite.All'],
  vulns: ['Vulnerability.Read.All'],
  isolate: ['Machine.Isolate'],
};

/** POST /api/machines/{id}/<path> of the other response actions, and their application permissions. */
const responsePaths: Record<string, { type: ActionType; roles: string[] }> = {
  runantivirusscan: { type: 'RunAntiVirusScan', roles: ['Machine.Scan'] },
  stopandquarantinefile: { type: 'StopAndQuarantineFile', roles: ['Machine.StopAndQuarantine'] },
  restrictcodeexecution: { type: 'RestrictCodeExecution', roles: ['Machine.RestrictExecution'] },
  unrestrictcodeexecution: { type: 'UnrestrictCodeExecution', roles: ['Machine.RestrictExecution'] },
  collectinvestigationpackage: { type: 'CollectInvestigationPackage', roles: ['Machine.CollectForensics'] },
};

/** n actions of every type on the world's machines, created in order over the history before startMs. */
function seedActionHistory(actions: ActionBook, world: World, rng: Rng, n: number, startMs: number, historyMs: number): void {
  if (!world.machines.length) return;
  for (let i = 0; i < n; i++) {
    const m = world.machines[rng.int(0, world.machines.length - 1)]!;
    const type = historyTypes[rng.int(0, historyTypes.length - 1)]!;
    actions.create({
      type,
      scope: type === 'Isolate' ? 'Full' : type === 'RunAntiVirusScan' ? 'Quick' : null,
      requestor: rng.chance(0.5) ? 'analyst@emulated.test' : 'soar@emulated.test',
      requestorComment: `${type} (emulated history ${i + 1})`,
      machineId: m.base.id,
      computerDnsName: m.base.computerDnsName,
      createdMs: startMs - historyMs + Math.floor(((i + rng.float()) * historyMs) / n),
    });
  }
}

function startMsOf(v: EmulatorOptions['startTime']): number {
  if (v === undefined) return Date.now();
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (Number.isNaN(ms)) throw new Error(`startTime: not a date: ${String(v)}`);
  return ms;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const seed = (opts.seed ?? 1) >>> 0;
  const ids = Rng.for(seed, 'identity');
  const tenantId = opts.tenantId ?? ids.guid();
  const clientId = opts.clientId ?? ids.guid();
  const clientSecret = opts.clientSecret ?? `emu~${ids.hex(32)}`;
  const startMs = startMsOf(opts.startTime);
  const realStart = Date.now();
  let offset = 0;
  const now = () => startMs + offset + (opts.freezeClock ? 0 : Date.now() - realStart);
  const vulnerabilities = opts.vulnerabilities ?? 1000;
  let exportLinkTtlMs = opts.exportLinkTtlMs ?? Infinity;

  const world = new World({
    seed,
    tenantId,
    startMs,
    alerts: opts.alerts ?? 200,
    machines: opts.machines ?? 50,
    historyHours: opts.historyHours ?? 2,
    lateArrivalMs: opts.lateArrivalMs ?? 0,
    prebuildAlerts: opts.prebuildAlerts ?? false,
    evidencePerAlert: opts.evidencePerAlert,
  });
  const served = new Served(opts.recordVulnerabilityIds ?? true);
  const actions = new ActionBook(opts.actionPendingMs ?? 2000, opts.actionInProgressMs ?? 3000);
  const hunting = new HuntingTable(world, seed, opts.huntingRowEveryMs ?? 60_000);
  const indicators = new IndicatorStore();
  seedActionHistory(actions, world, Rng.for(seed, 'machine-actions'), opts.machineActions ?? 0, startMs, (opts.historyHours ?? 2) * 3600_000);
  const faults = new FaultInjector(seed);
  faults.set(typeof opts.faults === 'string' ? parseFaults(opts.faults) : (opts.faults ?? []));
  let rateScale = opts.rateScale ?? 1;
  const limiter = new SlidingWindowLimiter(rateScale, opts.rateLimits ?? true);
  const scope = opts.rateLimitScope ?? 'api';

  let origin = '';
  const entra = new Entra({
    origin: () => origin,
    tenantId,
    clientId,
    clientSecret,
    roles: opts.roles ?? allRoles,
    graphRoles: opts.graphRoles ?? ['ThreatHunting.Read.All'],
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3599,
    nowMs: now,
  });
  const ctx: api.ApiContext = {
    world,
    served,
    actions,
    origin: () => origin,
    now,
    seed,
    vulnerabilities,
    vulnerabilityChangesPerBatch: opts.vulnerabilityChangesPerBatch ?? Math.max(1, Math.round(vulnerabilities * 0.01)),
    exportLinkTtlMs: () => exportLinkTtlMs,
    pageCap: { size: opts.pageCap ?? Infinity, nextLink: opts.pageCapNextLink ?? false },
  };

  const entraReply = async (x: Exchange, reply: { status: number; body: unknown }) =>
    sendJson(x, reply.status, reply.body, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });

  function route(method: string, path: string): Route | { error: [number, string, string] } {
    // ---- Entra
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/([^/]+)\/(v2\.0\/)?\.well-known\/openid-configuration$/.exec(path))) {
      const [, tenant, v2] = m as unknown as [string, string, string | undefined];
      return { kind: 'entra', run: (x) => entraReply(x, entra.openIdConfiguration(decodeURIComponent(tenant), !!v2)) };
    }
    if (method === 'GET' && /^\/[^/]+\/discovery\/instance$/.test(path)) return { kind: 'entra', run: (x) => entraReply(x, entra.instanceDiscovery()) };
    if (method === 'GET' && /^\/[^/]+\/discovery\/(v2\.0\/)?keys$/.test(path)) return { kind: 'entra', run: (x) => entraReply(x, entra.keys()) };
    if ((m = /^\/([^/]+)\/oauth2\/(v2\.0\/)?token$/.exec(path))) {
      if (method !== 'POST') return { error: [405, 'MethodNotAllowed', 'Use POST'] };
      const [, tenant, v2] = m as unknown as [string, string, string | undefined];
      return {
        kind: 'entra',
        run: async (x) => {
          const form = new URLSearchParams(await readBody(x.req));
          const basic = /^Basic\s+(.+)$/i.exec(x.req.headers.authorization ?? '');
          let creds: { id: string; secret: string } | null = null;
          if (basic) {
            const [id = '', ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
            creds = { id: decodeURIComponent(id), secret: decodeURIComponent(rest.join(':')) };
          }
          return entraReply(x, entra.token(decodeURIComponent(tenant), form, !!v2, creds));
        },
      };
    }
    // ---- Microsoft Graph advanced hunting
    if (/^\/v1\.0\/security\/runhuntingquery$/i.test(path)) {
      if (method !== 'POST') return { error: [405, 'MethodNotAllowed', 'Use POST'] };
      return { kind: 'api', api: 'hunting', bucket: 'hunting', family: 'hunting', roles: ['ThreatHunting.Read.All'], graph: true, run: (x) => runHuntingQuery(x, hunting, origin, now(), (n) => (served.huntingRows += n)) };
    }
    // ---- Defender API (with or without /v1.0)
    const p = path.replace(/^\/api\/v1\.0\//i, '/api/');
    if (!/^\/api\//i.test(p)) return { error: [404, 'NotFound', `No route for ${path}`] };
    const seg = p.split('/').slice(2).map(decodeURIComponent);
    const lower = seg.map((s) => s.toLowerCase());
    const std = (name: string) => (scope === 'api' ? name : 'standard');
    const exp = (name: string) => (scope === 'api' ? name : 'export');
    if (lower[0] === 'indicators') {
      const ti = ['Ti.ReadWrite', 'Ti.ReadWrite.All'];
      if (method === 'POST' && seg.length === 1) return { kind: 'api', api: 'actions', bucket: std('indicators'), family: 'standard', roles: ti, run: (x, who) => indicators.post(x, origin, now(), who) };
      if (method === 'GET' && seg.length === 1) return { kind: 'api', api: 'actions', bucket: std('indicators'), family: 'standard', roles: ti, run: (x) => indicators.list(x, origin) };
      if (method === 'DELETE' && seg.length === 2) return { kind: 'api', api: 'actions', bucket: std('indicators'), family: 'standard', roles: ti, run: (x) => indicators.remove(x, seg[1]!) };
    }
    if (lower[0] === 'alerts' && method === 'PATCH' && seg.length === 2) {
      return { kind: 'api', api: 'actions', bucket: std('alerts'), family: 'standard', roles: ['Alert.ReadWrite.All'], run: (x, who) => api.updateAlert(ctx, x, seg[1]!, who) };
    }
    if (lower[0] === 'alerts' && method === 'GET') {
      if (seg.length === 1) return { kind: 'api', api: 'alerts', bucket: std('alerts'), family: 'standard', roles: readRoles.alerts, run: (x) => api.listAlerts(ctx, x) };
      if (seg.length === 2) return { kind: 'api', api: 'alerts', bucket: std('alerts'), family: 'standard', roles: readRoles.alerts, run: (x) => api.getAlert(ctx, x, seg[1]!) };
    }
    if (lower[0] === 'machines') {
      if (method === 'GET' && seg.length === 1) return { kind: 'api', api: 'machines', bucket: std('machines'), family: 'standard', roles: readRoles.machines, run: (x) => api.listMachines(ctx, x) };
      if (method === 'GET' && lower[1] === 'softwarevulnerabilitiesbymachine' && seg.length === 2) {
        return { kind: 'api', api: 'vulnerabilities', bucket: exp('vulnerabilities-export'), family: 'export', roles: readRoles.vulns, run: (x) => api.softwareVulnerabilities(ctx, x) };
      }
      if (method === 'GET' && lower[1] === 'softwarevulnerabilitychangesbymachine' && seg.length === 2) {
        return { kind: 'api', api: 'vulnerabilities', bucket: exp('vulnerabilities-delta'), family: 'export', roles: readRoles.vulns, run: (x) => api.vulnerabilityChanges(ctx, x) };
      }
      if (method === 'GET' && seg.length === 2) return { kind: 'api', api: 'machines', bucket: std('machines'), family: 'standard', roles: readRoles.machines, run: (x) => api.getMachine(ctx, x, seg[1]!) };
      if (method === 'POST' && seg.length === 3 && (lower[2] === 'isolate' || lower[2] === 'unisolate')) {
        const type = lower[2] === 'isolate' ? 'Isolate' : 'Unisolate';
        return { kind: 'api', api: 'actions', bucket: std(lower[2]), family: 'standard', roles: readRoles.isolate, run: (x, who) => api.startAction(ctx, x, seg[1]!, type, who) };
      }
      if (method === 'POST' && seg.length === 3 && lower[2] === 'tags') {
        return { kind: 'api', api: 'actions', bucket: std('tags'), family: 'standard', roles: ['Machine.ReadWrite.All'], run: (x) => api.machineTags(ctx, x, seg[1]!) };
      }
      const response = method === 'POST' && seg.length === 3 ? responsePaths[lower[2]!] : undefined;
      if (response) return { kind: 'api', api: 'actions', bucket: std(lower[2]!), family: 'standard', roles: response.roles, run: (x, who) => api.startAction(ctx, x, seg[1]!, response.type, who) };
    }
    if (lower[0] === 'machineactions') {
      if (method === 'GET' && seg.length === 1) return { kind: 'api', api: 'machineactions', bucket: std('machineactions'), family: 'standard', roles: readRoles.machines.concat(readRoles.isolate), run: (x) => api.listActions(ctx, x) };
      if (method === 'GET' && seg.length === 2) return { kind: 'api', api: 'machineactions', bucket: std('machineactions'), family: 'standard', roles: readRoles.machines.concat(readRoles.isolate), run: (x) => api.getAction(ctx, x, seg[1]!) };
      if (method === 'GET' && seg.length === 3 && lower[2] === 'getpackageuri') {
        return { kind: 'api', api: 'machineactions', bucket: std('machineactions'), family: 'standard', roles: readRoles.machines, run: (x) => api.getPackageUri(ctx, x, seg[1]!) };
      }
      if (method === 'POST' && seg.length === 3 && lower[2] === 'cancel') {
        return { kind: 'api', api: 'actions', bucket: std('machineactions'), family: 'standard', roles: readRoles.isolate, run: (x, who) => api.cancelAction(ctx, x, seg[1]!, who) };
      }
    }
    return { error: [404, 'NotFound', `No API at ${method} ${path}`] };
  }

  /** Applies a decided fault. Returns true when the fault fully answered the call. */
  async function applyFault(x: Exchange, f: FaultSpec, token: boolean, jti?: string): Promise<boolean> {
    x.fault = f.kind;
    const entraError = (status: number) => entraReply(x, entra.error(status, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again. (emulator fault)'));
    switch (f.kind) {
      case 'reset':
        x.req.socket.destroy();
        return true;
      case 'slow':
        await new Promise((r) => setTimeout(r, f.ms ?? 2000));
        return x.req.socket.destroyed;
      case 'truncate':
        x.cutAfterBytes = f.bytes ?? 512;
        return false;
      case 'trickle':
        x.trickle = { bytes: Math.max(1, f.bytes ?? 64), ms: f.ms ?? 500 };
        return false;
      case '429':
        if (token) await entraError(429);
        else if (x.api === 'hunting') await sendError(x, 429, 'TooManyRequests', 'The tenant reached its allocated CPU resources for advanced hunting; queries are blocked until the next 15-minute cycle (emulator fault)', { 'retry-after': String(f.retryAfter ?? 900) });
        else await sendError(x, 429, 'TooManyRequests', 'Too many requests (emulator fault: 429 storm)', { 'retry-after': String(f.retryAfter ?? 1) });
        return true;
      case '500':
      case '503':
        if (token) await entraError(Number(f.kind));
        else if (f.kind === '500') await sendError(x, 500, 'InternalServerError', '');
        else await sendError(x, 503, 'ServiceUnavailable', 'The service is temporarily unavailable (emulator fault)', { 'retry-after': '1' });
        return true;
      case 'malformed': {
        const text = `{"@odata.context":"${origin}/api/$metadata#Alerts","value":[{"id":"da0000000000000000000_1","title":"cut here,}]`;
        x.res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        x.res.end(text);
        return true;
      }
      case 'novalue': {
        // A whole, valid JSON 200 that is not a page (a proxy's or gateway's answer): no `value` array.
        const context = `"@odata.context":"${origin}/api/$metadata#Alerts"`;
        const text = { empty: '{}', null: `{${context},"value":null}`, scalar: `{${context},"value":"none"}`, other: '{"foo":[]}' }[f.shape ?? 'empty'];
        x.res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        x.res.end(text);
        return true;
      }
      case 'token-reject':
        if (token) {
          await entraReply(x, entra.error(401, 'invalid_client', 7000215, 'Invalid client secret provided. (emulator fault)'));
        } else {
          // The presented token stays refused: the client must fetch a new one, not just retry.
          if (jti) entra.revoke(jti);
          await sendError(x, 401, 'Unauthorized', 'Unauthorized: the access token was rejected (emulator fault)');
        }
        return true;
    }
  }

  async function handle(x: Exchange): Promise<void> {
    const r = route(x.req.method ?? 'GET', x.url.pathname);
    if ('error' in r) {
      await sendError(x, ...r.error);
      return;
    }
    if (r.kind === 'entra') {
      x.api = 'token';
      const f = faults.decide({ api: 'token', method: x.req.method ?? 'GET' });
      if (f && (await applyFault(x, f, true))) return;
      await r.run(x);
      return;
    }
    x.api = r.api;
    const auth = entra.verify(x.req.headers.authorization);
    if ('reason' in auth) {
      await sendError(x, 401, 'Unauthorized', `Unauthorized: ${auth.reason}`, { 'www-authenticate': 'Bearer' });
      return;
    }
    x.token = auth.claims.jti;
    // Graph takes Graph tokens only (Graph answers another audience with 401 InvalidAuthenticationToken)
    if (r.graph && !graphResources.includes(auth.claims.aud)) {
      await sendError(x, 401, 'InvalidAuthenticationToken', `Access token validation failure. Invalid audience (${auth.claims.aud}): request a token for https://graph.microsoft.com/.default`, { 'www-authenticate': 'Bearer' });
      return;
    }
    if (!r.roles.some((role) => auth.claims.roles.includes(role))) {
      await sendError(x, 403, 'Forbidden', `The application does not have any of the required application permissions (${r.roles.join(', ')}) to access the resource.`);
      return;
    }
    const f = faults.decide({ api: r.api, method: x.req.method ?? 'GET' });
    if (f && (await applyFault(x, f, false, auth.claims.jti))) return;
    const limit = documentedLimits[r.family];
    const verdict = limiter.take(r.bucket, limit, now());
    if (!verdict.ok) {
      const headers: Record<string, string> = { 'retry-after': String(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000))) };
      // With shrunk windows a whole second is far too coarse; say the exact wait too (Azure's header name).
      if (rateScale !== 1) headers['x-ms-retry-after-ms'] = String(Math.ceil(verdict.retryAfterMs));
      await sendError(x, 429, 'TooManyRequests', `Too many requests: the ${r.bucket} limit (${limit.perMinute}/min, ${limit.perHour}/h) was reached`, headers);
      return;
    }
    await r.run(x, auth.claims.appid);
  }

  // Without a state folder each emulator gets its own (removed on close), so parallel emulators never
  // race on one certificate file; the CLI passes a stable folder so the printed caFile survives restarts.
  const ownDir = opts.stateDir ? null : mkdtempSync(join(tmpdir(), 'defender-fluent-emulator-'));
  const tls = await loadOrCreateCertificate(opts.stateDir ?? ownDir!);
  const server = https.createServer({ key: tls.key, cert: tls.cert, keepAlive: true }, (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', origin);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const x: Exchange = { req, res, url, cutAfterBytes: null, api: 'unknown' };
    const arrived = Date.now();
    // Logged when the body is handed to the socket (res.end), or cut/closed without that, so the
    // log never lags behind what a client has already read.
    let logged = false;
    const log = (complete: boolean) => {
      if (logged) return;
      logged = true;
      served.log({ method: req.method ?? 'GET', path: x.url.pathname, query: x.url.search, api: x.api, status: res.headersSent || complete ? res.statusCode : 0, fault: x.fault, complete, token: x.token, at: arrived });
    };
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    res.end = ((...args: unknown[]) => {
      log(true);
      return end(...args);
    }) as typeof res.end;
    res.on('emulator-cut', () => log(false));
    res.on('close', () => log(false));
    handle(x).catch((e: unknown) => {
      opts.logger?.error({ err: e }, 'emulator handler failed');
      if (!res.headersSent) void sendError(x, 500, 'InternalServerError', '');
      else res.destroy();
    });
  });
  // Idle keep-alive sockets stay open longer than a client's poll gap, so clients rarely race a close.
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  origin = `https://127.0.0.1:${port}`;

  // Live updates: a steady trickle at --updates-per-minute, applied in ticks of ≥100 ms.
  let ticker: NodeJS.Timeout | undefined;
  const perMinute = opts.updatesPerMinute ?? 0;
  if (perMinute > 0) {
    let owed = 0;
    let last = Date.now();
    ticker = setInterval(
      () => {
        const t = Date.now();
        owed += ((t - last) * perMinute) / 60_000;
        last = t;
        const n = Math.floor(owed);
        if (n > 0) {
          owed -= n;
          world.tick(n, now());
        }
      },
      Math.max(100, Math.floor(60_000 / perMinute)),
    );
    ticker.unref();
  }

  const version = (s: AlertState): AlertVersion => ({ id: s.id, lastUpdateTime: isoTrimmed(s.lastUpdateMs), status: s.status });
  opts.logger?.info({ origin, caFile: tls.caFile, tenantId, alerts: world.alerts.length, machines: world.machines.length, vulnerabilities }, 'emulator listening');

  return {
    url: origin,
    origin,
    apiBaseUrl: origin,
    authorityUrl: origin,
    port,
    caFile: tls.caFile,
    caPem: tls.cert,
    tenantId,
    clientId,
    clientSecret,
    served,
    now,
    advanceTime: (ms) => {
      offset += ms;
    },
    addAlerts: (n) => world.addAlerts(n, now()).map(version),
    updateAlerts: (n) => world.updateAlerts(n, now()).map(version),
    tick: (n) => void world.tick(n, now()),
    alertVersions: () => world.alerts.map(version),
    machineIds: () => world.machines.map((m: MachineState) => m.base.id),
    huntingRows: (from, to) => hunting.rows(from, to),
    isIsolated: (id) => actions.isIsolated(id.toLowerCase(), now()),
    addMachineAction: (type, machineId, requestor) => {
      const m = world.machines.find((x: MachineState) => x.base.id === machineId.toLowerCase());
      if (!m) throw new Error(`addMachineAction: no machine ${machineId}`);
      return actions.create({ type, scope: type === 'Isolate' ? 'Full' : null, requestor, requestorComment: `${type} by ${requestor}`, machineId: m.base.id, computerDnsName: m.base.computerDnsName, createdMs: now() }).id;
    },
    addForeignIndicator: (fields) => indicators.addForeign(fields, now()),
    setFaults: (f) => faults.set(typeof f === 'string' ? parseFaults(f) : f),
    faultsFired: () => Object.fromEntries(faults.fired),
    setRateLimits: (o) => {
      if (o.scale !== undefined) rateScale = o.scale;
      limiter.configure(o);
    },
    setActionTiming: (p, i) => {
      actions.pendingMs = p;
      actions.inProgressMs = i;
    },
    queueActionOutcomes: (...o) => actions.queueOutcomes(...o),
    revokeTokens: () => entra.revokeAll(),
    setExportLinkTtl: (ms) => {
      exportLinkTtlMs = ms;
    },
    tokensIssued: () => entra.tokensIssued,
    connectorConfig: (name = 'emulator') => ({
      name,
      tenant: 'Emulated tenant',
      apiEndpoint: origin,
      authorityHost: origin,
      graphEndpoint: origin,
      allowCustomEndpoint: true,
      caFile: tls.caFile,
      clientId,
      directoryId: tenantId,
      clientSecret,
    }),
    close: async () => {
      if (ticker) clearInterval(ticker);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}
