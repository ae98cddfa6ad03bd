import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Config } from '../config/load.js';
import { DefenderClient } from '../defender/client.js';
import { MachineActionError, MachineActions, type ActionClient } from '../defender/machine-actions.js';
import { createLogger, redact, type Logger } from '../log.js';
import type { Sink } from '../output/sink.js';
import { clientEvents, trackTokenRenewals } from '../status/metrics.js';
import { listenOn, probeReply, sendReply } from '../status/probes.js';
import { AuditLog } from './audit.js';
import { TokenAuth } from './auth.js';
import { parseJson, parseRecords, readBody, RequestError } from './body.js';
import { RespondService, responseActionNames, type Reply, type RequestContext, type ResponseActionName } from './service.js';

export interface RespondServerOptions {
  config: Config;
  /** where audit records go (the configured Fluent sink) */
  sink: Sink;
  logger?: Logger;
  /** per respond connector; default: a DefenderClient per connector with functions: respond */
  clients?: Map<string, ActionClient>;
  /** TLS material (PEM text); default: read from respond.tls paths, resolved against baseDir */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** folder that relative respond.tls paths are resolved against (the config file's folder) */
  baseDir?: string;
  now?: () => number;
  /** how often accepted actions are re-read until final (default 60 s; 0: only on GET /v1/actions/{id}) */
  watchIntervalMs?: number;
}

const eventOf: Record<string, string> = {
  'POST /v1/actions/contain': 'contain',
  'POST /v1/actions/release': 'release',
  ...Object.fromEntries(Object.keys(responseActionNames).map((a) => [`POST /v1/actions/${a}`, a])),
  'POST /v1/actions/update-alert': 'update_alert',
  'POST /v1/actions/tag': 'tag',
  'POST /v1/indicators': 'indicator_submit',
  'POST /v1/fluent/contain': 'auto_contain',
  'POST /v1/fluent/update-alert': 'update_alert',
  'GET /v1/status': 'status',
};

/**
 * The response sidecar's HTTP(S) server: JSON under /v1 (bearer token required), plus /healthz and
 * /metrics (no token: no secrets, no actions). Binds respond.listen (default 127.0.0.1:8686).
 */
export class RespondServer {
  readonly service: RespondService;
  private readonly server: http.Server;
  private readonly auth: TokenAuth;
  private readonly logger: Logger;
  private readonly maxBody: number;

  constructor(private readonly opts: RespondServerOptions) {
    const { config } = opts;
    this.logger = opts.logger ?? createLogger(config.logLevel);
    this.auth = new TokenAuth(config.respond?.tokens ?? []);
    this.maxBody = config.respond?.maxBodyBytes ?? 1_048_576;
    const actions = new Map<string, MachineActions>();
    for (const c of config.connectors) {
      if (!c.functions.includes('respond')) continue;
      let client = opts.clients?.get(c.name);
      if (!client) {
        const real = new DefenderClient(c, { logger: this.logger, events: clientEvents(c.name) });
        trackTokenRenewals(c.name, real.tokens);
        client = real;
      }
      actions.set(c.name, new MachineActions(client));
    }
    const audit = new AuditLog(config.stateDir, opts.sink, { tagPrefix: config.output.tagPrefix, logger: this.logger, now: opts.now });
    this.service = new RespondService(config, { actions, audit, logger: this.logger, now: opts.now, watchIntervalMs: opts.watchIntervalMs });
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const tls = opts.tls ?? this.readTls();
    this.server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
    // Slow-loris guard: a request must arrive in full within 30 s.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  private readTls(): { cert: Buffer; key: Buffer } | undefined {
    const t = this.opts.config.respond?.tls;
    if (!t) return undefined;
    const base = this.opts.baseDir ?? process.cwd();
    const path = (p: string) => (p.startsWith('/') ? p : `${base}/${p}`);
    return { cert: readFileSync(path(t.cert)), key: readFileSync(path(t.key)) };
  }

  get tls(): boolean {
    return this.server instanceof https.Server;
  }

