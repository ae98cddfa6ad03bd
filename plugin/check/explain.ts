// Explanations for the failures operators actually hit, each naming the config key (or the Entra /
// Defender setting) to change. The API part follows the vendor's error table (common-errors.md)
// made specific to the call that failed.
import type { Connector } from '../config/load.js';
import { documentedAuthorityHosts, documentedDefenderHosts } from '../config/endpoints.js';
import type { DefenderApiError, TokenError } from '../defender/errors.js';
import { describeNeed, type PermissionNeed } from './permissions.js';
import { hostOf, networkFacts, proxyOf } from './network.js';

export interface Explanation {
  detail: string;
  fix: string;
  /** config keys relative to the connector (clientSecret) or absolute pointers (/stateDir) */
  keys: string[];
}

const appPath = 'Entra admin center → App registrations → (your app)';

/** AADSTS codes from Entra's token endpoint, with the fix. */
const aadstsTable: Record<string, (c: Connector) => Explanation> = {
  AADSTS7000215: () => ({
    detail: 'Entra rejected the client secret (AADSTS7000215: invalid client secret).',
    fix: `Set clientSecret to the secret's Value (not its Secret ID) from ${appPath} → Certificates & secrets; if the value is lost, create a new secret there.`,
    keys: ['clientSecret'],
  }),
  AADSTS7000222: () => ({
    detail: 'The client secret has expired (AADSTS7000222).',
    fix: `Create a new client secret in ${appPath} → Certificates & secrets, put its Value into clientSecret, then restart the collector and the sidecar.`,
    keys: ['clientSecret'],
  }),
  AADSTS700016: (c) => ({
    detail: `Application ${c.clientId} was not found in directory ${c.directoryId} (AADSTS700016).`,
    fix: 'Set clientId to the "Application (client) ID" from the app registration\'s Overview page, and directoryId to the tenant where the app is registered; a multi-tenant app must first be consented to by an admin of that tenant.',
    keys: ['clientId', 'directoryId'],
  }),
  AADSTS90002: (c) => ({
    detail: `Tenant ${c.directoryId} was not found at ${c.authorityUrl} (AADSTS90002).`,
    fix: `Set directoryId to the "Directory (tenant) ID" from Entra admin center → Overview. A US Government tenant needs authorityHost login.microsoftonline.us (documented hosts: ${documentedAuthorityHosts.join(', ')}).`,
    keys: ['directoryId', 'authorityHost'],
  }),
  AADSTS900023: (c) => ({
    detail: `The tenant identifier ${c.directoryId} is not valid (AADSTS900023).`,
    fix: 'Set directoryId to the "Directory (tenant) ID" (a GUID) from Entra admin center → Overview.',
    keys: ['directoryId'],
  }),
  AADSTS90072: (c) => ({
    detail: `The application is not known in tenant ${c.directoryId} (AADSTS90072).`,
    fix: 'Check directoryId; a multi-tenant app must be consented to by an admin of that tenant before it can get tokens there.',
    keys: ['directoryId', 'clientId'],
  }),
  AADSTS500011: (c) => ({
    detail: `The WindowsDefenderATP resource was not found in tenant ${c.directoryId} (AADSTS500011).`,
    fix: 'The tenant has no Microsoft Defender for Endpoint service principal: check that directoryId is the tenant licensed for Defender for Endpoint and that the service is provisioned (open the Defender portal once).',
    keys: ['directoryId'],
  }),
  AADSTS7000112: () => ({
    detail: 'The application is disabled (AADSTS7000112).',
    fix: 'Enable the app: Entra admin center → Enterprise applications → (your app) → Properties → "Enabled for users to sign-in?" = Yes.',
    keys: ['clientId'],
  }),
  AADSTS53003: () => ({
    detail: 'A Conditional Access policy blocked the token request (AADSTS53003).',
    fix: 'Ask the Entra admin to allow this workload identity (or the collector\'s egress IP) in the Conditional Access policy for workload identities.',
    keys: [],
  }),
  AADSTS50194: (c) => ({
    detail: `The application is not multi-tenant but directoryId ${c.directoryId} is another tenant (AADSTS50194).`,
    fix: 'Set directoryId to the tenant where the app is registered, or make the app multi-tenant and have the other tenant consent to it.',
    keys: ['directoryId'],
  }),
  AADSTS700213: () => ({
    detail: 'Entra rejected the client credential (AADSTS700213).',
    fix: `Check clientSecret against ${appPath} → Certificates & secrets.`,
    keys: ['clientSecret'],
  }),
};

export const explainedAadsts = Object.keys(aadstsTable);

/** A proxy URL without its credentials. */
export function safeUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Network, TLS, proxy and timeout failures on one host. `hostKey` is the config key that names the
 * host (authorityHost or apiEndpoint); `errorClass` is the client's classification.
 */
