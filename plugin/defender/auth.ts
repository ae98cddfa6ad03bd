import { ConfidentialClientApplication, LogLevel, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import type https from 'node:https';
import type { Connector } from '../config/load.js';
import { registerSecret, type Logger } from '../log.js';
import { type Clock, sleepUnless } from './budget.js';
import { TokenError } from './errors.js';
import { type AgentLease, send, shareAgent, transportError, transportErrorClass } from './http.js';
import { backoffMs, parseRetryAfter, retryPolicy } from './retry.js';

export const defenderScope = 'https://api.securitycenter.microsoft.com/.default';

/**
 * MSAL's HTTP goes through node-fetch with the connector's agent (proxy, extra CA, keep-alive):
 * MSAL's own client uses the global fetch, which ignores agents.
 */
export class FetchNetworkClient implements INetworkModule {
  /** MSAL replaces transport failures with a bare network_error; keep the real one for the message. */
  lastTransportError?: unknown;
  /**
   * The last error body from the authority: MSAL reports a failed metadata call (unknown tenant) as
   * endpoints_resolution_error and drops Entra's AADSTS code, which operators need.
   */
  lastErrorBody?: { error_codes?: unknown; error_description?: unknown };
  /** the authority's last HTTP status and Retry-After (ms), to tell a transient refusal from a final one */
  lastStatus?: number;
  lastRetryAfterMs?: number;

  constructor(
    readonly agent: https.Agent,
    private readonly timeoutMs: number,
  ) {}

  private async call<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    let res;
    let text: string;
    try {
      res = await send(url, { method, headers: options?.headers, body: options?.body, agent: this.agent, timeoutMs: this.timeoutMs });
      text = await res.text();
      this.lastTransportError = undefined;
    } catch (e) {
      this.lastTransportError = e;
      throw e;
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: 'invalid_response', error_description: `authority answered ${res.status} with a body that is not JSON` };
    }
    if (res.status >= 400) this.lastErrorBody = body as FetchNetworkClient['lastErrorBody'];
    this.lastStatus = res.status;
    this.lastRetryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { headers, body: body as T, status: res.status };
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.call<T>('GET', url, options);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.call<T>('POST', url, options);
  }
}

function toTokenError(e: unknown, authority: string, transport: unknown, lastErrorBody: FetchNetworkClient['lastErrorBody']): TokenError {
  const err = e as { errorCode?: string; errorMessage?: string; message?: string; subError?: string; code?: string; cause?: unknown };
  const text = `${err?.errorMessage ?? ''} ${err?.message ?? ''}`;
  const fromBody = Array.isArray(lastErrorBody?.error_codes) && lastErrorBody.error_codes.length ? `AADSTS${String(lastErrorBody.error_codes[0])}` : /AADSTS\d+/.exec(String(lastErrorBody?.error_description ?? ''))?.[0];
  const aadsts = /AADSTS\d+/.exec(text)?.[0] ?? (err?.errorCode === 'endpoints_resolution_error' ? fromBody : undefined);
  if (aadsts && !/AADSTS\d+/.test(text) && typeof lastErrorBody?.error_description === 'string') {
    return new TokenError(`token request refused by ${authority}: ${firstLine(lastErrorBody.error_description)}`, { errorClass: 'auth', aadsts, cause: e });
  }
  if (aadsts) {
    return new TokenError(`token request refused by ${authority}: ${firstLine(err.errorMessage ?? err.message ?? '')}`, { errorClass: 'auth', aadsts, cause: e });
  }
  // MSAL wraps transport failures; dig out the Node error so DNS/TLS/timeouts are told apart.
  // (a failed metadata call arrives as endpoints_resolution_error, a failed token call as network_error)
  const inner = findTransportCause(e) ?? (err?.errorCode === 'network_error' || err?.errorCode === 'endpoints_resolution_error' ? transport : undefined);
  if (inner) {
    const t = transportError(inner, `token request to ${authority}`);
    return new TokenError(t.message, { errorClass: transportErrorClass(inner), code: t.code, cause: e });
  }
  return new TokenError(`token request to ${authority} failed: ${err?.errorCode ?? ''} ${firstLine(err?.errorMessage ?? err?.message ?? String(e))}`.trim(), {
    errorClass: 'auth',
    code: err?.errorCode,
    cause: e,
  });
}

function firstLine(s: string): string {
  return s.split(/\r?\n/)[0]!.trim();
}

function findTransportCause(e: unknown): unknown {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur; i++) {
    const c = cur as { name?: string; code?: string; type?: string; cause?: unknown };
    if (c.name === 'FetchError' || c.name === 'AbortError' || c.name === 'TimeoutError' || (typeof c.code === 'string' && /^E[A-Z]+|^CERT_|^UNABLE_TO|^DEPTH_ZERO|^ERR_TLS/.test(c.code))) return cur;
    cur = c.cause;
  }
  return undefined;
}

/** MSAL's default tokenRenewalOffsetSeconds: a cached token closer than this to its expiry is renewed. */
const renewalOffsetMs = 300_000;

/**
 * Client-credentials tokens for one connector. MSAL caches the token and renews it ahead of expiry
 * (5 minutes by default); concurrent callers share one in-flight acquisition. The token MSAL gave
 * is also kept here until that same renewal point: asking MSAL's cache costs more than the request
 * it is for (~6 % of an idle collector's CPU with 1 000 tenants, every poll asking once per call).
 */
