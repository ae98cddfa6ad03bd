// Shared by test/respond*.test.ts: a config through the real loader, a nock-backed Defender that
// keeps machine actions in memory, and a plain node:http client for the sidecar.
import http from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import nock from 'nock';
import { stringify } from 'yaml';
import { checkConfigText, type Config } from '../plugin/config/load.js';
import { clientId, clientSecret, fakeJwt, tenantId } from './helpers/entra.js';

export const acmeOrigin = 'https://api-us.securitycenter.microsoft.com';
export const globexOrigin = 'https://api-eu.securitycenter.microsoft.com';

export const tokens = {
  soar: 'soar-token-0123456789abcdef',
  acmeOnly: 'acme-only-token-fedcba9876543210',
  globexOnly: 'globex-only-token-a1b2c3d4e5f6a7b8',
  fluent: 'fluent-token-99887766554433221100',
};

export function respondConfig(respond: Record<string, unknown> = {}): Config {
  const stateDir = mkdtempSync(join(tmpdir(), 'df-respond-'));
  const connector = (name: string, tenant: string, apiEndpoint: string) => ({
    name,
    tenant,
    apiEndpoint,
    clientId,
    directoryId: tenantId,
    clientSecret: '${env:TEST_SECRET}',
    functions: ['collect', 'respond'],
  });
  const text = stringify({
    stateDir,
    connectors: [connector('acme-mde', 'acme', 'api-us.securitycenter.microsoft.com'), connector('globex-mde', 'globex', 'api-eu.securitycenter.microsoft.com')],
    respond: {
      listen: '127.0.0.1:0',
      tokens: [
        { name: 'soar', token: '${env:SOAR_TOKEN}', connectors: ['*'] },
        { name: 'acme-analyst', token: tokens.acmeOnly, connectors: ['acme-mde'] },
        { name: 'globex-analyst', token: tokens.globexOnly, connectors: ['globex-mde'] },
        { name: 'fluentd', token: tokens.fluent, connectors: ['*'] },
      ],
      ...respond,
    },
  });
  const { config, problems } = checkConfigText(join(stateDir, 'defender.yaml'), text, { TEST_SECRET: clientSecret, SOAR_TOKEN: tokens.soar });
  if (!config) throw new Error(`test config invalid: ${JSON.stringify(problems)}`);
  return config;
}

export function loadFixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`./fixtures/respond/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;
}

export function machineId(n: number): string {
  return n.toString(16).padStart(40, 'a');
}

/** Entra: every token request answered (persisting), counted. */
export function nockEntra(): { count: () => number } {
  let n = 0;
  nock('https://login.microsoftonline.com')
    .persist()
    .post(`/${tenantId}/oauth2/v2.0/token`)
    .query(true)
    .reply(200, () => {
      n++;
      return { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: fakeJwt({ n, roles: ['Machine.Isolate', 'Machine.Read.All'] }) };
    });
  return { count: () => n };
}

export interface FakeAction {
  id: string;
  type: 'Isolate' | 'Unisolate';
  status: string;
  machineId: string;
  scope?: string;
  requestorComment: string;
  creationDateTimeUtc: string;
  lastUpdateDateTimeUtc: string;
  [k: string]: unknown;
}

type Reply = [number, unknown] | [number, unknown, Record<string, string>];

/**
 * Defender's machine-action endpoints over nock, with actions held in memory. `onPost` may answer
 * a POST itself (403, 400 in progress, 429 ...); returning undefined lets the fake create an action.
 */
export class FakeDefender {
  readonly actions: FakeAction[] = [];
  readonly posts: { path: string; body: Record<string, unknown> }[] = [];
  readonly filters: string[] = [];
  readonly machineGets: string[] = [];
  machineTags = new Map<string, string[]>();
  onPost?: (path: string, body: Record<string, unknown>) => Reply | undefined;
  private clock = Date.parse('2026-01-01T00:00:00Z');

  constructor(readonly origin: string) {
    const scope = nock(origin).persist();
    scope.post(/^\/api\/machines\/[0-9a-f]{40}\/(isolate|unisolate)$/).reply((uri, body) => this.post(uri, body as Record<string, unknown>));
    scope.get(/^\/api\/machineactions\/[^/?]+$/).reply((uri) => {
      const id = uri.split('/').pop()!;
      const a = this.actions.find((x) => x.id === id);
      return a ? [200, a] : [404, { error: { code: 'ResourceNotFound', message: `Machine action ${id} was not found`, target: 'c-404' } }];
    });
    scope.get('/api/machineactions').query(true).reply((uri) => this.list(uri));
    scope.get(/^\/api\/machines\/[0-9a-f]{40}$/).reply((uri) => {
      const id = uri.split('/').pop()!;
      this.machineGets.push(id);
      return [200, { id, computerDnsName: `host-${id.slice(-4)}`, machineTags: this.machineTags.get(id) ?? [] }];
    });
  }

  private tick(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString();
  }

  add(a: Partial<FakeAction> & { machineId: string; type: 'Isolate' | 'Unisolate'; status: string }): FakeAction {
    const at = this.tick();
    const action: FakeAction = { id: randomUUID(), requestorComment: 'seeded', creationDateTimeUtc: at, lastUpdateDateTimeUtc: at, ...a };
    this.actions.push(action);
    return action;
  }

  private post(uri: string, body: Record<string, unknown>): Reply {
    this.posts.push({ path: uri, body });
    const own = this.onPost?.(uri, body);
    if (own) return own;
    const [, , , id, verb] = uri.split('/');
    const action = this.add({ machineId: id!, type: verb === 'isolate' ? 'Isolate' : 'Unisolate', status: 'Pending', scope: body.IsolationType as string | undefined, requestorComment: String(body.Comment) });
    return [201, { '@odata.context': `${this.origin}/api/$metadata#MachineActions/$entity`, ...action }];
  }

  /** Evaluates the `a eq 'x' and b eq 'y'` filters MachineActions sends. */
  private list(uri: string): Reply {
    const q = new URL(uri, this.origin).searchParams;
    const filter = q.get('$filter') ?? '';
    this.filters.push(filter);
    const conds: [string, string][] = [];
    for (const part of filter.split(' and ')) {
      const m = /^(machineId|type|status) eq '([^']*)'$/.exec(part.trim());
      if (!m) return [400, { error: { code: 'ODataError', message: `unsupported filter ${filter}`, target: 'c-400' } }];
      conds.push([m[1]!, m[2]!]);
    }
    return [200, { value: this.actions.filter((a) => conds.every(([k, v]) => String(a[k]) === v)) }];
  }

  pending(): FakeAction[] {
    return this.actions.filter((a) => a.status === 'Pending');
  }
}

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A plain HTTP/1.1 client for the sidecar (a real socket to 127.0.0.1). */
export function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; authorization?: string; body?: unknown; raw?: string | Buffer; contentType?: string } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const payload = opts.raw !== undefined ? opts.raw : opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
    const headers: Record<string, string | number> = {};
    if (opts.authorization !== undefined) headers.Authorization = opts.authorization;
    else if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    if (payload !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Audit log lines (parsed) of a state folder. */
export function auditLines(stateDir: string): Record<string, any>[] {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    return readFileSync(join(stateDir, 'audit.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