export function explainNetwork(
  e: unknown,
  errorClass: string,
  c: Connector,
  target: { url: string; hostKey: 'authorityHost' | 'apiEndpoint' },
  env: NodeJS.ProcessEnv = process.env,
): Explanation | undefined {
  const f = networkFacts(e);
  const host = hostOf(target.url);
  const proxy = proxyOf(c.proxy, target.url, env);
  const proxyKey = c.proxy ? 'proxy' : 'HTTPS_PROXY (environment)';
  const code = f.code ? ` (${f.code})` : '';
  const kind = errorClass === 'tls' ? 'tls' : errorClass === 'timeout' ? 'timeout' : f.kind;
  if (kind === 'tls') {
    return {
      detail: `TLS handshake with ${host} failed${code}: the server certificate was not accepted.`,
      fix: `If a TLS-inspecting proxy or firewall sits in between, put its CA certificate (PEM) into caFile; otherwise check the system clock and that ${target.hostKey} (${host}) is the real Microsoft host.`,
      keys: ['caFile', target.hostKey],
    };
  }
  if (kind === 'timeout') {
    return {
      detail: `${host} did not answer within requestTimeoutSeconds (${c.requestTimeoutSeconds} s)${code}${proxy ? ` through the proxy ${safeUrl(proxy)}` : ''}.`,
      fix: proxy
        ? `Check that the proxy (${proxyKey}) is up and allows CONNECT to ${host}:443; raise requestTimeoutSeconds only for a slow link.`
        : `Check that the firewall allows outbound HTTPS to ${host}:443, or set proxy if egress must go through one; raise requestTimeoutSeconds only for a slow link.`,
      keys: ['proxy', 'requestTimeoutSeconds', target.hostKey],
    };
  }
  // Through a proxy the only direct connection (and DNS lookup) is to the proxy itself.
  if (proxy && (kind === 'dns' || kind === 'refused' || kind === 'proxy')) {
    return {
      detail: `The proxy ${safeUrl(proxy)} could not be used${code}: ${f.message ?? 'no detail'}.`,
      fix: `Check ${proxyKey}: the host name and port, its credentials, and that it allows CONNECT to ${host}:443.`,
      keys: ['proxy'],
    };
  }
  if (kind === 'dns') {
    return {
      detail: `DNS lookup of ${f.hostname ?? host} failed${code}.`,
      fix: `Check ${target.hostKey} (${host}) for typos and that this machine can resolve it (DNS servers, split-horizon DNS); if egress must use a proxy, set proxy.`,
      keys: [target.hostKey, 'proxy'],
    };
  }
  if (kind === 'refused' || kind === 'proxy' || errorClass === 'network') {
    return {
      detail: `The connection to ${host} failed${code}.`,
      fix: `Check that the firewall allows outbound HTTPS to ${host}:443, or set proxy if egress must go through one.`,
      keys: ['proxy', target.hostKey],
    };
  }
  return undefined;
}

export function explainTokenError(e: TokenError, c: Connector, env: NodeJS.ProcessEnv = process.env): Explanation {
  const known = e.aadsts ? aadstsTable[e.aadsts.toUpperCase()] : undefined;
  if (known) return known(c);
  if (e.errorClass === 'network' || e.errorClass === 'tls' || e.errorClass === 'timeout') {
    const n = explainNetwork(e, e.errorClass, c, { url: c.authorityUrl, hostKey: 'authorityHost' }, env);
    if (n) return n;
  }
  if (e.aadsts) {
    return {
      detail: `Entra refused the token request (${e.aadsts}).`,
      fix: `Look up ${e.aadsts} at https://login.microsoftonline.com/error?code=${e.aadsts.replace(/^AADSTS/i, '')}; then check clientId, clientSecret and directoryId against ${appPath}.`,
      keys: ['clientId', 'clientSecret', 'directoryId'],
    };
  }
  if (e.errorClass === 'config') {
    return { detail: 'The token request could not be built from the configuration.', fix: 'Check authorityHost and directoryId.', keys: ['authorityHost', 'directoryId'] };
  }
  return {
    detail: `No token from ${c.authorityUrl} (${e.errorClass}).`,
    fix: `Check authorityHost (${hostOf(c.authorityUrl)}), directoryId, clientId and clientSecret, and that ${hostOf(c.authorityUrl)}:443 is reachable.`,
    keys: ['authorityHost', 'directoryId', 'clientId', 'clientSecret'],
  };
}

/** What an API probe needs, for the 403 explanation. */
export interface ProbeContext {
  label: string;
  needs: PermissionNeed[];
  /** roles the token carried, when they could be read */
  granted?: string[];
}

