// The per-connector part of `defender-fluent test`: lock, token, permissions, one call per API.
// Every step appends a CheckItem; a failed step skips the steps that depend on it.
import type { Connector } from '../config/load.js';
import { TokenProvider } from '../defender/auth.js';
import { DefenderClient } from '../defender/client.js';
import { DefenderApiError, TokenError } from '../defender/errors.js';
import { createAgent } from '../defender/http.js';
import { registerSecret } from '../log.js';
import type { CheckItem, ConnectorCheckReport } from '../generated/check-output.js';
import { explainApiError, explainTokenError, type Explanation } from './explain.js';
import { checkHunting } from './hunting.js';
import { acquireTestLock } from './lock.js';
import { describeNeed, missingNeeds, permissionNeeds, readTokenRoles } from './permissions.js';
import { probesFor, probeUrl, type Probe } from './probes.js';

export interface RunContext {
  stateDir: string;
  /** JSON pointer of the connector in the config, e.g. /connectors/0 */
  pointer: string;
  env?: NodeJS.ProcessEnv;
  /** the response actions some respond token may call on this connector (their permissions are checked too) */
  respondActions?: readonly string[];
}

function keysOf(x: Explanation, pointer: string): string[] {
  return x.keys.map((k) => (k.startsWith('/') ? k : `${pointer}/${k}`));
}

function skipped(id: CheckItem['id'], title: string, why: string): CheckItem {
  return { id, title, result: 'skip', detail: `not run: ${why}` };
}

export async function checkConnector(c: Connector, ctx: RunContext, checks: CheckItem[]): Promise<ConnectorCheckReport> {
  const env = ctx.env ?? process.env;
  const report: ConnectorCheckReport = {
    name: c.name,
    ok: false,
    apiEndpoint: c.apiBaseUrl,
    functions: [...c.functions],
    contentTypes: [...c.contentTypes],
    checks,
  };
  const probes = probesFor(c);
  const skipRest = (why: string) => {
    checks.push(skipped('token', 'token from Entra ID', why));
    checks.push(skipped('permissions', 'API permissions (roles)', why));
    for (const p of probes) checks.push(skipped(p.checkId, p.title, why));
  };

  // A literal clientSecret is not registered by the config loader (only ${env:}/${file:} values are).
  registerSecret(c.clientSecret);

  const lock = await acquireTestLock(ctx.stateDir, c.name);
  if (!lock.ok) {
    checks.push({
      id: 'lock',
      title: 'one test per connector',
      result: 'fail',
      detail: lock.message,
      fix: lock.pid
        ? `Wait for pid ${lock.pid} to finish and run the test again; if pid ${lock.pid} is not a defender-fluent test, delete ${lock.file}.`
        : `Check that stateDir (${ctx.stateDir}) is writable by this user.`,
      configKeys: lock.pid ? [] : ['/stateDir'],
    });
    skipRest('another test of this connector holds the lock');
    return finish(report);
  }
  checks.push({ id: 'lock', title: 'one test per connector', result: 'pass', detail: `holding ${lock.file}` });

  const agent = createAgent(c.authorityUrl, c, env);
  try {
    const tokens = new TokenProvider(c, { agent });
    // ── token ──
    let token: string;
    try {
      token = await tokens.getToken();
      registerSecret(token);
      checks.push({ id: 'token', title: 'token from Entra ID', result: 'pass', detail: `token issued by ${c.authorityUrl}/${c.directoryId} for app ${c.clientId}` });
    } catch (e) {
      const err = e instanceof TokenError ? e : new TokenError(String((e as Error)?.message ?? e), { errorClass: 'auth', cause: e });
      const x = explainTokenError(err, c, env);
      checks.push({
        id: 'token',
        title: 'token from Entra ID',
        result: 'fail',
        detail: x.detail,
        fix: x.fix,
        configKeys: keysOf(x, ctx.pointer),
        entraError: { ...(err.aadsts ? { aadsts: err.aadsts } : {}), errorClass: err.errorClass, ...(err.code ? { code: err.code } : {}), message: err.message },
      });
      checks.push(skipped('permissions', 'API permissions (roles)', 'no token'));
      for (const p of probes) checks.push(skipped(p.checkId, p.title, 'no token'));
      return finish(report);
    }

    // ── permissions (before any data call) ──
    const needs = permissionNeeds(c, ctx.respondActions);
    const roles = readTokenRoles(token);
    let unmet = new Set<string>();
    let granted: string[] | undefined;
    if (roles.kind === 'not-jwt') {
      checks.push({
        id: 'permissions',
        title: 'API permissions (roles)',
        result: 'warn',
        detail: `the access token is not a JWT (${roles.reason}), so its permissions cannot be read; the API calls below show whether they suffice`,
        fix: 'Nothing to change if the API calls pass; an emulator or a token proxy may issue opaque tokens.',
      });
    } else {
      granted = roles.roles;
      const missing = missingNeeds(needs, roles.roles);
      unmet = new Set(missing.map(describeNeed));
      const consent = 'Entra admin center → App registrations → (your app) → API permissions → Add a permission → APIs my organization uses → WindowsDefenderATP → Application permissions; add them, then select "Grant admin consent" again (every added permission needs consent again) and re-run the test.';
      if (!roles.hasRolesClaim || roles.roles.length === 0) {
        checks.push({
          id: 'permissions',
          title: 'API permissions (roles)',
          result: 'fail',
          detail: `the token carries no application permissions (no roles); this connector needs: ${needs.map((n) => `${describeNeed(n)} (${n.purpose})`).join('; ')}`,
          fix: `Either no permission was added or admin consent was not granted. ${consent}`,
          configKeys: [`${ctx.pointer}/clientId`],
          permissions: { granted: [], missing: needs.map(describeNeed) },
        });
      } else if (missing.length) {
        checks.push({
          id: 'permissions',
          title: 'API permissions (roles)',
          result: 'fail',
          detail: `missing ${missing.map((n) => `${describeNeed(n)} (needed for ${n.purpose})`).join('; ')}; the token has: ${roles.roles.join(', ')}`,
          fix: `${consent} Or remove what you do not use from contentTypes / functions.`,
          configKeys: [`${ctx.pointer}/contentTypes`, `${ctx.pointer}/functions`],
          permissions: { granted: roles.roles, missing: missing.map(describeNeed) },
        });
      } else {
        checks.push({
          id: 'permissions',
          title: 'API permissions (roles)',
          result: 'pass',
          detail: `the token has ${needs.map(describeNeed).join('; ')}${roles.tid && roles.tid.toLowerCase() !== c.directoryId.toLowerCase() ? ` (note: token tenant ${roles.tid} differs from directoryId)` : ''}`,
          permissions: { granted: roles.roles, missing: [] },
        });
      }
    }

    // ── one minimal call per API ──
    const client = new DefenderClient(c, { tokens });
    let endpointNotFound = false;
    for (const p of probes) {
      const lacking = p.needs.map(describeNeed).filter((n) => unmet.has(n));
      if (lacking.length) {
        checks.push(skipped(p.checkId, p.title, `the token lacks ${lacking.join(' and ')} (see permissions)`));
        continue;
      }
      const item = await probe(client, c, p, ctx, granted, endpointNotFound, env);
      if (item.request?.status === 404 && item.result === 'fail') endpointNotFound = true;
      checks.push(item);
    }
    if (c.functions.includes('collect') && c.contentTypes.includes('hunting')) checks.push(await checkHunting(c, ctx.pointer));
  } finally {
    agent.destroy();
    await lock.release();
  }
  return finish(report);
}

