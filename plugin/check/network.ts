import { proxyFor } from '../defender/http.js';

// Node / undici / node-fetch error codes grouped by what the operator has to fix. Errors arrive
// wrapped (FetchError → cause → system error), so the code is searched along the cause chain.

export const dnsCodes = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
export const timeoutCodes = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ABORT_ERR', 'request-timeout']);
export const refusedCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);
export const tlsCodes = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

export interface NetworkFacts {
  /** the most specific error code found on the error or its causes */
  code?: string;
  /** host name from a DNS failure (getaddrinfo ENOTFOUND host) */
  hostname?: string;
  kind?: 'dns' | 'timeout' | 'refused' | 'tls' | 'proxy';
  /** the innermost message, for the detail column */
  message?: string;
}

function chain(e: unknown): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur && typeof cur === 'object'; i++) {
    out.push(cur as Record<string, unknown>);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

export function networkFacts(e: unknown): NetworkFacts {
  const links = chain(e);
  const facts: NetworkFacts = {};
  const codes: string[] = [];
  for (const l of links) {
    if (typeof l.code === 'string') codes.push(l.code);
    if (typeof l.hostname === 'string' && !facts.hostname) facts.hostname = l.hostname;
    if (typeof l.message === 'string') facts.message = l.message;
  }
  const text = links.map((l) => (typeof l.message === 'string' ? l.message : '')).join(' | ');
  // Codes also appear only inside messages ("getaddrinfo ENOTFOUND host", "reason: certificate has expired").
  const inText = text.match(/\b(E[A-Z_]{3,}|CERT_[A-Z_]+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_[A-Z_]+|ERR_TLS_[A-Z_]+)\b/g) ?? [];
  const all = [...codes, ...inText];
  const pick = (set: Set<string>) => all.find((c) => set.has(c));
  const host = text.match(/(?:ENOTFOUND|EAI_AGAIN)\s+([A-Za-z0-9.-]+)/);
  if (host && !facts.hostname) facts.hostname = host[1];
  if (/proxy/i.test(text) || /\b407\b/.test(text)) facts.kind = 'proxy';
  const tls = pick(tlsCodes) ?? (/certificate|self[- ]signed|ssl|tls/i.test(text) ? 'TLS' : undefined);
  const dns = pick(dnsCodes);
  const timeout = pick(timeoutCodes) ?? (/timed? ?out|timeout/i.test(text) ? 'timeout' : undefined);
  const refused = pick(refusedCodes);
  if (!facts.kind) {
    if (tls) facts.kind = 'tls';
    else if (dns) facts.kind = 'dns';
    else if (timeout) facts.kind = 'timeout';
    else if (refused) facts.kind = 'refused';
  }
  facts.code = (facts.kind === 'tls' ? tls : facts.kind === 'dns' ? dns : facts.kind === 'timeout' ? timeout : facts.kind === 'refused' ? refused : undefined) ?? codes[0];
  return facts;
}

/**
 * The proxy used for `target`, if any: the connector's `proxy`, else HTTPS_PROXY unless NO_PROXY
 * covers the host (the same rule as plugin/defender/http.ts).
 */
export function proxyOf(proxy: string | undefined, target: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return proxy;
  }
  return proxyFor(url, proxy, env);
}

export function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}