export function explainApiError(e: DefenderApiError, c: Connector, probe: ProbeContext, env: NodeJS.ProcessEnv = process.env): Explanation {
  const host = hostOf(c.apiBaseUrl);
  switch (e.status) {
    case 400:
      return {
        detail: `Defender rejected the request as invalid (400${e.code ? ` ${e.code}` : ''}).`,
        fix: `The minimal ${probe.label} query is fixed, so a 400 means apiEndpoint (${host}) is not the Defender for Endpoint API or points at an unsupported API version: set apiEndpoint to one of the documented hosts${c.allowCustomEndpoint ? ' (allowCustomEndpoint is on: check the custom host)' : ''}.`,
        keys: ['apiEndpoint'],
      };
    case 401:
      return {
        detail: 'Defender refused the token (401 Unauthorized): the credentials are wrong or expired, or the tenant is not licensed for the resource.',
        fix: `Entra issued a token, so clientId/clientSecret work; check that directoryId (${c.directoryId}) is the tenant that has Microsoft Defender for Endpoint (Plan 1/2 or E5) licensed and onboarded, and that the app's permissions were added under "APIs my organization uses → WindowsDefenderATP" (not Microsoft Graph).`,
        keys: ['directoryId', 'clientId', 'clientSecret'],
      };
    case 403: {
      if (e.code === 'DisabledFeature') {
        return {
          detail: 'Defender says the feature is not enabled for this tenant (403 DisabledFeature).',
          fix: `Enable or license the feature behind ${probe.label} in the Defender portal (e.g. Defender Vulnerability Management for the export APIs), or remove "${probe.label}" from contentTypes.`,
          keys: ['contentTypes'],
        };
      }
      const needs = probe.needs.map(describeNeed).join(' and ');
      const had = probe.granted && probe.needs.every((n) => n.anyOf.some((r) => probe.granted!.some((g) => g.toLowerCase() === r.toLowerCase())));
      return {
        detail: `Defender refused ${probe.label} (403 Forbidden${e.code && e.code !== 'Forbidden' ? ` ${e.code}` : ''}): the token lacks the role ${needs || '(unknown)'}.`,
        fix: had
          ? `The token already carries ${needs}: if consent was granted minutes ago, wait and re-run; otherwise check that the app's device-group (RBAC) scope covers the devices, or remove "${probe.label}" from ${probe.label === 'respond' ? 'functions' : 'contentTypes'}.`
          : `Add the application permission ${needs} under ${appPath} → API permissions → APIs my organization uses → WindowsDefenderATP, then grant admin consent again (each added permission needs consent).`,
        keys: [probe.label === 'respond' ? 'functions' : 'contentTypes'],
      };
    }
    case 404:
      return {
        detail: `${host} answered 404 Not Found for ${probe.label}: the API endpoint is wrong${e.code ? ` (${e.code})` : ''}.`,
        fix: `Is the region right? Set apiEndpoint to the host for your tenant's region, one of: ${documentedDefenderHosts.join(', ')}.`,
        keys: ['apiEndpoint'],
      };
    case 407:
      return {
        detail: 'The proxy refused the request (407 Proxy Authentication Required).',
        fix: `Put the proxy's credentials into the proxy URL (${c.proxy ? 'proxy' : 'HTTPS_PROXY'}: http://user:password@host:port) or ask for this host to be allowed without authentication.`,
        keys: ['proxy'],
      };
    case 429: {
      const s = e.retryAfterMs !== undefined ? Math.ceil(e.retryAfterMs / 1000) : undefined;
      return {
        detail: `Defender throttled the call (429 TooManyRequests${s !== undefined ? `, Retry-After ${s} s` : ''}).`,
        fix: `Nothing to change: the quota recovers${s !== undefined ? ` in about ${s} s` : ' within a minute'}, and the collector waits and retries by itself. Re-run the test after that; if it persists, another tool may be using the same app's quota (100 calls/min, 1 500/h per API).`,
        keys: [],
      };
    }
  }
  if (e.status !== undefined && e.status >= 500) {
    return {
      detail: `Defender answered ${e.status} (server error).`,
      fix: 'Nothing to change in the config: retry later; if it persists, open a Microsoft support case quoting the correlation id.',
      keys: [],
    };
  }
  const net = explainNetwork(e, e.errorClass, c, { url: c.apiBaseUrl, hostKey: 'apiEndpoint' }, env);
  if (net) return net;
  if (e.errorClass === 'malformed') {
    return {
      detail: `${host} did not answer with the Defender API's JSON.`,
      fix: 'Check apiEndpoint: a proxy, captive portal or non-Defender host answered instead.',
      keys: ['apiEndpoint', 'proxy'],
    };
  }
  return {
    detail: `The call failed (${e.errorClass}${e.status ? ` ${e.status}` : ''}).`,
    fix: `Check apiEndpoint (${host}) and network access to it.`,
    keys: ['apiEndpoint'],
  };
}
