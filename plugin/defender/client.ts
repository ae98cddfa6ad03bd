import type { Response } from 'node-fetch';
import type { Connector } from '../config/load.js';
import type { Logger } from '../log.js';
import { TokenProvider } from './auth.js';
import { type ApiFamily, type Clock, familyLimits, RateBudget, sleepUnless, systemClock } from './budget.js';
import { DefenderApiError, type DefenderErrorBody, type ErrorClass } from './errors.js';
import { type AgentLease, send, shareAgent, transportError } from './http.js';
import { itemDefect, MalformedPageError, PageSplitter } from './page-stream.js';
import { backoffMs, parseRetryAfter, retryPolicy } from './retry.js';

export type { ApiFamily };

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** '/api/…' joined to the connector's API origin, or an absolute URL on that same origin */
  path: string;
  query?: Record<string, string | number>;
  body?: unknown;
  family?: ApiFamily;
  /** false: exactly one attempt (the `test` command, and POSTs that must not repeat) */
  retry?: boolean;
}

/** How a streamed page ended. */
export interface PageEnd {
  nextLink?: string;
  count: number;
  status: number;
}

/** A page whose response headers arrived and whose body is not read yet (see openPage). */
export interface OpenedPage {
  /** streams the items (once), as streamPage does */
  read(batch: number, onItems: (items: Record<string, unknown>[]) => Promise<void>): Promise<PageEnd>;
  /** closes the response unread */
  discard(): void;
}

export interface ClientEvents {
  onThrottled?(family: ApiFamily, retryAfterMs: number): void;
  onCall?(family: ApiFamily, status: number | undefined): void;
}

function statusClass(status: number): ErrorClass {
  if (status === 400) return 'bad_request';
  if (status === 401) return 'auth';
  if (status === 403) return 'permission';
  if (status === 404) return 'not_found';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'server';
  return 'bad_request';
}

async function errorFromResponse(res: Response, request: string): Promise<DefenderApiError> {
  let body: DefenderErrorBody = {};
  const text = await res.text().catch(() => '');
  try {
    body = (JSON.parse(text) as { error?: DefenderErrorBody }).error ?? {};
  } catch {
    /* not Defender's envelope: status alone tells */
  }
  const retryAfterMs = res.status === 429 ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
  const detail = [body.code, body.message].filter(Boolean).join(': ');
  return new DefenderApiError(`${request}: HTTP ${res.status}${detail ? ` ${detail}` : ''}${body.target ? ` (correlation id ${body.target})` : ''}`, {
    errorClass: statusClass(res.status),
    status: res.status,
    code: body.code,
    target: body.target,
    serverMessage: body.message,
    retryAfterMs,
    request,
  });
}

/**
 * The Defender API for one connector: tokens, the rate budget per API family, retries, and JSON or
 * streamed pages. Every call any part of the product makes to Defender goes through here.
 */
export class DefenderClient {
  readonly tokens: TokenProvider;
  /** https://host[:port] every path and link must stay on */
  readonly baseUrl: string;
  private readonly agent: AgentLease;
  private readonly budgets: Record<ApiFamily, RateBudget>;
  private readonly timeoutMs: number;
  private readonly pageTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger?: Logger;
  private readonly events: ClientEvents;
  private readonly random: () => number;
  /** aborted by interruptWaits(): budget and retry waits end at once */
  private readonly waits = new AbortController();

  constructor(
    readonly connector: Connector,
    opts: { logger?: Logger; tokens?: TokenProvider; clock?: Clock; events?: ClientEvents; random?: () => number; baseUrl?: string } = {},
  ) {
    // Microsoft Graph (hunting) is the same kind of API on another origin, with its own token
    this.baseUrl = opts.baseUrl ?? connector.apiBaseUrl;
    this.agent = shareAgent(this.baseUrl, connector);
    this.clock = opts.clock ?? systemClock;
    this.tokens = opts.tokens ?? new TokenProvider(connector, { logger: opts.logger, retry: { clock: this.clock, signal: this.waits.signal, random: opts.random } });
    this.budgets = {
      standard: new RateBudget(familyLimits.standard.perMinute, familyLimits.standard.perHour, this.clock),
      export: new RateBudget(familyLimits.export.perMinute, familyLimits.export.perHour, this.clock),
      hunting: new RateBudget(familyLimits.hunting.perMinute, familyLimits.hunting.perHour, this.clock),
    };
    this.timeoutMs = connector.requestTimeoutSeconds * 1000;
    this.pageTimeoutMs = connector.pageTimeoutSeconds * 1000;
    this.logger = opts.logger;
    this.events = opts.events ?? {};
    this.random = opts.random ?? Math.random;
  }

  /**
   * Ends every budget or retry wait, now and later, with WaitInterruptedError: the collector is
   * stopping and a shutdown must not sit out a rate window or a Retry-After.
   */
  interruptWaits(): void {
    this.waits.abort();
  }

  /** Closes idle keep-alive connections (API and authority) so the process can exit. */
  close(): void {
    this.agent.release();
    this.tokens.close();
  }

  budget(family: ApiFamily): RateBudget {
    return this.budgets[family];
  }