  /** Starts listening on respond.listen (or `listen`, e.g. '127.0.0.1:0' in tests). */
  async listen(listen = this.opts.config.respond?.listen ?? '127.0.0.1:8686'): Promise<{ host: string; port: number; url: string }> {
    if (this.auth.configured === 0) this.logger.warn('respond.tokens is empty: every /v1 request will be refused (401)');
    const { restored, from } = await this.service.restoreCaps();
    if (restored) this.logger.info({ restored, from }, 'automated isolations of the last hour restored (caps and per-machine dedupe)');
    const addr = await listenOn(this.server, listen);
    const url = `${this.tls ? 'https' : 'http'}://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
    this.logger.info({ url }, 'response sidecar listening');
    return { ...addr, url };
  }

  async close(): Promise<void> {
    this.service.stop();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
    await this.service.audit.flush();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://sidecar');
    const ctx: RequestContext = {
      requestId: randomUUID(),
      remoteAddress: req.socket.remoteAddress,
      method: req.method ?? 'GET',
      path: url.pathname,
      audit: {},
    };
    let reply: Reply;
    try {
      reply = await this.route(req, url, ctx);
    } catch (e) {
      reply = this.errorReply(e, ctx);
      if (url.pathname.startsWith('/v1/')) await this.auditRefusal(ctx, reply);
    }
    this.send(res, reply, ctx);
    this.logger.info(
      { requestId: ctx.requestId, method: ctx.method, path: ctx.path, status: reply.status, caller: ctx.caller?.name, ms: Date.now() - started },
      'request',
    );
  }

  private async route(req: IncomingMessage, url: URL, ctx: RequestContext): Promise<Reply> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    // /healthz and /metrics (its counters summed with the collector's snapshot), as `run` serves them
    const probe = await probeReply(path, method, { metricsStateDir: this.opts.config.stateDir });
    if (probe) {
      req.resume();
      return probe;
    }
    if (!path.startsWith('/v1/')) {
      req.resume();
      throw new RequestError(404, 'not_found', `no such endpoint: ${path}`);
    }
    ctx.audit.event = eventOf[`${method} ${path}`] ?? 'request';
    try {
      checkPercentEncoding(url);
    } catch (e) {
      req.resume();
      throw e;
    }
    const auth = this.auth.authenticate(req.headers.authorization);
    if (!auth.ok) {
      // Refused before the body is read: an unauthenticated client cannot make us buffer anything.
      req.resume();
      throw new RequestError(401, 'unauthorized', auth.reason, undefined, { 'WWW-Authenticate': 'Bearer realm="defender-fluent"' });
    }
    ctx.caller = auth.caller;
    const connectorParam = url.searchParams.get('connector') ?? undefined;

    if (path === '/v1/actions/contain' || path === '/v1/actions/release' || path === '/v1/fluent/contain' || path === '/v1/fluent/update-alert') {
      if (method !== 'POST') {
        req.resume();
        return notAllowed('POST');
      }
      const buf = await readBody(req, this.maxBody);
      if (path === '/v1/fluent/contain') return this.service.autoContain(ctx, parseRecords(buf), connectorParam);
      if (path === '/v1/fluent/update-alert') return this.service.fluentUpdateAlerts(ctx, parseRecords(buf), connectorParam);
      const body = parseJson(buf);
      return path === '/v1/actions/contain' ? this.service.contain(ctx, body) : this.service.release(ctx, body);
    }
    if (path === '/v1/indicators') {
      if (method === 'POST') return this.service.submitIndicator(ctx, parseJson(await readBody(req, this.maxBody)));
      req.resume();
      return method === 'GET' ? this.service.listIndicators(ctx, connectorParam) : notAllowed('GET, POST');
    }
    const indicator = /^\/v1\/indicators\/([^/]+)$/.exec(path);
    if (indicator) {
      req.resume();
      return method === 'DELETE' ? this.service.deleteIndicator(ctx, decodeURIComponent(indicator[1]!), connectorParam) : notAllowed('DELETE');
    }
    if (path === '/v1/actions/update-alert' || path === '/v1/actions/tag') {
      if (method !== 'POST') {
        req.resume();
        return notAllowed('POST');
      }
      const body = parseJson(await readBody(req, this.maxBody));
      return path === '/v1/actions/tag' ? this.service.tag(ctx, body) : this.service.updateAlert(ctx, body);
    }
    const named = /^\/v1\/actions\/([a-z-]+)$/.exec(path)?.[1];
    if (named && named in responseActionNames) {
      if (method !== 'POST') {
        req.resume();
        return notAllowed('POST');
      }
      return this.service.respondAction(ctx, named as ResponseActionName, parseJson(await readBody(req, this.maxBody)));
    }
    req.resume();
    if (method !== 'GET') return notAllowed('GET');
    if (path === '/v1/status') return this.service.status(ctx);
    let m = /^\/v1\/actions\/([^/]+)$/.exec(path);
    if (m) return this.service.action(ctx, decodeURIComponent(m[1]!), connectorParam);
    m = /^\/v1\/actions\/([^/]+)\/package$/.exec(path);
    if (m) return this.service.packageUri(ctx, decodeURIComponent(m[1]!), connectorParam);
    m = /^\/v1\/hosts\/([^/]+)\/isolation$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      if (!/^[0-9a-fA-F]{40}$/.test(id)) throw new RequestError(400, 'invalid_machine_id', 'machine id in the path must be 40 hex characters (a Defender machine id)');
      return this.service.isolation(ctx, id.toLowerCase(), connectorParam);
    }
    throw new RequestError(404, 'not_found', `no such endpoint: ${path}`);
  }

  private errorReply(e: unknown, ctx: RequestContext): Reply {
    if (e instanceof RequestError) {
      return { status: e.httpStatus, body: { error: { code: e.code, message: e.message, details: e.details } }, headers: e.headers };
    }
    if (e instanceof MachineActionError) {
      const headers: Record<string, string> = {};
      if (e.retryAfterMs !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
      return { status: e.httpStatus, body: { error: { code: e.code, message: redact(e.message) } }, headers };
    }
    this.logger.error({ err: e, requestId: ctx.requestId }, 'internal error');
    return { status: 500, body: { error: { code: 'internal', message: `internal error (request id ${ctx.requestId})` } } };
  }

  private async auditRefusal(ctx: RequestContext, reply: Reply): Promise<void> {
    const err = (reply.body as { error?: { code?: string; message?: string } }).error;
    try {
      await this.service.audit.write({
        ...ctx.audit,
        event: ctx.audit.event ?? 'request',
        // 4xx: we (or Defender, definitively) refused; 5xx: Defender or we failed (e.g. 502 for a Defender 403)
        outcome: reply.status >= 500 ? 'error' : 'refused',
        httpStatus: reply.status,
        reason: err ? `${err.code}: ${err.message}` : undefined,
        requester: ctx.caller?.name,
        remoteAddress: ctx.remoteAddress,
        requestId: ctx.requestId,
        method: ctx.method,
        path: ctx.path,
      });
    } catch {
      /* already logged by AuditLog; the answer still goes out */
    }
  }

  private send(res: ServerResponse, reply: Reply, ctx: RequestContext): void {
    res.setHeader('X-Request-Id', ctx.requestId);
    // A body that was refused unread (401, 413) may still be arriving: close rather than drain it.
    if (reply.status === 413) res.setHeader('Connection', 'close');
    sendReply(res, reply);
  }
}

const decodes = (part: string): boolean => {
  try {
    decodeURIComponent(part.replace(/\+/g, ' '));
    return true;
  } catch {
    return false;
  }
};

/**
 * A request target whose percent-encoding does not decode (`%zz`, a cut or overlong UTF-8
 * sequence) is the client's error: 400 naming the part, checked before anything else (decoding it
 * later threw a URIError, answered 500).
 */
function checkPercentEncoding(url: URL): void {
  url.pathname
    .split('/')
    .slice(1)
    .forEach((segment, i) => {
      if (!decodes(segment)) throw new RequestError(400, 'malformed_path', `path segment ${i + 1} (${JSON.stringify(segment)}) is not valid percent-encoding (UTF-8)`);
    });
  url.search
    .slice(1)
    .split('&')
    .forEach((param, i) => {
      if (!decodes(param)) throw new RequestError(400, 'malformed_query', `query parameter ${i + 1} (${JSON.stringify(param)}) is not valid percent-encoding (UTF-8)`);
    });
}

function notAllowed(allow: string): Reply {
  return { status: 405, body: { error: { code: 'method_not_allowed', message: `use ${allow}` } }, headers: { Allow: allow } };
}
