import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/load.js';
import type { Logger } from '../log.js';
import { version } from '../paths.js';
import { exposition } from './metrics.js';
import { connectorHealth, type HealthSubject, type StatusFile } from './store.js';

/** An HTTP answer: JSON unless the body is text (then headers carry its Content-Type). */
export interface ProbeReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Readiness {
  ready: boolean;
  connectors: { connector: string; state: 'green' | 'red'; ready: boolean; reasons: string[] }[];
}

/**
 * Ready = every collecting connector green, or still within its first interval since `startedAt`
 * (its first polls may not have finished yet: a fresh start is not a failure).
 */
export function readiness(connectors: readonly HealthSubject[], status: StatusFile | undefined, startedAt: number, now: number): Readiness {
  const out = connectors.map((c) => {
    const h = connectorHealth(c, status, now);
    return { connector: c.name, state: h.state, ready: h.state === 'green' || now - startedAt < c.intervalMinutes * 60_000, reasons: h.reasons };
  });
  return { ready: out.every((c) => c.ready), connectors: out };
}

export interface ProbeOptions {
  /** also sum the collector's metrics snapshot found there (the sidecar; the collector serves its own registry) */
  metricsStateDir?: string;
  /** serves GET /readyz when given */
  ready?: () => Readiness;
}

/**
 * The unauthenticated endpoints, shared by the sidecar and `run`'s health listener: GET /healthz
 * (liveness: the process answers), /readyz (200 ready, 503 not, with the reasons), /metrics
 * (Prometheus text). Undefined for any other path. Nothing here acts or shows a secret.
 */
export async function probeReply(path: string, method: string, opts: ProbeOptions): Promise<ProbeReply | undefined> {
  const probe = path === '/healthz' || path === '/metrics' || (path === '/readyz' && opts.ready);
  if (!probe) return undefined;
  if (method !== 'GET') return { status: 405, body: { error: { code: 'method_not_allowed', message: 'use GET' } }, headers: { Allow: 'GET' } };
  if (path === '/healthz') return { status: 200, body: { status: 'ok', version } };
  if (path === '/readyz') {
    const r = opts.ready!();
    return { status: r.ready ? 200 : 503, body: r };
  }
  const m = await exposition(opts.metricsStateDir);
  return { status: 200, body: m.body, headers: { 'Content-Type': m.contentType } };
}

export function sendReply(res: http.ServerResponse, reply: ProbeReply): void {
  const isText = typeof reply.body === 'string';
  res.statusCode = reply.status;
  res.setHeader('Cache-Control', 'no-store');
  if (!isText) res.setHeader('Content-Type', 'application/json; charset=utf-8');
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  res.end(isText ? (reply.body as string) : JSON.stringify(reply.body));
}

/** Splits `host:port` (the schema's pattern for respond.listen and health.listen). */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
}

/** Binds server to `host:port`; resolves with the address it got (port 0 picks one). */
export async function listenOn(server: http.Server, listen: string): Promise<{ host: string; port: number }> {
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return { host: addr.address, port: addr.port };
}

/**
 * `run`'s optional listener (health.listen): the probe endpoints alone, so a collect-only
 * deployment has liveness and readiness probes and a scrape target.
 */
export async function startProbeServer(listen: string, opts: ProbeOptions & { logger?: Logger }): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://collector').pathname;
    probeReply(path, req.method ?? 'GET', opts).then(
      (reply) => sendReply(res, reply ?? { status: 404, body: { error: { code: 'not_found', message: `no such endpoint: ${path} (GET /healthz, /readyz, /metrics)` } } }),
      (e: unknown) => {
        opts.logger?.warn({ err: e, path }, 'health listener: request failed');
        sendReply(res, { status: 500, body: { error: { code: 'internal', message: 'internal error' } } });
      },
    );
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const addr = await listenOn(server, listen);
  const url = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
  opts.logger?.info({ url }, 'health listener: GET /healthz, /readyz, /metrics');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/**
 * `run`'s listener when health.listen is set, ready from the collector's own status (in memory, as
 * current as its last poll). Throws `health.listen …: <code>` when the address cannot be bound.
 */
export async function startCollectorProbes(config: Pick<Config, 'health' | 'connectors'>, status: { read(): StatusFile }, logger?: Logger): Promise<{ url: string; close(): Promise<void> } | undefined> {
  if (!config.health) return undefined;
  const startedAt = Date.now();
  try {
    const ready = () => readiness(config.connectors.filter((c) => c.functions.includes('collect')), status.read(), startedAt, Date.now());
    return await startProbeServer(config.health.listen, { logger, ready });
  } catch (e) {
    throw new Error(`health.listen ${config.health.listen}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