async function probe(
  client: DefenderClient,
  c: Connector,
  p: Probe,
  ctx: RunContext,
  granted: string[] | undefined,
  endpointNotFound: boolean,
  env: NodeJS.ProcessEnv,
): Promise<CheckItem> {
  const url = probeUrl(c.apiBaseUrl, p);
  try {
    const res = await client.request({ method: 'GET', path: p.path, query: p.query, family: p.family, retry: false });
    return { id: p.checkId, title: p.title, result: 'pass', detail: `HTTP ${res.status}: the API answered`, request: { method: 'GET', url, status: res.status } };
  } catch (e) {
    if (!(e instanceof DefenderApiError)) {
      if (e instanceof TokenError) {
        const x = explainTokenError(e, c, env);
        return { id: p.checkId, title: p.title, result: 'fail', detail: `token renewal failed: ${x.detail}`, fix: x.fix, configKeys: keysOf(x, ctx.pointer), request: { method: 'GET', url } };
      }
      throw e;
    }
    const request = { method: 'GET', url, ...(e.status !== undefined ? { status: e.status } : {}) };
    const defenderError = e.status !== undefined && (e.code || e.target) ? { ...(e.code ? { code: e.code } : {}), message: e.serverMessage ?? e.message, ...(e.target ? { target: e.target } : {}) } : undefined;
    // GET /api/machines answers 404 with Defender's envelope when the tenant has no machines. A bare
    // 404 (no envelope), or one after another API also 404ed, is a wrong host instead.
    if (e.status === 404 && p.notFoundIsEmpty && e.code && !endpointNotFound) {
      return { id: p.checkId, title: p.title, result: 'pass', detail: `HTTP 404 ${e.code}: the API is reachable and reports no machines`, request, ...(defenderError ? { defenderError } : {}) };
    }
    const x = explainApiError(e, c, { label: p.id, needs: p.needs, granted }, env);
    return {
      id: p.checkId,
      title: p.title,
      result: 'fail',
      detail: x.detail,
      fix: x.fix,
      configKeys: keysOf(x, ctx.pointer),
      request,
      ...(defenderError ? { defenderError } : {}),
      ...(e.status === 429 && e.retryAfterMs !== undefined ? { retryAfterSeconds: Math.ceil(e.retryAfterMs / 1000) } : {}),
    };
  }
}

function finish(report: ConnectorCheckReport): ConnectorCheckReport {
  report.ok = !report.checks.some((x) => x.result === 'fail');
  return report;
}
