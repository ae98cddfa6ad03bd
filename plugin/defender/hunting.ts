// Microsoft Graph advanced hunting (POST /v1.0/security/runHuntingQuery): the successor of the
// Defender for Endpoint advanced hunting API, whose retirement began in January 2026. Same client
// (budget, retries, errors) as the Defender API, on the Graph origin with a Graph token.
import { graphScope } from '../config/endpoints.js';
import type { Connector } from '../config/load.js';
import type { Logger } from '../log.js';
import { TokenProvider } from './auth.js';
import type { Clock } from './budget.js';
import { DefenderClient } from './client.js';
import { DefenderApiError } from './errors.js';

export const runHuntingQueryPath = '/v1.0/security/runHuntingQuery';

/**
 * The documented quotas of advanced hunting (Defender XDR "Quotas and resource allocation", and
 * the Defender for Endpoint hunting API page): data of the last 30 days; at most 100 000 rows per
 * result (more are cut off, so a full result means "split the window"); CPU allocated per tenant,
 * queries blocked until the next 15-minute cycle once it is used up (429); a request running more
 * than 3 minutes times out; 10 minutes of running time an hour.
 */
export const huntingLimits = { dataDays: 30, maxRows: 100_000, cpuCycleMs: 15 * 60_000, runningMsPerHour: 10 * 60_000, requestTimeoutMs: 200_000 };

export interface HuntingResult {
  /** column names in order (Graph spells the schema's keys name/type, some examples Name/Type) */
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
}

/** A client for the connector's Graph endpoint with a token for it (https://graph.microsoft.com/.default or the national cloud's). */
export function graphClient(connector: Connector, opts: { logger?: Logger; clock?: Clock; signal?: AbortSignal } = {}): DefenderClient {
  // a query may run up to 3 minutes before Graph answers: the connector's request timeout (60 s by default) would cut it off
  const c = { ...connector, requestTimeoutSeconds: Math.max(connector.requestTimeoutSeconds, huntingLimits.requestTimeoutMs / 1000) };
  // a transient Entra failure is retried as for the Defender token (until the collector stops)
  const retry = opts.clock && opts.signal ? { clock: opts.clock, signal: opts.signal } : undefined;
  const tokens = new TokenProvider(c, { logger: opts.logger, scope: graphScope(connector.graphBaseUrl), ...(retry ? { retry } : {}) });
  return new DefenderClient(c, { logger: opts.logger, clock: opts.clock, tokens, baseUrl: connector.graphBaseUrl });
}

/** Runs one query over `timespan` (ISO 8601 start/end). One attempt: the caller decides about quota 429s. */
export async function runHuntingQuery(client: DefenderClient, query: string, timespan: string): Promise<HuntingResult> {
  const res = await client.request<{ schema?: unknown; results?: unknown }>({ method: 'POST', path: runHuntingQueryPath, body: { Query: query, Timespan: timespan }, family: 'hunting', retry: false });
  const body = res.body;
  if (!body || !Array.isArray(body.results) || !Array.isArray(body.schema)) {
    throw new DefenderApiError(`POST ${runHuntingQueryPath}: HTTP ${res.status} without "schema" and "results" arrays`, { errorClass: 'malformed', status: res.status });
  }
  const columns = (body.schema as Record<string, unknown>[]).map((c) => ({ name: String(c?.name ?? c?.Name ?? ''), type: String(c?.type ?? c?.Type ?? '') }));
  const rows = body.results.filter((r): r is Record<string, unknown> => !!r && typeof r === 'object' && !Array.isArray(r));
  return { columns, rows };
}

/**
 * A 429 that is the tenant's CPU allocation (blocked until the next 15-minute cycle) rather than
 * the calls-per-minute limit: its message says so, or its Retry-After reaches past a minute.
 */
export function isCpuQuota(e: DefenderApiError): boolean {
  return e.status === 429 && (/cpu|resource|execution time|running time/i.test(e.serverMessage ?? e.message) || (e.retryAfterMs ?? 0) > 60_000);
}

/** A 400 that asks for a smaller result (the result-size limit): the window is split. */
export function isResultTooLarge(e: DefenderApiError): boolean {
  return e.status === 400 && /result size|too large|exceeded the allowed/i.test(e.serverMessage ?? e.message);
}
