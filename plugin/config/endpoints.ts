// The documented Defender for Endpoint API hosts and Entra authority hosts (see defender-api.md §2).
const defenderHostPatterns: RegExp[] = [
  /^api\.security\.microsoft\.com$/,
  /^(us|eu|uk|au|swa|ina)\.api\.security\.microsoft\.com$/,
  /^api(-[a-z0-9]+)?\.securitycenter\.microsoft\.com$/,
  /^api-(gcc|gov)\.securitycenter\.microsoft\.us$/,
];

export const documentedDefenderHosts = [
  'api.security.microsoft.com',
  'us.api.security.microsoft.com',
  'eu.api.security.microsoft.com',
  'uk.api.security.microsoft.com',
  'au.api.security.microsoft.com',
  'swa.api.security.microsoft.com',
  'ina.api.security.microsoft.com',
  'api.securitycenter.microsoft.com',
  'api-us.securitycenter.microsoft.com',
  'api-eu.securitycenter.microsoft.com',
  'api-uk.securitycenter.microsoft.com',
  'api-au.securitycenter.microsoft.com',
  'api-gcc.securitycenter.microsoft.us',
  'api-gov.securitycenter.microsoft.us',
];

export const documentedAuthorityHosts = ['login.microsoftonline.com', 'login.microsoftonline.us'];

/**
 * Microsoft Graph hosts where runHuntingQuery is available (its national-cloud table: global, US
 * Government L4 and L5; not the China cloud). Each is its own token audience.
 */
export const documentedGraphHosts = ['graph.microsoft.com', 'graph.microsoft.us', 'dod-graph.microsoft.us'];

/** The token scope for a Graph host: its own for the national clouds, the global one otherwise (an emulator or proxy stands in for it). */
export function graphScope(graphBaseUrl: string): string {
  const host = new URL(graphBaseUrl).host;
  return `https://${documentedGraphHosts.includes(host) ? host : documentedGraphHosts[0]}/.default`;
}

export interface ParsedEndpoint {
  /** https://host[:port], no trailing slash */
  origin: string;
  host: string;
  documented: boolean;
}

/** Accepts a bare host name or an https:// URL without a path; returns null with a reason otherwise. */
export function parseEndpoint(value: string, kind: 'defender' | 'authority' | 'graph'): ParsedEndpoint | { error: string } {
  const raw = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { error: `"${value}" is not a host name or https:// URL` };
  }
  if (url.protocol !== 'https:') return { error: `must use https:// (got ${url.protocol}//)` };
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) {
    return { error: `must be a host name or https://host without a path (got "${value}")` };
  }
  if (url.username || url.password) return { error: 'must not contain credentials' };
  const host = url.hostname.toLowerCase();
  const documented =
    url.port === '' &&
    (kind === 'defender' ? defenderHostPatterns.some((p) => p.test(host)) : (kind === 'graph' ? documentedGraphHosts : documentedAuthorityHosts).includes(host));
  return { origin: `https://${url.host.toLowerCase()}`, host, documented };
}
