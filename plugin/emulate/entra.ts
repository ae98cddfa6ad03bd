// The Entra ID side: what @azure/msal-node needs for client credentials against a custom authority
// (OpenID metadata, instance discovery, the v2 token endpoint), plus the v1 endpoint. Tokens are
// JWT-shaped, HMAC-signed with a per-process key so the API side can tell ours from forged ones.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export const allRoles = ['Alert.Read.All', 'Machine.Read.All', 'Vulnerability.Read.All', 'Machine.Isolate', 'Machine.Scan', 'Machine.StopAndQuarantine', 'Machine.RestrictExecution', 'Machine.CollectForensics', 'Alert.ReadWrite.All', 'Machine.ReadWrite.All', 'Ti.ReadWrite'];

/** Resources a Defender for Endpoint token may be requested for (defender-api.md §1). */
const resources = ['https://api.securitycenter.microsoft.com', 'https://securitycenter.onmicrosoft.com/windowsatpservice', 'https://api.security.microsoft.com'];

/** Microsoft Graph, global and national clouds: its tokens carry the Graph application permissions. */
export const graphResources = ['https://graph.microsoft.com', 'https://graph.microsoft.us', 'https://dod-graph.microsoft.us'];

export interface TokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  appid: string;
  tid: string;
  roles: string[];
  jti: string;
  ver: '1.0';
}

export interface EntraOptions {
  origin: () => string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  roles: string[];
  /** roles of tokens for Microsoft Graph (another API, its own permissions) */
  graphRoles: string[];
  tokenLifetimeSeconds: number;
  nowMs: () => number;
}

export interface EntraReply {
  status: number;
  body: unknown;
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

export class Entra {
  private readonly key = randomBytes(32);
  private readonly revoked = new Set<string>();
  private readonly issued: string[] = [];
  tokensIssued = 0;

  constructor(readonly opts: EntraOptions) {}

  private issuer(tenant: string): string {
    return `${this.opts.origin()}/${tenant}/v2.0`;
  }

  private knownTenant(tenant: string): boolean {
    return tenant.toLowerCase() === this.opts.tenantId.toLowerCase();
  }