  /** Resolves a path or nextLink to a URL on the configured origin; anything else is refused. */
  url(path: string, query?: Record<string, string | number>): URL {
    const url = new URL(path, this.baseUrl);
    if (url.origin !== this.baseUrl) {
      throw new DefenderApiError(`refusing to follow a link to ${url.origin}: only ${this.baseUrl} is configured`, { errorClass: 'paging' });
    }
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * One call with a JSON answer. A GET whose body is cut short or is not JSON is asked again with
   * the transient backoff: failing the caller instead makes a collector re-read, and re-deliver,
   * everything it read since its last cursor.
   */
  async request<T = unknown>(opts: RequestOptions): Promise<{ status: number; body: T; headers: Response['headers'] }> {
    const method = opts.method ?? 'GET';
    const again = (opts.retry ?? true) && method === 'GET';
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(opts, this.timeoutMs);
      const request = `${method} ${new URL(res.url).pathname}`;
      let err: DefenderApiError;
      try {
        const text = await res.text();
        if (!text) return { status: res.status, body: undefined as T, headers: res.headers };
        try {
          return { status: res.status, body: JSON.parse(text) as T, headers: res.headers };
        } catch {
          err = new DefenderApiError(`${request}: HTTP ${res.status} body is not valid JSON (${text.length} bytes, starts ${JSON.stringify(text.slice(0, 40))})`, {
            errorClass: 'malformed',
            status: res.status,
            request,
          });
        }
      } catch (e) {
        err = transportError(e, request);
      }
      if (!again || attempt >= retryPolicy.maxTransientRetries) throw err;
      await this.pause(backoffMs(attempt, this.random), err);
    }
  }

  /**
   * GETs one page and streams its `value` items to onItems in slices of `batch`, awaiting each
   * (backpressure: the socket is not read while the sink is busy). Returns the page's @odata.nextLink
   * and item count. A truncated or malformed body, or one without a `value` array, throws a 'malformed' DefenderApiError.
   */
  async streamPage(opts: Omit<RequestOptions, 'method' | 'body'>, batch: number, onItems: (items: Record<string, unknown>[]) => Promise<void>): Promise<PageEnd> {
    return (await this.openPage(opts)).read(batch, onItems);
  }

  /**
   * Sends the GET for a page now and leaves its body unread (the socket's backpressure holds it)
   * until read(): a collector asks for the next page while it still works through this one, so
   * the API's time to first byte overlaps with our processing. discard() drops a page not needed.
   */
  async openPage(opts: Omit<RequestOptions, 'method' | 'body'>): Promise<OpenedPage> {
    const idle = new AbortController();
    const res = await this.send(opts, this.timeoutMs, idle);
    return {
      read: (batch, onItems) => this.readPage(res, idle, batch, onItems),
      discard: () => {
        // node-fetch reports the abort as an 'error' on the body, which nobody reads any more
        (res.body as NodeJS.ReadableStream | null)?.on('error', () => undefined);
        idle.abort();
      },
    };
  }

