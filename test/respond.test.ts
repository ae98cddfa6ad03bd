import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import nock from 'nock';
import type { Config } from '../plugin/config/load.js';
import { createLogger } from '../plugin/log.js';
import { RespondServer } from '../plugin/respond/server.js';
import { StatusStore } from '../plugin/status/store.js';
import { MemorySink } from './helpers/memory-sink.js';
import { acmeOrigin, auditLines, call, FakeDefender, globexOrigin, loadFixture, nockEntra, respondConfig, tokens, type HttpReply } from './respond-helpers.js';
import { useNock } from './helpers/nock.js';

const M1 = '4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c';

interface Harness {
  config: Config;
  server: RespondServer;
  base: string;
  sink: MemorySink;
  acme: FakeDefender;
  globex: FakeDefender;
  logs: () => string;
}

async function start(respond: Record<string, unknown> = {}, watchIntervalMs?: number): Promise<Harness> {
  const config = respondConfig(respond);
  const sink = new MemorySink();
  const stream = new PassThrough();
  let logText = '';
  stream.on('data', (c: Buffer) => (logText += c.toString('utf8')));
  const logger = createLogger('debug', stream);
  nockEntra();
  const acme = new FakeDefender(acmeOrigin);
  const globex = new FakeDefender(globexOrigin);
  const server = new RespondServer({ config, sink, logger, watchIntervalMs });
  const { url } = await server.listen('127.0.0.1:0');
  return { config, server, base: url, sink, acme, globex, logs: () => logText };
}

function contain(h: Harness, body: unknown, token = tokens.soar): Promise<HttpReply> {
  return call(h.base, 'POST', '/v1/actions/contain', { token, body });
}