  /** Entra's error body (token-error-400.json shape). */
  error(status: number, error: string, code: number, text: string): EntraReply {
    const trace = randomUUID();
    const correlation = randomUUID();
    const ts = new Date(this.opts.nowMs()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    return {
      status,
      body: {
        error,
        error_description: `AADSTS${code}: ${text}\r\nTrace ID: ${trace}\r\nCorrelation ID: ${correlation}\r\nTimestamp: ${ts}`,
        error_codes: [code],
        timestamp: ts,
        trace_id: trace,
        correlation_id: correlation,
        error_uri: `${this.opts.origin()}/error?code=${code}`,
      },
    };
  }

  private unknownTenant(tenant: string): EntraReply {
    return this.error(400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
  }

  openIdConfiguration(tenant: string, v2: boolean): EntraReply {
    if (!this.knownTenant(tenant)) return this.unknownTenant(tenant);
    const o = this.opts.origin();
    const t = this.opts.tenantId;
    const base = v2 ? `${o}/${t}/oauth2/v2.0` : `${o}/${t}/oauth2`;
    return {
      status: 200,
      body: {
        token_endpoint: `${base}/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${o}/${t}/discovery/${v2 ? 'v2.0/' : ''}keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: v2 ? this.issuer(t) : `${o}/${t}/`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${o}/oidc/userinfo`,
        authorization_endpoint: `${base}/authorize`,
        device_authorization_endpoint: `${base}/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/logout`,
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid', 'roles'],
        tenant_region_scope: 'EU',
        cloud_instance_name: 'emulator.local',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
      },
    };
  }

  /** GET /common/discovery/instance: only asked by clients that do instance discovery against this host. */
  instanceDiscovery(): EntraReply {
    const host = new URL(this.opts.origin()).host;
    return {
      status: 200,
      body: {
        tenant_discovery_endpoint: `${this.opts.origin()}/${this.opts.tenantId}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      },
    };
  }

  keys(): EntraReply {
    return { status: 200, body: { keys: [] } };
  }

  /** POST /{tenant}/oauth2/v2.0/token (v2: scope) or /{tenant}/oauth2/token (v1: resource). */
  token(tenant: string, form: URLSearchParams, v2: boolean, basicAuth: { id: string; secret: string } | null): EntraReply {
    if (!this.knownTenant(tenant)) return this.unknownTenant(tenant);
    const grant = form.get('grant_type');
    if (grant !== 'client_credentials') {
      return this.error(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant ?? ''}'. The emulator supports client_credentials only.`);
    }
    const clientId = form.get('client_id') ?? basicAuth?.id ?? '';
    const secret = form.get('client_secret') ?? basicAuth?.secret ?? null;
    if (!clientId) return this.error(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    if (clientId.toLowerCase() !== this.opts.clientId.toLowerCase()) {
      return this.error(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${this.opts.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }
    if (form.has('client_assertion')) {
      return this.error(401, 'invalid_client', 700027, 'Client assertion failed signature validation. (The emulator accepts client secrets only.)');
    }
    if (secret === null) return this.error(401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    if (!safeEqual(secret, this.opts.clientSecret)) {
      return this.error(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    let resource: string | undefined;
    if (v2) {
      const scopes = (form.get('scope') ?? '').split(/\s+/).filter((s) => s && !['openid', 'profile', 'offline_access'].includes(s));
      if (scopes.length !== 1 || !scopes[0]!.endsWith('/.default')) {
        return this.error(400, 'invalid_scope', 1002012, `The provided value for scope ${scopes.join(' ') || '(none)'} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
      }
      resource = scopes[0]!.slice(0, -'/.default'.length);
    } else {
      resource = form.get('resource') ?? undefined;
    }
    if (!resource || ![...resources, ...graphResources].includes(resource.replace(/\/$/, ''))) {
      return this.error(400, 'invalid_resource', 500011, `The resource principal named ${resource ?? '(none)'} was not found in the tenant named ${this.opts.tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
    }
    const now = Math.floor(this.opts.nowMs() / 1000);
    const claims: TokenClaims = {
      aud: resource.replace(/\/$/, ''),
      iss: `https://sts.windows.net/${this.opts.tenantId}/`,
      iat: now,
      nbf: now,
      exp: now + this.opts.tokenLifetimeSeconds,
      appid: this.opts.clientId,
      tid: this.opts.tenantId,
      roles: graphResources.includes(resource.replace(/\/$/, '')) ? this.opts.graphRoles : this.opts.roles,
      jti: randomUUID(),
      ver: '1.0',
    };
    this.tokensIssued++;
    this.issued.push(claims.jti);
    const lifetime = this.opts.tokenLifetimeSeconds;
    return {
      status: 200,
      body: v2
        ? { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: this.sign(claims) }
        : { token_type: 'Bearer', expires_in: String(lifetime), ext_expires_in: String(lifetime), expires_on: String(claims.exp), not_before: String(now), resource: claims.aud, access_token: this.sign(claims) },
    };
  }

  private sign(claims: TokenClaims): string {
    const head = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: 'defender-fluent-emulator' }))}.${b64url(JSON.stringify(claims))}`;
    return `${head}.${createHmac('sha256', this.key).update(head).digest('base64url')}`;
  }

  /** Checks a bearer token; returns its claims or why it is refused. */
  verify(authorization: string | undefined): { claims: TokenClaims } | { reason: string } {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) return { reason: 'missing bearer token' };
    const parts = m[1]!.split('.');
    if (parts.length !== 3) return { reason: 'malformed token' };
    const expected = createHmac('sha256', this.key).update(`${parts[0]}.${parts[1]}`).digest();
    let given: Buffer;
    try {
      given = Buffer.from(parts[2]!, 'base64url');
    } catch {
      return { reason: 'bad signature' };
    }
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { reason: 'bad signature' };
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as TokenClaims;
    if (claims.exp * 1000 <= this.opts.nowMs()) return { reason: 'token expired' };
    if (this.revoked.has(claims.jti)) return { reason: 'token revoked' };
    if (claims.tid !== this.opts.tenantId) return { reason: 'wrong tenant' };
    return { claims };
  }

  /** Refuses one token from now on (the "token rejected mid-paging" fault). */
  revoke(jti: string): void {
    this.revoked.add(jti);
  }

  /** Refuses every token issued so far. */
  revokeAll(): void {
    for (const jti of this.issued.splice(0)) this.revoked.add(jti);
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