export class TokenProvider {
  private readonly app: ConfidentialClientApplication;
  private readonly network: FetchNetworkClient;
  /** the shared agent this provider took (none when the caller passed its own) */
  private readonly lease?: AgentLease;
  private readonly authority: string;
  private readonly scope: string;
  private inflight?: Promise<string>;
  /** MSAL's last token, and when MSAL itself would stop serving it from its cache (epoch ms) */
  private held?: { token: string; until: number };
  private renewalCount = 0;
  private readonly logger?: Logger;
  private readonly retry?: { clock: Clock; signal: AbortSignal; random?: () => number };

  constructor(
    readonly connector: Connector,
    opts: {
      logger?: Logger;
      agent?: https.Agent;
      /**
       * Retry a transient failure (reset, timeout, 429, 5xx) with the API's backoff, waiting on this
       * clock until the signal aborts; without it (the `test` command) one attempt, reported at once.
       */
      retry?: { clock: Clock; signal: AbortSignal; random?: () => number };
      /** the token's scope (default the Defender API's; Microsoft Graph for hunting) */
      scope?: string;
    } = {},
  ) {
    this.logger = opts.logger;
    this.retry = opts.retry;
    registerSecret(connector.clientSecret);
    this.scope = opts.scope ?? defenderScope;
    this.authority = `${connector.authorityUrl}/${connector.directoryId}`;
    this.lease = opts.agent ? undefined : shareAgent(connector.authorityUrl, connector);
    const agent = opts.agent ?? this.lease!.agent;
    const host = new URL(connector.authorityUrl).host;
    const documented = host === 'login.microsoftonline.com' || host === 'login.microsoftonline.us';
    const log = opts.logger;
    this.network = new FetchNetworkClient(agent, connector.requestTimeoutSeconds * 1000);
    this.app = new ConfidentialClientApplication({
      auth: {
        clientId: connector.clientId,
        clientSecret: connector.clientSecret,
        authority: this.authority,
        // A custom authority (emulator, proxy) is trusted as configured; Microsoft's own are discovered.
        ...(documented ? {} : { knownAuthorities: [host] }),
      },
      system: {
        networkClient: this.network,
        loggerOptions: {
          piiLoggingEnabled: false,
          // MSAL warns on every client-credentials token ("No client info in response"); its errors
          // reach us as exceptions anyway, so only its error lines are worth a log line.
          logLevel: LogLevel.Error,
          loggerCallback: (level, message) => {
            if (level <= LogLevel.Error) log?.warn({ connector: connector.name, msal: message }, 'msal');
          },
        },
      },
    });
  }

  /** Closes idle keep-alive connections to the authority, once no other connector shares them (an agent passed in is the caller's to close). */
  close(): void {
    this.lease?.release();
  }

  /** Number of tokens fetched from the authority (not served from cache). */
  get renewals(): number {
    return this.renewalCount;
  }

  getToken(opts: { forceRefresh?: boolean } = {}): Promise<string> {
    if (!opts.forceRefresh && this.held && Date.now() < this.held.until) return Promise.resolve(this.held.token);
    if (this.inflight && !opts.forceRefresh) return this.inflight;
    const p = this.acquire(opts.forceRefresh ?? false).finally(() => {
      if (this.inflight === p) this.inflight = undefined;
    });
    this.inflight = p;
    return p;
  }

  private async acquire(forceRefresh: boolean): Promise<string> {
    let result;
    // One outage of Entra (a reset, a 503) must not fail a poll: retried like a Defender GET. A
    // refusal (400/401 AADSTS: wrong secret, unknown tenant) is final: asking again cannot help and
    // only adds sign-in failures to the app's log.
    this.network.lastStatus = undefined;
    for (let attempt = 0; ; attempt++) {
      this.network.lastErrorBody = undefined;
      try {
        result = await this.app.acquireTokenByClientCredential({ scopes: [this.scope], skipCache: forceRefresh });
        break;
      } catch (e) {
        const err = toTokenError(e, this.authority, this.network.lastTransportError, this.network.lastErrorBody);
        // MSAL answers from its throttle cache after a 429/5xx with Retry-After: lastStatus is then the one that set it
        const status = Number(this.network.lastStatus ?? 0);
        const transient = status === 429 || status >= 500 || (status === 0 && (err.errorClass === 'network' || err.errorClass === 'timeout'));
        if (!this.retry || !transient || attempt >= retryPolicy.maxTransientRetries) throw err;
        const waitMs = Math.max(backoffMs(attempt, this.retry.random), this.network.lastRetryAfterMs ?? 0);
        this.logger?.warn({ connector: this.connector.name, err, waitMs }, 'token request failed; retrying');
        await sleepUnless(this.retry.clock, waitMs, this.retry.signal);
      }
    }
    if (!result?.accessToken) throw new TokenError(`token request to ${this.authority} returned no access token`, { errorClass: 'auth' });
    if (result.accessToken !== this.held?.token) this.renewalCount++;
    // MSAL renews 5 minutes before expiry, or at refreshOn (refresh_in) when the authority sent one
    const until = Math.min(result.expiresOn ? result.expiresOn.getTime() - renewalOffsetMs : 0, result.refreshOn ? result.refreshOn.getTime() : Infinity);
    this.held = { token: result.accessToken, until };
    registerSecret(result.accessToken);
    return result.accessToken;
  }
}