describe('response sidecar', function () {
  useNock();
  let h: Harness;

  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(async () => {
    await h?.server.close();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  describe('endpoints without a token', () => {
    it('GET /healthz answers ok and GET /metrics serves Prometheus text', async () => {
      h = await start();
      const health = await call(h.base, 'GET', '/healthz');
      assert.equal(health.status, 200);
      assert.equal(health.json.status, 'ok');
      await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'case 1' });
      const m = await call(h.base, 'GET', '/metrics');
      assert.equal(m.status, 200);
      assert.match(String(m.headers['content-type']), /^text\/plain/);
      assert.match(m.text, /defender_fluent_actions_total\{connector="acme-mde",type="contain",outcome="accepted"\} \d+/);
      assert.match(m.text, /# TYPE defender_fluent_polls_total counter/);
      assert.match(m.text, /# TYPE defender_fluent_batch_ack_seconds histogram/);
    });

    it('/metrics adds the collector snapshot found in stateDir', async () => {
      h = await start();
      const { writeFileSync } = await import('node:fs');
      const snapshot = [
        {
          name: 'defender_fluent_polls_total',
          help: 'Polls',
          type: 'counter',
          aggregator: 'sum',
          values: [{ value: 7, labels: { connector: 'acme-mde', content: 'alerts', outcome: 'success' } }],
        },
      ];
      writeFileSync(`${h.config.stateDir}/metrics.json`, JSON.stringify(snapshot));
      const m = await call(h.base, 'GET', '/metrics');
      assert.match(m.text, /defender_fluent_polls_total\{connector="acme-mde",content="alerts",outcome="success"\} 7/);
    });
  });

  describe('authentication and scope', () => {
    it('refuses every /v1 endpoint without a valid bearer token (401) and audits each refusal', async () => {
      h = await start();
      const attempts: [string, string, { authorization?: string; token?: string }][] = [
        ['POST', '/v1/actions/contain', {}],
        ['POST', '/v1/actions/release', { authorization: 'Basic dXNlcjpwYXNz' }],
        ['GET', '/v1/actions/b3e1f7a2-9c4d-4e58-a6b0-2d7c91e4f835', { token: 'not-a-configured-token-123456' }],
        ['GET', `/v1/hosts/${M1}/isolation`, { authorization: 'Bearer' }],
        ['POST', '/v1/fluent/contain', { token: tokens.soar.slice(0, -1) }],
        ['GET', '/v1/status', { token: `${tokens.soar}x` }],
      ];
      for (const [method, path, auth] of attempts) {
        const r = await call(h.base, method, path, { ...auth, body: method === 'POST' ? { connector: 'acme-mde', machineId: M1, comment: 'x' } : undefined });
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.json.error.code, 'unauthorized');
        assert.match(String(r.headers['www-authenticate']), /^Bearer/);
      }
      const audit = auditLines(h.config.stateDir);
      assert.equal(audit.length, attempts.length);
      for (const a of audit) {
        assert.equal(a.msg_class, 'microsoft_defender_action');
        assert.equal(a.microsoft_defender.outcome, 'refused');
        assert.equal(a.microsoft_defender.httpStatus, 401);
        assert.equal(a.microsoft_defender.requester, undefined);
      }
      assert.equal(h.acme.posts.length, 0);
      assert.equal(h.sink.received.length, attempts.length);
      assert.ok(h.sink.received.every((r) => r.tag === 'microsoft_defender.audit'));
    });

    it('a token scoped to another connector gets 403; a token for that connector or "*" is let through', async () => {
      h = await start();
      const denied = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' }, tokens.globexOnly);
      assert.equal(denied.status, 403);
      assert.equal(denied.json.error.code, 'forbidden_connector');
      const deniedGet = await call(h.base, 'GET', `/v1/hosts/${M1}/isolation?connector=acme-mde`, { token: tokens.globexOnly });
      assert.equal(deniedGet.status, 403);
      assert.equal(h.acme.posts.length, 0);
      assert.equal((await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' }, tokens.acmeOnly)).status, 202);
      assert.equal((await contain(h, { connector: 'globex-mde', machineId: M1, comment: 'x' }, tokens.soar)).status, 202);
      const refusal = auditLines(h.config.stateDir).find((a) => a.microsoft_defender.httpStatus === 403)!;
      assert.equal(refusal.microsoft_defender.requester, 'globex-analyst');
      assert.equal(refusal.microsoft_defender.connector, 'acme-mde');
    });

    it('an unknown connector is 404 for a "*" token but 403 for a scoped one', async () => {
      h = await start();
      assert.equal((await contain(h, { connector: 'nope', machineId: M1, comment: 'x' }, tokens.soar)).status, 404);
      assert.equal((await contain(h, { connector: 'nope', machineId: M1, comment: 'x' }, tokens.acmeOnly)).status, 403);
    });

    it('refuses a record of another tenant (403) and audits it', async () => {
      h = await start();
      const record = { ...loadFixture('alert-record.json'), tenant_name: 'globex', engid_name: undefined };
      const r = await contain(h, { connector: 'acme-mde', record, comment: 'x' });
      assert.equal(r.status, 403);
      assert.equal(r.json.error.code, 'tenant_mismatch');
      const other = await contain(h, { connector: 'globex-mde', record: loadFixture('alert-record.json'), comment: 'x' });
      assert.equal(other.status, 403, 'acme record through the globex connector');
      assert.equal(h.acme.posts.length + h.globex.posts.length, 0);
      const audit = auditLines(h.config.stateDir);
      assert.deepEqual(
        audit.map((a) => [a.microsoft_defender.event, a.microsoft_defender.outcome, a.microsoft_defender.httpStatus]),
        [
          ['contain', 'refused', 403],
          ['contain', 'refused', 403],
        ],
      );
    });
  });

  describe('request bodies', () => {
    it('malformed JSON → 400 with the parser reason; unknown field → 400 naming it; machineId and record both or neither → 400', async () => {
      h = await start();
      const bad = await call(h.base, 'POST', '/v1/actions/contain', { token: tokens.soar, raw: '{"connector": "acme-mde", ' });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.code, 'malformed_json');
      assert.match(bad.json.error.message, /not valid JSON: .*JSON/);
      const unknown = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x', force: true });
      assert.equal(unknown.status, 400);
      assert.deepEqual(unknown.json.error.details, [{ pointer: '/force', message: 'unknown key "force"' }]);
      const both = await contain(h, { connector: 'acme-mde', machineId: M1, record: loadFixture('alert-record.json'), comment: 'x' });
      assert.equal(both.status, 400);
      assert.match(both.json.error.message, /not both/);
      const neither = await contain(h, { connector: 'acme-mde', comment: 'x' });
      assert.equal(neither.status, 400);
      // the record's schema is its own file (schemas/respond/lake-record.schema.json), shared by every request that takes one
      const notLake = { ...loadFixture('alert-record.json'), msg_class: 'other' };
      for (const [path, body] of [['/v1/actions/contain', { connector: 'acme-mde', record: notLake, comment: 'x' }], ['/v1/actions/release', { connector: 'acme-mde', record: notLake, comment: 'x' }]] as const) {
        const r = await call(h.base, 'POST', path, { token: tokens.soar, body });
        assert.equal(r.status, 400, path);
        assert.deepEqual(r.json.error.details, [{ pointer: '/record/msg_class', message: 'must be one of "microsoft_defender_host", "microsoft_defender_alerts"' }], path);
      }
      const caseWrong = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x', isolationType: 'full' });
      assert.equal(caseWrong.status, 400);
      assert.match(caseWrong.json.error.message, /\/isolationType: must be one of "Full", "Selective"/);
      assert.equal(h.acme.posts.length, 0);
    });

    it('a body over respond.maxBodyBytes → 413 (declared length and chunked)', async () => {
      h = await start({ maxBodyBytes: 2048 });
      const big = { connector: 'acme-mde', machineId: M1, comment: 'x'.repeat(5000) };
      const r = await contain(h, big);
      assert.equal(r.status, 413);
      assert.equal(r.json.error.code, 'body_too_large');
      // chunked: no Content-Length, the limit applies while streaming
      const http = await import('node:http');
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(new URL('/v1/fluent/contain', h.base), { method: 'POST', headers: { Authorization: `Bearer ${tokens.fluent}`, 'Transfer-Encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('['.padEnd(1500, ' '));
        req.end(' '.repeat(1500) + ']');
      });
      assert.equal(status, 413);
      assert.equal(h.acme.posts.length, 0);
      assert.ok(auditLines(h.config.stateDir).some((a) => a.microsoft_defender.httpStatus === 413));
    });

    it('never uses aadDeviceId or a host name: a record without a Defender machine id is refused', async () => {
      h = await start();
      const host = loadFixture('host-record.json') as { microsoft_defender: Record<string, unknown> };
      const md = { ...host.microsoft_defender };
      delete md.id;
      const r = await contain(h, { connector: 'acme-mde', record: { ...host, microsoft_defender: md }, comment: 'x' });
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /microsoft_defender\/id: must be a Defender machine id/);
      const wrongShape = await contain(h, { connector: 'acme-mde', machineId: 'c81d4fae-7dec-41d0-a765-00a0c91e6bf6', comment: 'x' });
      assert.equal(wrongShape.status, 400);
      assert.equal(h.acme.posts.length + h.acme.machineGets.length, 0);
    });
  });

  describe('request paths', () => {
    it('a malformed percent-encoding in the path or query → 400 naming the part (never 500), audited, no stack trace', async () => {
      h = await start();
      const cases: [string, string, string, RegExp][] = [
        ['GET', '/v1/actions/%zz', 'malformed_path', /path segment 3 \("%zz"\)/],
        ['GET', '/v1/actions/%zz?connector=acme-mde', 'malformed_path', /path segment 3 \("%zz"\)/],
        ['GET', '/v1/hosts/%E0%A4%A/isolation', 'malformed_path', /path segment 3 \("%E0%A4%A"\)/],
        ['GET', '/v1/hosts/%E0%A4%A/isolation?connector=acme-mde', 'malformed_path', /path segment 3 \("%E0%A4%A"\)/],
        ['GET', '/v1/hosts/abc%/isolation', 'malformed_path', /path segment 3 \("abc%"\)/],
        ['GET', '/v1/%C0%AF/x', 'malformed_path', /path segment 2 \("%C0%AF"\)/],
        ['GET', `/v1/actions/b3e1f7a2-9c4d-4e58-a6b0-2d7c91e4f835?connector=%zz`, 'malformed_query', /query parameter 1 \("connector=%zz"\)/],
        ['GET', `/v1/hosts/${M1}/isolation?connector=acme-mde&x%E0=1`, 'malformed_query', /query parameter 2 \("x%E0=1"\)/],
        ['GET', '/v1/status?connector=%ff', 'malformed_query', /query parameter 1/],
        ['POST', '/v1/actions/contain?connector=%', 'malformed_query', /query parameter 1/],
        ['POST', '/v1/fluent/contain?connector=%E0%A4%A', 'malformed_query', /query parameter 1/],
      ];
      for (const [method, path, code, message] of cases) {
        const body = method === 'POST' ? { connector: 'acme-mde', machineId: M1, comment: 'x' } : undefined;
        const r = await call(h.base, method, path, { token: tokens.soar, body });
        assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
        assert.equal(r.json?.error?.code, code, `${method} ${path}: ${r.text}`);
        assert.match(r.json.error.message, message, `${method} ${path}`);
        assert.match(r.json.error.message, /percent-encoding/, `${method} ${path}`);
        assert.doesNotMatch(r.text, /URIError|at \S+ \(|\.ts:\d+/, `${method} ${path}: no stack trace`);
      }
      // without a token too: the request target is checked before anything else
      const anon = await call(h.base, 'GET', '/v1/actions/%zz');
      assert.equal(anon.status, 400);
      assert.equal(anon.json.error.code, 'malformed_path');
      const audit = auditLines(h.config.stateDir);
      assert.equal(audit.length, cases.length + 1, 'every refusal audited');
      for (const a of audit) {
        assert.equal(a.microsoft_defender.outcome, 'refused');
        assert.equal(a.microsoft_defender.httpStatus, 400);
        assert.match(a.microsoft_defender.reason, /^malformed_(path|query): /);
      }
      assert.doesNotMatch(h.logs(), /URIError|internal error|"status":500/);
      assert.equal(h.acme.posts.length + h.acme.machineGets.length, 0);
      // well-formed encodings still decode as before
      assert.equal((await call(h.base, 'GET', `/v1/hosts/${M1.slice(0, 39)}%63/isolation?connector=acme%2Dmde`, { token: tokens.soar })).status, 200);
    });
  });

  describe('contain and release', () => {
    it('contains by machine id: POST isolate with {Comment, IsolationType}, 202 with the Pending action, audited', async () => {
      h = await start();
      const r = await contain(h, { connector: 'acme-mde', machineId: M1.toUpperCase(), comment: 'INC-42 ransomware', isolationType: 'Selective' }, tokens.acmeOnly);
      assert.equal(r.status, 202);
      assert.equal(r.json.action.status, 'Pending');
      assert.equal(r.json.action.succeeded, false);
      assert.equal(r.json.created, true);
      assert.deepEqual(h.acme.posts, [{ path: `/api/machines/${M1}/isolate`, body: { Comment: 'INC-42 ransomware', IsolationType: 'Selective' } }]);
      const [a] = auditLines(h.config.stateDir);
      assert.equal(a!.msg_class, 'microsoft_defender_action');
      assert.equal(a!.tenant_name, 'acme');
      assert.equal(a!.engid_name, 'microsoft_defender_acme-mde');
      assert.deepEqual(a!.msg_origin, { source: 'microsoft_defender', vendor: 'microsoft', category: 'endpoint', processor: { name: 'microsoft_defender', type: 'log_collector' } });
      assert.equal(typeof a!.timestamp, 'number');
      assert.equal(typeof a!.write_time, 'number');
      const md = a!.microsoft_defender;
      assert.equal(md.event, 'contain');
      assert.equal(md.outcome, 'accepted');
      assert.equal(md.requester, 'acme-analyst');
      assert.equal(md.machineId, M1);
      assert.equal(md.isolationType, 'Selective');
      assert.equal(md.comment, 'INC-42 ransomware');
      assert.equal(md.action.id, r.json.action.id);
      assert.equal(h.sink.received.at(-1)!.tag, 'microsoft_defender.audit');
    });

    it('contains from a host record (microsoft_defender.id) and an alert record (microsoft_defender.machineId)', async () => {
      h = await start();
      const host = await contain(h, { connector: 'acme-mde', record: loadFixture('host-record.json'), comment: 'from host' });
      assert.equal(host.status, 202);
      assert.equal(host.json.machineId, '4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c');
      const alert = await contain(h, { connector: 'acme-mde', record: loadFixture('alert-record.json'), comment: 'from alert' });
      assert.equal(alert.status, 202);
      assert.equal(alert.json.machineId, '1f2e3d4c5b6a79880796a5b4c3d2e1f0a9b8c7d6');
      assert.deepEqual(
        h.acme.posts.map((p) => p.path),
        ['/api/machines/4a7e1c9b2d3f40516273849a5b6c7d8e9f0a1b2c/isolate', '/api/machines/1f2e3d4c5b6a79880796a5b4c3d2e1f0a9b8c7d6/isolate'],
      );
      assert.equal(h.acme.posts[0]!.body.IsolationType, 'Full', 'default isolation type');
    });

    it('50 concurrent contains for one machine create exactly one Defender action', async () => {
      h = await start();
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => contain(h, { connector: 'acme-mde', machineId: M1, comment: `req ${i}` })));
      assert.equal(h.acme.posts.length, 1);
      assert.ok(replies.every((r) => r.status === 202));
      const ids = new Set(replies.map((r) => r.json.action.id));
      assert.equal(ids.size, 1);
      assert.equal(replies.filter((r) => r.json.created).length, 1);
      // later, while Defender still says Pending: returned again, still one action
      const again = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'again' });
      assert.equal(again.json.action.id, [...ids][0]);
      assert.equal(again.json.created, false);
      assert.equal(h.acme.posts.length, 1);
      // once it has finished, a new contain creates a new action
      h.acme.actions[0]!.status = 'Failed';
      const after = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'retry after failure' });
      assert.equal(after.json.created, true);
      assert.equal(h.acme.posts.length, 2);
    });

    it('Defender 400 ActiveRequestAlreadyExists → the pending isolation is looked up and returned', async () => {
      h = await start();
      const existing = h.acme.add({ machineId: M1, type: 'Isolate', status: 'InProgress', requestorComment: 'from the portal' });
      h.acme.onPost = () => [400, { error: { code: 'ActiveRequestAlreadyExists', message: 'Action is already in progress', target: 'c-1' } }];
      const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
      assert.equal(r.status, 202);
      assert.equal(r.json.created, false);
      assert.equal(r.json.action.id, existing.id);
      assert.equal(r.json.action.status, 'InProgress');
      assert.deepEqual(h.acme.filters, [`machineId eq '${M1}' and type eq 'Isolate' and status eq 'Pending'`, `machineId eq '${M1}' and type eq 'Isolate' and status eq 'InProgress'`]);
      assert.equal(auditLines(h.config.stateDir)[0]!.microsoft_defender.outcome, 'existing');
    });

    it('"already in progress" with no pending isolation (a release is pending) → 409, audited as refused', async () => {
      h = await start();
      h.acme.add({ machineId: M1, type: 'Unisolate', status: 'Pending' });
      h.acme.onPost = () => [400, { error: { code: 'BadRequest', message: 'Action is already in progress', target: 'c-2' } }];
      const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
      assert.equal(r.status, 409);
      assert.equal(r.json.error.code, 'conflict');
      assert.equal(auditLines(h.config.stateDir)[0]!.microsoft_defender.outcome, 'refused');
    });

    it('403 from Defender says that Machine.Isolate is missing', async () => {
      h = await start();
      h.acme.onPost = () => [403, { error: { code: 'Forbidden', message: 'valid token but insufficient permission', target: 'c-403' } }];
      const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
      assert.equal(r.status, 502);
      assert.equal(r.json.error.code, 'defender_permission');
      assert.match(r.json.error.message, /Machine\.Isolate/);
      const a = auditLines(h.config.stateDir)[0]!.microsoft_defender;
      assert.equal(a.outcome, 'error');
      assert.match(a.reason, /Machine\.Isolate/);
    });

    it('a 429 on the isolate POST is retried after Retry-After (it was not executed): one action', async () => {
      h = await start();
      let n = 0;
      h.acme.onPost = () => (n++ === 0 ? [429, { error: { code: 'TooManyRequests', message: 'slow down', target: 'c-429' } }, { 'Retry-After': '0' }] : undefined);
      const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
      assert.equal(r.status, 202);
      assert.equal(h.acme.posts.length, 2);
      assert.equal(h.acme.actions.length, 1);
      const m = await call(h.base, 'GET', '/metrics');
      assert.match(m.text, /defender_fluent_throttled_total\{connector="acme-mde",family="standard"\} [1-9]/);
    });

    it('releases: POST unisolate with {Comment} only', async () => {
      h = await start();
      const r = await call(h.base, 'POST', '/v1/actions/release', { token: tokens.soar, body: { connector: 'acme-mde', machineId: M1, comment: 'cleaned' } });
      assert.equal(r.status, 202);
      assert.equal(r.json.action.type, 'Unisolate');
      assert.deepEqual(h.acme.posts, [{ path: `/api/machines/${M1}/unisolate`, body: { Comment: 'cleaned' } }]);
      const bad = await call(h.base, 'POST', '/v1/actions/release', { token: tokens.soar, body: { connector: 'acme-mde', machineId: M1, comment: 'x', isolationType: 'Full' } });
      assert.equal(bad.status, 400, 'isolationType is not a release field');
      assert.equal(auditLines(h.config.stateDir)[0]!.microsoft_defender.event, 'release');
    });
  });

  describe('action status and isolation state', () => {
    for (const outcome of ['Succeeded', 'Failed', 'TimeOut', 'Cancelled']) {
      it(`GET /v1/actions/{id} reports ${outcome} as such (success only when Defender says Succeeded)`, async () => {
        h = await start();
        const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
        const id = r.json.action.id as string;
        const pending = await call(h.base, 'GET', `/v1/actions/${id}?connector=acme-mde`, { token: tokens.soar });
        assert.equal(pending.json.action.status, 'Pending');
        assert.equal(pending.json.action.succeeded, false);
        h.acme.actions[0]!.status = outcome;
        const done = await call(h.base, 'GET', `/v1/actions/${id}?connector=acme-mde`, { token: tokens.soar });
        assert.equal(done.status, 200);
        assert.equal(done.json.action.status, outcome);
        assert.equal(done.json.action.final, true);
        assert.equal(done.json.action.succeeded, outcome === 'Succeeded');
        await call(h.base, 'GET', `/v1/actions/${id}?connector=acme-mde`, { token: tokens.soar });
        const outcomes = auditLines(h.config.stateDir).filter((a) => a.microsoft_defender.event === 'action_outcome');
        assert.equal(outcomes.length, 1, 'the final outcome is audited once');
        assert.equal(outcomes[0]!.microsoft_defender.outcome, outcome);
        const m = await call(h.base, 'GET', '/metrics');
        assert.match(m.text, new RegExp(`defender_fluent_actions_total\\{connector="acme-mde",type="contain",outcome="${outcome}"\\} [1-9]`));
      });
    }

    it('follows an accepted action by itself and audits its final outcome once (no GET needed)', async () => {
      h = await start({}, 10);
      const r = await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' });
      assert.equal(r.status, 202);
      h.acme.actions[0]!.status = 'TimeOut';
      const outcomes = () => auditLines(h.config.stateDir).filter((a) => a.microsoft_defender.event === 'action_outcome');
      // wait (bounded) for the watcher's next read; the assertion is on what it wrote, not on timing
      for (let i = 0; i < 500 && outcomes().length === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(outcomes().length, 1);
      assert.equal(outcomes()[0]!.microsoft_defender.outcome, 'TimeOut');
      assert.equal(outcomes()[0]!.microsoft_defender.requester, 'soar');
      await call(h.base, 'GET', `/v1/actions/${r.json.action.id}?connector=acme-mde`, { token: tokens.soar });
      assert.equal(outcomes().length, 1, 'not audited twice');
    });

    it('GET /v1/actions/{id}: unknown id → 404, a non-GUID → 400, connector required for a multi-connector token', async () => {
      h = await start();
      assert.equal((await call(h.base, 'GET', '/v1/actions/b3e1f7a2-9c4d-4e58-a6b0-2d7c91e4f835?connector=acme-mde', { token: tokens.soar })).status, 404);
      assert.equal((await call(h.base, 'GET', '/v1/actions/..%2F..%2Fmachines?connector=acme-mde', { token: tokens.soar })).status, 400);
      const noConnector = await call(h.base, 'GET', '/v1/actions/b3e1f7a2-9c4d-4e58-a6b0-2d7c91e4f835', { token: tokens.soar });
      assert.equal(noConnector.status, 400);
      assert.equal(noConnector.json.error.code, 'connector_required');
      // a single-connector token needs no connector parameter
      assert.equal((await call(h.base, 'GET', '/v1/actions/b3e1f7a2-9c4d-4e58-a6b0-2d7c91e4f835', { token: tokens.acmeOnly })).status, 404);
    });

    it('GET /v1/hosts/{id}/isolation derives isolated / pending / not isolated from the latest actions', async () => {
      h = await start();
      const state = async () => (await call(h.base, 'GET', `/v1/hosts/${M1}/isolation?connector=acme-mde`, { token: tokens.soar })).json;
      assert.equal((await state()).isolation, 'not_isolated');
      const iso = h.acme.add({ machineId: M1, type: 'Isolate', status: 'Pending' });
      assert.equal((await state()).isolation, 'pending');
      iso.status = 'Succeeded';
      iso.lastUpdateDateTimeUtc = '2026-01-01T01:00:00Z';
      assert.equal((await state()).isolation, 'isolated');
      const failedRelease = h.acme.add({ machineId: M1, type: 'Unisolate', status: 'Failed' });
      const s = await state();
      assert.equal(s.isolation, 'isolated', 'a failed release changes nothing');
      assert.equal(s.lastRelease.id, failedRelease.id);
      const rel = h.acme.add({ machineId: M1, type: 'Unisolate', status: 'Succeeded', lastUpdateDateTimeUtc: '2026-01-01T02:00:00Z' });
      assert.equal((await state()).isolation, 'not_isolated');
      assert.equal((await state()).basis.id, rel.id);
      // a stale isolate that completes after the release (microsoft-365-docs #5903) isolates the machine again
      h.acme.add({ machineId: M1, type: 'Isolate', status: 'Succeeded', creationDateTimeUtc: '2026-01-01T00:30:00Z', lastUpdateDateTimeUtc: '2026-01-01T03:00:00Z' });
      assert.equal((await state()).isolation, 'isolated');
      const other = await call(h.base, 'GET', `/v1/hosts/not-a-machine/isolation?connector=acme-mde`, { token: tokens.soar });
      assert.equal(other.status, 400);
    });
  });

  describe('GET /v1/status', () => {
    it('shows green / red per connector and content type, limited to the token scope', async () => {
      h = await start();
      const store = new StatusStore(h.config.stateDir);
      for (const t of ['alerts', 'host', 'vulnerabilities'] as const) store.recordSuccess('acme-mde', t, { records: 3, filtered: 1, failed: 0, cursor: '2026-01-01T00:00:00Z' });
      store.recordSuccess('globex-mde', 'alerts', { records: 1, filtered: 0, failed: 0 });
      store.recordFailure('globex-mde', 'host', Object.assign(new Error('GET /api/machines: HTTP 403 Forbidden'), { name: 'DefenderApiError', errorClass: 'permission' }));
      store.save();
      const all = await call(h.base, 'GET', '/v1/status', { token: tokens.soar });
      assert.equal(all.status, 200);
      const byName = Object.fromEntries(all.json.connectors.map((c: { connector: string }) => [c.connector, c]));
      assert.equal(byName['acme-mde'].state, 'green');
      assert.equal(byName['acme-mde'].contentTypes.alerts.records.collected, 3);
      assert.equal(byName['acme-mde'].contentTypes.alerts.cursor, '2026-01-01T00:00:00Z');
      assert.equal(byName['globex-mde'].state, 'red');
      assert.ok(byName['globex-mde'].reasons.some((r: string) => /host: last poll failed/.test(r)));
      const scoped = await call(h.base, 'GET', '/v1/status', { token: tokens.acmeOnly });
      assert.deepEqual(
        scoped.json.connectors.map((c: { connector: string }) => c.connector),
        ['acme-mde'],
      );
    });
  });

  describe('secrets', () => {
    it('no bearer token (valid or not) and no client secret ever appears in logs, audit log or audit records', async () => {
      h = await start();
      const wrong = 'wrong-token-that-must-not-leak-42';
      await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' }, tokens.soar);
      await contain(h, { connector: 'acme-mde', machineId: M1, comment: 'x' }, wrong);
      await contain(h, { connector: 'acme-mde', machineId: M1, comment: `${tokens.acmeOnly} pasted by mistake` }, tokens.acmeOnly);
      await call(h.base, 'POST', '/v1/fluent/contain', { token: tokens.fluent, raw: JSON.stringify(loadFixture('alert-record.json')) });
      await call(h.base, 'GET', '/v1/status', { token: tokens.globexOnly });
      await h.server.service.audit.flush();
      const logs = h.logs();
      const auditText = JSON.stringify(auditLines(h.config.stateDir));
      const sinkText = JSON.stringify(h.sink.records());
      assert.ok(logs.includes('"msg":"request"'), 'requests were logged');
      assert.ok(auditText.includes('[REDACTED] pasted by mistake'), 'a configured token quoted in a comment is redacted');
      for (const secret of [tokens.soar, tokens.acmeOnly, tokens.globexOnly, tokens.fluent, wrong, 'test-secret-Xq9~abcdefghijkl']) {
        for (const [where, text] of [
          ['log', logs],
          ['audit.log', auditText],
          ['sink', sinkText],
        ] as const) {
          assert.ok(!text.includes(secret), `${secret} found in ${where}`);
        }
      }
    });
  });
});