  private async readPage(res: Response, idle: AbortController, batch: number, onItems: (items: Record<string, unknown>[]) => Promise<void>): Promise<PageEnd> {
    const request = `GET ${new URL(res.url).pathname}`;
    const splitter = new PageSplitter();
    let pending: Record<string, unknown>[] = [];
    // Two bounds on the body: silence (requestTimeoutSeconds between chunks), and the time the server
    // takes in all (pageTimeoutSeconds), so that a server trickling its answer cannot hold a poll
    // forever. Both count only while we wait for the server's bytes: the time the pipeline holds us
    // back is ours (a 200 000-record page may take many minutes to drain into a slow sink).
    let serverMs = 0;
    let waitingSince = 0;
    let stalled: 'silent' | 'slow' | undefined;
    let timer: NodeJS.Timeout | undefined;
    const wait = () => {
      const left = this.pageTimeoutMs - serverMs;
      const why = left < this.timeoutMs ? 'slow' : 'silent';
      waitingSince = performance.now();
      timer = setTimeout(() => ((stalled = why), idle.abort()), Math.max(0, Math.min(left, this.timeoutMs)));
    };
    // Errors of the caller's onItems (the sink's own failure, e.g. a closed stdout pipe or a stop)
    // pass through untouched: they say nothing about the page.
    let own: { error: unknown } | undefined;
    const deliver = async (items: Record<string, unknown>[]) => {
      try {
        await onItems(items);
      } catch (e) {
        own = { error: e };
        throw e;
      }
    };
    wait();
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        clearTimeout(timer);
        serverMs += performance.now() - waitingSince;
        const items = splitter.push(chunk);
        let index = splitter.count - items.length;
        for (const item of items) {
          index++;
          pending.push(item && typeof item === 'object' && !Array.isArray(item) ? (item as Record<string, unknown>) : notAnObject(item, index));
          if (pending.length >= batch) {
            const out = pending;
            pending = [];
            await deliver(out);
          }
        }
        wait();
      }
      splitter.end();
      // `{}`, `{"value":null}`, `{"foo":[]}` (a proxy or gateway answering 200): not "no items" but a
      // malformed page, retried by the collectors as one cut short; taken as empty it would move the cursor past data.
      if (!splitter.sawValueArray) throw new MalformedPageError(`200 without a "value" array (${splitter.bytes} bytes)`);
    } catch (e) {
      if (own && e === own.error) throw e;
      if (e instanceof MalformedPageError) throw new DefenderApiError(`${request}: ${e.message}`, { errorClass: 'malformed', status: res.status, request });
      if (e instanceof DefenderApiError) throw e;
      if (stalled) {
        const why =
          stalled === 'silent'
            ? `no data for ${this.timeoutMs / 1000} s (requestTimeoutSeconds)`
            : `the server took more than ${this.pageTimeoutMs / 1000} s to send the page (pageTimeoutSeconds)`;
        throw new DefenderApiError(`${request}: ${why}; gave up after ${splitter.bytes} bytes, ${splitter.count} items`, { errorClass: 'timeout', status: res.status, request, cause: e });
      }
      if (!isTransportFailure(e)) throw e;
      throw new DefenderApiError(`${request}: response cut short after ${splitter.bytes} bytes (${(e as Error).message})`, { errorClass: 'malformed', status: res.status, request, cause: e });
    } finally {
      clearTimeout(timer);
    }
    if (pending.length) await onItems(pending);
    const next = splitter.meta['@odata.nextLink'];
    if (next !== undefined && typeof next !== 'string') throw new DefenderApiError(`${request}: @odata.nextLink is not a string`, { errorClass: 'malformed', request });
    return { nextLink: next, count: splitter.count, status: res.status };
  }

  /** Sends with token, budget and retries; returns a 2xx response whose body is not yet read. */
  private async send(opts: RequestOptions, timeoutMs: number, abort?: AbortController): Promise<Response> {
    const method = opts.method ?? 'GET';
    const family = opts.family ?? 'standard';
    const url = this.url(opts.path, opts.query);
    const request = `${method} ${url.pathname}`;
    const retry = opts.retry ?? true;
    let transient = 0;
    let throttled = 0;
    let reauthed = false;
    for (;;) {
      await this.budgets[family].acquire(this.waits.signal);
      const token = await this.tokens.getToken(reauthed ? { forceRefresh: true } : {});
      let res: Response;
      // A streamed page gets timeoutMs for its headers, then the caller's idle timer (abort) for the
      // body; a plain request gets timeoutMs for headers and body together.
      const headers = abort ? new AbortController() : undefined;
      const headerTimer = headers ? setTimeout(() => headers.abort(), timeoutMs) : undefined;
      try {
        res = await send(url.toString(), {
          method,
          agent: this.agent.agent,
          timeoutMs: abort ? 24 * 3600_000 : timeoutMs,
          ...(abort && headers ? { signal: AbortSignal.any([abort.signal, headers.signal]) } : {}),
          headers: { Authorization: `Bearer ${token}`, ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
          body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        });
      } catch (e) {
        clearTimeout(headerTimer);
        const err = transportError(e, request);
        this.events.onCall?.(family, undefined);
        // A POST that may have reached Defender is not repeated; a GET is.
        if (retry && method === 'GET' && transient < retryPolicy.maxTransientRetries) {
          await this.pause(backoffMs(transient++, this.random), err);
          continue;
        }
        throw err;
      }
      clearTimeout(headerTimer);
      this.events.onCall?.(family, res.status);
      if (res.ok) return res;
      const err = await errorFromResponse(res, request);
      if (res.status === 401 && !reauthed) {
        // One re-acquire: the token may have been revoked or rotated before its expiry.
        reauthed = true;
        continue;
      }
      if (res.status === 429) {
        const wait = err.retryAfterMs ?? retryPolicy.defaultRetryAfterMs;
        this.events.onThrottled?.(family, wait);
        // A throttled call was not executed, so even a POST may be repeated.
        if (retry && throttled++ < retryPolicy.maxThrottleRetries) {
          await this.pause(wait, err);
          continue;
        }
        throw err;
      }
      if (res.status >= 500 && retry && method === 'GET' && transient < retryPolicy.maxTransientRetries) {
        await this.pause(backoffMs(transient++, this.random), err);
        continue;
      }
      throw err;
    }
  }

  private async pause(ms: number, why: DefenderApiError): Promise<void> {
    this.logger?.warn({ connector: this.connector.name, err: why, waitMs: ms }, 'Defender call failed; retrying');
    await sleepUnless(this.clock, ms, this.waits.signal);
  }
}

/** A page item that is not an object, passed on marked (see itemDefect) with its value kept. */
function notAnObject(item: unknown, index: number): Record<string, unknown> {
  const what = item === null ? 'null' : Array.isArray(item) ? 'an array' : typeof item;
  return { value: item, [itemDefect]: `item ${index} of the page is not an object (${what})` };
}

function isTransportFailure(e: unknown): boolean {
  const err = e as { name?: string; type?: string; code?: string };
  return err?.name === 'FetchError' || err?.name === 'AbortError' || err?.type === 'aborted' || typeof err?.code === 'string';
}
