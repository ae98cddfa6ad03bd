// `defender-fluent test` for the hunting content type: Microsoft Graph is another API with its own
// token (scope https://graph.microsoft.com/.default or the national cloud's) and its own
// application permission, ThreatHunting.Read.All, so it is checked on its own token.
import { graphScope } from '../config/endpoints.js';
import type { Connector } from '../config/load.js';
import { DefenderApiError, TokenError } from '../defender/errors.js';
import { graphClient, runHuntingQuery, runHuntingQueryPath } from '../defender/hunting.js';
import type { CheckItem } from '../generated/check-output.js';
import { registerSecret } from '../log.js';
import { readTokenRoles } from './permissions.js';

const title = 'Microsoft Graph advanced hunting (runHuntingQuery)';
const role = 'ThreatHunting.Read.All';
const consent = `Entra admin center → App registrations → (your app) → API permissions → Add a permission → Microsoft Graph → Application permissions → ${role}; then select "Grant admin consent" and re-run the test.`;

/** Token for Graph, its roles, and one query of one row over the last hour (the smallest call). */
export async function checkHunting(c: Connector, pointer: string): Promise<CheckItem> {
  const client = graphClient(c);
  const url = `${c.graphBaseUrl}${runHuntingQueryPath}`;
  try {
    let token: string;
    try {
      token = await client.tokens.getToken();
      registerSecret(token);
    } catch (e) {
      const detail = e instanceof TokenError ? e.message : String((e as Error)?.message ?? e);
      return { id: 'api:hunting', title, result: 'fail', detail: `no token for ${graphScope(c.graphBaseUrl)}: ${detail}`, fix: 'The same app registration serves Graph: fix the token step above first; a national cloud needs its own graphEndpoint.', configKeys: [`${pointer}/graphEndpoint`] };
    }
    const roles = readTokenRoles(token);
    if (roles.kind === 'jwt' && !roles.roles.some((r) => r.toLowerCase() === role.toLowerCase())) {
      return { id: 'api:hunting', title, result: 'fail', detail: `the Graph token lacks ${role}${roles.roles.length ? ` (it has: ${roles.roles.join(', ')})` : ' (it has no application permissions)'}`, fix: `${consent} Or remove hunting from contentTypes.`, configKeys: [`${pointer}/contentTypes`], permissions: { granted: roles.roles, missing: [role] } };
    }
    const res = await runHuntingQuery(client, 'DeviceProcessEvents | take 1', 'PT1H');
    return { id: 'api:hunting', title, result: 'pass', detail: `HTTP 200: runHuntingQuery answered (${res.rows.length} row${res.rows.length === 1 ? '' : 's'} of the last hour)`, request: { method: 'POST', url, status: 200 } };
  } catch (e) {
    if (!(e instanceof DefenderApiError)) throw e;
    const fixes: Record<number, [string, string[]]> = {
      400: ['Graph refused the query: check graphEndpoint (runHuntingQuery exists on graph.microsoft.com, graph.microsoft.us and dod-graph.microsoft.us, not in the China cloud).', ['graphEndpoint']],
      401: ['Graph refused the token: graphEndpoint must match the cloud the token is for (graph.microsoft.us for GCC High, dod-graph.microsoft.us for DoD).', ['graphEndpoint']],
      403: [consent, ['contentTypes']],
      404: ['No runHuntingQuery at this host: set graphEndpoint to graph.microsoft.com (or the national cloud’s Graph host).', ['graphEndpoint']],
      429: ["Nothing to change: the tenant's hunting quota (calls per minute or CPU per 15-minute cycle) recovers by itself and the collector waits for it.", []],
    };
    const [fix, keys] = fixes[e.status ?? 0] ?? ['Check network access to graphEndpoint (proxy, firewall, caFile) and run the test again.', ['graphEndpoint']];
    return { id: 'api:hunting', title, result: 'fail', detail: e.message, fix, configKeys: keys.map((k) => `${pointer}/${k}`), request: { method: 'POST', url, ...(e.status !== undefined ? { status: e.status } : {}) } };
  } finally {
    client.close();
  }
}
