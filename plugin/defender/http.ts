import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls, { rootCertificates } from 'node:tls';
import { HttpsProxyAgent } from 'https-proxy-agent';
import fetch, { type RequestInit, type Response } from 'node-fetch';
import { userAgent } from '../paths.js';
import { DefenderApiError, type ErrorClass } from './errors.js';

export interface HttpOptions {
  /** extra CA (PEM file) trusted besides the system roots: emulators, TLS-inspecting proxies */
  caFile?: string;
  /** proxy URL; defaults to HTTPS_PROXY / https_proxy unless NO_PROXY covers the host */
  proxy?: string;
  timeoutMs: number;
}

/** The proxy a request to `target` goes through: the configured one, else HTTPS_PROXY unless NO_PROXY covers the host. */
export function proxyFor(target: URL, explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit;
  const fromEnv = env.HTTPS_PROXY ?? env.https_proxy;
  if (!fromEnv) return undefined;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const host = target.hostname.toLowerCase();
  if (noProxy.some((n) => n === '*' || host === n.replace(/^\./, '') || host.endsWith(n.startsWith('.') ? n : `.${n}`))) return undefined;
  return fromEnv;
}

/**
 * A keep-alive agent for one origin: TLS sessions and sockets are reused across polls (the API
 * allows 100 calls/min; a new TLS handshake for each would waste most of the time). With an extra
 * CA, every connection shares one TLS context: built per connection from the ~140 system roots plus
 * the CA, each would cost about 1 MB of native memory.
 */
export function createAgent(origin: string, opts: Pick<HttpOptions, 'caFile' | 'proxy'>, env = process.env): https.Agent {
  const secureContext = opts.caFile ? contextWithCa(opts.caFile) : undefined;
  const proxy = proxyFor(new URL(origin), opts.proxy, env);
  if (proxy) return new TrustingProxyAgent(proxy, secureContext) as unknown as https.Agent;
  return new https.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, secureContext });
}

/** A shared agent (shareAgent()); the last release() destroys it, closing its idle connections. */
export interface AgentLease {
  readonly agent: https.Agent;
  release(): void;
}

const sharedAgents = new Map<string, { agent: https.Agent; users: number }>();

/**
 * One agent per origin, CA file and proxy for every connector that uses them: hundreds of tenants
 * reach the same two hosts (the API and Entra), and each agent keeps its own idle sockets and TLS
 * sessions. The requests carry each tenant's own token, so sharing the connections is safe.
 */
export function shareAgent(origin: string, opts: Pick<HttpOptions, 'caFile' | 'proxy'>, env = process.env): AgentLease {
  const key = JSON.stringify([origin, opts.caFile ?? '', proxyFor(new URL(origin), opts.proxy, env) ?? '']);
  let entry = sharedAgents.get(key);
  if (!entry) sharedAgents.set(key, (entry = { agent: createAgent(origin, opts, env), users: 0 }));
  const shared = entry;
  shared.users++;
  let released = false;
  return {
    agent: shared.agent,
    release() {
      if (released) return;
      released = true;
      if (--shared.users > 0) return;
      sharedAgents.delete(key);
      shared.agent.destroy();
    },
  };
}

const contexts = new Map<string, tls.SecureContext>();

/** The system roots plus the PEM file's CA, built once per file. */
function contextWithCa(caFile: string): tls.SecureContext {
  let context = contexts.get(caFile);
  if (!context) contexts.set(caFile, (context = tls.createSecureContext({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] })));
  return context;
}

/**
 * HttpsProxyAgent applies its own TLS options to the proxy connection only; the TLS session to the
 * endpoint through the tunnel takes the request's options, which carry no CA. Add the extra CA there.
 */
class TrustingProxyAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly endpointContext: tls.SecureContext | undefined,
  ) {
    super(proxy, { keepAlive: true, secureContext: endpointContext });
  }

  override connect(req: Parameters<HttpsProxyAgent<string>['connect']>[0], opts: Parameters<HttpsProxyAgent<string>['connect']>[1]) {
    // the tunnel's TLS options (secureEndpoint: true) are Node's tls.connect options
    return super.connect(req, this.endpointContext && opts.secureEndpoint ? { ...opts, secureContext: this.endpointContext } : opts);
  }
}

const tlsCodes = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS|ERR_SSL|HOSTNAME_MISMATCH|ERR_CERT)/;

/** Maps a transport failure (no HTTP status) to an error class. */
export function transportErrorClass(e: unknown): ErrorClass {
  const err = e as { name?: string; code?: string; type?: string; cause?: { code?: string } };
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError' || err?.type === 'aborted') return 'timeout';
  const code = err?.code ?? err?.cause?.code ?? '';
  if (tlsCodes.test(code)) return 'tls';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'timeout';
  return 'network';
}

export function transportError(e: unknown, request: string): DefenderApiError {
  const errorClass = transportErrorClass(e);
  const err = e as { code?: string; message?: string; cause?: { code?: string } };
  const code = err?.code ?? err?.cause?.code;
  const what =
    errorClass === 'timeout'
      ? 'timed out'
      : errorClass === 'tls'
        ? `TLS failure (${code}): check caFile, or a TLS-inspecting proxy`
        : `network error (${code ?? err?.message ?? 'unknown'})`;
  return new DefenderApiError(`${request}: ${what}`, { errorClass, code, request, cause: e });
}

/**
 * fetch with our User-Agent, agent and a deadline covering headers and body; a caller's own signal
 * (a streamed page's idle timer) aborts it too.
 */
export async function send(url: string, init: Omit<RequestInit, 'signal'> & { agent: https.Agent; timeoutMs: number; signal?: AbortSignal }): Promise<Response> {
  const { timeoutMs, signal, ...rest } = init;
  const deadline = AbortSignal.timeout(timeoutMs);
  return fetch(url, {
    ...rest,
    headers: { 'User-Agent': userAgent, Accept: 'application/json', ...(rest.headers as Record<string, string> | undefined) },
    signal: (signal ? AbortSignal.any([signal, deadline]) : deadline) as RequestInit['signal'],
    compress: true,
  });
}
