import assert from 'node:assert/strict';
import nock from 'nock';
import FakeTimers from '@sinonjs/fake-timers';
import type { TokenProvider } from '../plugin/defender/auth.js';
import { DefenderClient } from '../plugin/defender/client.js';
import { DefenderApiError, TokenError } from '../plugin/defender/errors.js';
import { userAgent } from '../plugin/paths.js';
import { apiOrigin, testConnector } from './helpers/connector.js';
import { localHttps } from './helpers/local-https.js';
import { clientSecret, fakeJwt, nockTokens, tokenReply } from './helpers/entra.js';
import { useNock } from './helpers/nock.js';

/** Sleeps are recorded, not waited: retry timing is asserted on what the client asked for. */
function recordingClock() {
  const sleeps: number[] = [];
  return { sleeps, clock: { now: () => Date.now(), sleep: async (ms: number) => void sleeps.push(ms) } };
}

async function rejection(p: Promise<unknown>): Promise<DefenderApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DefenderApiError, `expected DefenderApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the request to fail');
}

describe('Defender API client', () => {
  useNock();
  beforeEach(() => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });

  describe('tokens', () => {
    it('acquires a client-credentials token for the Defender scope and reuses it', async () => {
      const token = fakeJwt({ roles: ['Alert.Read.All'] });
      const { calls } = nockTokens([tokenReply(token)]);
      const seen: string[] = [];
      nock(apiOrigin)
        .get('/api/alerts')
        .query(true)
        .times(3)
        .reply(function () {
          seen.push(String(this.req.headers.authorization));
          return [200, { value: [] }];
        });
      const client = new DefenderClient(testConnector());
      for (let i = 0; i < 3; i++) await client.request({ path: '/api/alerts', query: { $top: 1 } });
      assert.equal(calls.length, 1);
      assert.equal(calls[0]!.grant_type, 'client_credentials');
      assert.equal(calls[0]!.scope, 'https://api.securitycenter.microsoft.com/.default');
      assert.equal(calls[0]!.client_secret, clientSecret);
      assert.deepEqual(seen, [`Bearer ${token}`, `Bearer ${token}`, `Bearer ${token}`]);
      assert.equal(client.tokens.renewals, 1);
    });

    it('renews the token before it expires', async () => {
      const clock = FakeTimers.install({ toFake: ['Date'], now: Date.parse('2026-01-01T00:00:00Z') });
      try {
        const [t1, t2] = [fakeJwt({ n: 1 }), fakeJwt({ n: 2 })];
        const { calls } = nockTokens([tokenReply(t1, 3599), tokenReply(t2, 3599)]);
        const client = new DefenderClient(testConnector());
        assert.equal(await client.tokens.getToken(), t1);
        clock.tick(30 * 60_000);
        assert.equal(await client.tokens.getToken(), t1, 'still valid after 30 minutes');
        clock.tick(26 * 60_000); // 56 minutes: inside the renewal margin before expiry at 60
        assert.equal(await client.tokens.getToken(), t2);
        assert.equal(calls.length, 2);
        assert.equal(client.tokens.renewals, 2);
      } finally {
        clock.uninstall();
      }
    });

    it('re-acquires once on a 401 and retries the call', async () => {
      const [t1, t2] = [fakeJwt({ n: 1 }), fakeJwt({ n: 2 })];
      nockTokens([tokenReply(t1), tokenReply(t2)]);
      nock(apiOrigin).get('/api/machines').query(true).reply(401, { error: { code: 'Unauthorized', message: 'expired', target: 'c1' } });
      nock(apiOrigin)
        .get('/api/machines')
        .query(true)
        .matchHeader('authorization', `Bearer ${t2}`)
        .reply(200, { value: [{ id: 'm1' }] });
      const client = new DefenderClient(testConnector());
      const res = await client.request<{ value: unknown[] }>({ path: '/api/machines' });
      assert.equal(res.body.value.length, 1);
    });

    it('gives up with an auth error when the second token is refused too', async () => {
      nockTokens([tokenReply(fakeJwt({ n: 1 })), tokenReply(fakeJwt({ n: 2 }))]);
      nock(apiOrigin).get('/api/machines').query(true).times(2).reply(401, { error: { code: 'Unauthorized', message: 'nope', target: 'c2' } });
      const err = await rejection(new DefenderClient(testConnector()).request({ path: '/api/machines' }));
      assert.equal(err.errorClass, 'auth');
      assert.equal(err.status, 401);
    });

    it('reports an Entra refusal with its AADSTS code and never the secret', async () => {
      nockTokens([
        {
          status: 401,
          body: {
            error: 'invalid_client',
            error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID. secret=${clientSecret}`,
            error_codes: [7000215],
          },
        },
      ]);
      const client = new DefenderClient(testConnector());
      await assert.rejects(client.request({ path: '/api/alerts' }), (e: unknown) => {
        assert.ok(e instanceof TokenError);
        assert.equal(e.aadsts, 'AADSTS7000215');
        assert.equal(e.errorClass, 'auth');
        return true;
      });
    });
  });

  describe('errors and retries', () => {
    beforeEach(() => {
      nockTokens([tokenReply(fakeJwt({ roles: [] }))]);
    });

    it('sends the partner User-Agent', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).matchHeader('user-agent', userAgent).reply(200, { value: [] });
      await new DefenderClient(testConnector()).request({ path: '/api/alerts' });
      assert.match(userAgent, /^MdePartner-DefenderFluent-defender-fluent\/\d+\.\d+\.\d+$/);
    });

    for (const [status, errorClass, code] of [
      [400, 'bad_request', 'ODataError'],
      [403, 'permission', 'Forbidden'],
      [404, 'not_found', 'ResourceNotFound'],
    ] as const) {
      it(`${status} is not retried and carries Defender's code and correlation id`, async () => {
        nock(apiOrigin).get('/api/alerts').query(true).reply(status, { error: { code, message: 'explained', target: 'corr-1234' } });
        const { clock, sleeps } = recordingClock();
        const err = await rejection(new DefenderClient(testConnector(), { clock }).request({ path: '/api/alerts' }));
        assert.equal(err.status, status);
        assert.equal(err.errorClass, errorClass);
        assert.equal(err.code, code);
        assert.equal(err.target, 'corr-1234');
        assert.match(err.message, new RegExp(`HTTP ${status} ${code}: explained \\(correlation id corr-1234\\)`));
        assert.deepEqual(sleeps, []);
        assert.ok(nock.isDone());
      });
    }

    it('429 waits Retry-After seconds, then retries', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).reply(429, { error: { code: 'TooManyRequests', message: 'slow down', target: 't' } }, { 'Retry-After': '7' });
      nock(apiOrigin).get('/api/alerts').query(true).reply(200, { value: [{ id: 'a' }] });
      const { clock, sleeps } = recordingClock();
      const throttled: number[] = [];
      const client = new DefenderClient(testConnector(), { clock, events: { onThrottled: (_f, ms) => throttled.push(ms) } });
      const res = await client.request<{ value: unknown[] }>({ path: '/api/alerts' });
      assert.equal(res.body.value.length, 1);
      assert.deepEqual(sleeps, [7000]);
      assert.deepEqual(throttled, [7000]);
    });

    it('429 without retries (retry:false) surfaces the wait', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).reply(429, { error: { code: 'TooManyRequests', message: 'x', target: 't' } }, { 'Retry-After': '12' });
      const err = await rejection(new DefenderClient(testConnector()).request({ path: '/api/alerts', retry: false }));
      assert.equal(err.errorClass, 'throttled');
      assert.equal(err.retryAfterMs, 12_000);
    });

    it('5xx backs off exponentially with jitter, bounded, then fails', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).times(6).reply(500);
      const { clock, sleeps } = recordingClock();
      const err = await rejection(new DefenderClient(testConnector(), { clock, random: () => 1 }).request({ path: '/api/alerts' }));
      assert.equal(err.errorClass, 'server');
      assert.deepEqual(sleeps, [1000, 2000, 4000, 8000, 16000]);
    });

    it('5xx then success recovers', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).reply(503);
      nock(apiOrigin).get('/api/alerts').query(true).reply(200, { value: [] });
      const { clock, sleeps } = recordingClock();
      await new DefenderClient(testConnector(), { clock, random: () => 0 }).request({ path: '/api/alerts' });
      assert.deepEqual(sleeps, [500]);
    });

    it('a POST is not repeated after a 5xx (it may have been executed)', async () => {
      nock(apiOrigin).post('/api/machines/abc/isolate').reply(503);
      const { clock, sleeps } = recordingClock();
      const err = await rejection(new DefenderClient(testConnector(), { clock }).request({ method: 'POST', path: '/api/machines/abc/isolate', body: { Comment: 'x' } }));
      assert.equal(err.status, 503);
      assert.deepEqual(sleeps, []);
    });

    it('a connection reset is retried (real server on 127.0.0.1)', async () => {
      let calls = 0;
      const server = await localHttps((req, res) => {
        calls++;
        if (calls === 1) return req.socket.destroy();
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ value: [{ id: 'a' }] }));
      });
      try {
        const connector = testConnector({ apiEndpoint: server.origin, allowCustomEndpoint: true, caFile: server.caFile });
        const { clock, sleeps } = recordingClock();
        const res = await new DefenderClient(connector, { clock }).request<{ value: unknown[] }>({ path: '/api/alerts' });
        assert.equal(res.body.value.length, 1);
        assert.equal(calls, 2);
        assert.equal(sleeps.length, 1);
      } finally {
        await server.close();
      }
    });

    it('a certificate the connector does not trust is a TLS error', async () => {
      const server = await localHttps((_req, res) => res.end('{}'));
      try {
        const connector = testConnector({ apiEndpoint: server.origin, allowCustomEndpoint: true });
        const err = await rejection(new DefenderClient(connector).request({ path: '/api/alerts', retry: false }));
        assert.equal(err.errorClass, 'tls');
        assert.match(err.message, /TLS failure/);
      } finally {
        await server.close();
      }
    });

    it('a timeout is classified as such', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).delay(1500).reply(200, { value: [] });
      const err = await rejection(new DefenderClient(testConnector({ requestTimeoutSeconds: 1 })).request({ path: '/api/alerts', retry: false }));
      assert.equal(err.errorClass, 'timeout');
    });

    it('malformed JSON is asked for again, then fails with a clear error', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).times(6).reply(200, '{"value": [ {"id": "a"', { 'Content-Type': 'application/json' });
      const { clock, sleeps } = recordingClock();
      const err = await rejection(new DefenderClient(testConnector(), { clock }).request({ path: '/api/alerts' }));
      assert.equal(err.errorClass, 'malformed');
      assert.match(err.message, /HTTP 200 body is not valid JSON \(22 bytes, starts "\{\\"value\\": \[ \{\\"id\\": \\"a\\""\)/);
      assert.equal(sleeps.length, 5);
    });

    it('a malformed answer followed by a good one recovers', async () => {
      nock(apiOrigin).get('/api/alerts').query(true).reply(200, 'not json');
      nock(apiOrigin).get('/api/alerts').query(true).reply(200, { value: [{ id: 'a' }] });
      const { clock } = recordingClock();
      const res = await new DefenderClient(testConnector(), { clock }).request<{ value: unknown[] }>({ path: '/api/alerts' });
      assert.equal(res.body.value.length, 1);
    });

    it('a truncated streamed page fails and delivers nothing past the cut', async () => {
      const items = Array.from({ length: 10 }, (_, i) => ({ id: `v${i}`, pad: 'x'.repeat(50) }));
      const body = JSON.stringify({ value: items, '@odata.nextLink': `${apiOrigin}/api/next` });
      nock(apiOrigin).get('/api/machines/SoftwareVulnerabilitiesByMachine').query(true).reply(200, body.slice(0, Math.floor(body.length / 2)));
      const got: unknown[] = [];
      const err = await rejection(
        new DefenderClient(testConnector()).streamPage({ path: '/api/machines/SoftwareVulnerabilitiesByMachine', family: 'export' }, 100, async (b) => void got.push(...b)),
      );
      assert.equal(err.errorClass, 'malformed');
      assert.match(err.message, /truncated/);
      assert.equal(got.length, 0, 'items of a cut page are not handed on when the batch never filled');
    });

    it('a 200 without a `value` array ({}, null, a scalar, another member) is a malformed page, not an empty one', async () => {
      const client = new DefenderClient(testConnector());
      for (const body of ['{}', '{"@odata.context":"x","value":null}', '{"value":"none"}', '{"value":{}}', '{"foo":[]}', '{"@odata.context":"x","values":[{"id":"a"}]}']) {
        nock(apiOrigin).get('/api/alerts').query(true).reply(200, body);
        const got: unknown[] = [];
        const err = await rejection(client.streamPage({ path: '/api/alerts' }, 10, async (b) => void got.push(...b)));
        assert.equal(err.errorClass, 'malformed', body);
        assert.equal(err.status, 200, body);
        assert.match(err.message, /without a "value" array/, body);
        assert.equal(got.length, 0, body);
      }
      nock(apiOrigin).get('/api/alerts').query(true).reply(200, '{"@odata.context":"x","value":[]}');
      assert.equal((await client.streamPage({ path: '/api/alerts' }, 10, async () => undefined)).count, 0, 'an empty array is an empty page');
    });

    it('streams a page in batches and returns its nextLink', async () => {
      const items = Array.from({ length: 25 }, (_, i) => ({ id: `v${i}`, name: `ü-${i}` }));
      nock(apiOrigin)
        .get('/api/machines/SoftwareVulnerabilitiesByMachine')
        .query({ pageSize: 25 })
        .reply(200, JSON.stringify({ '@odata.context': 'x', value: items, '@odata.nextLink': `${apiOrigin}/api/machines/SoftwareVulnerabilitiesByMachine?$skiptoken=abc` }));
      const batches: number[] = [];
      const got: unknown[] = [];
      const page = await new DefenderClient(testConnector()).streamPage(
        { path: '/api/machines/SoftwareVulnerabilitiesByMachine', query: { pageSize: 25 }, family: 'export' },
        10,
        async (b) => {
          batches.push(b.length);
          got.push(...b);
        },
      );
      assert.deepEqual(batches, [10, 10, 5]);
      assert.deepEqual(got, items);
      assert.equal(page.count, 25);
      assert.equal(page.nextLink, `${apiOrigin}/api/machines/SoftwareVulnerabilitiesByMachine?$skiptoken=abc`);
    });

    it('refuses a link to another host', async () => {
      const client = new DefenderClient(testConnector());
      assert.throws(() => client.url('https://evil.example.com/api/alerts'), (e: unknown) => e instanceof DefenderApiError && e.errorClass === 'paging');
      assert.equal(client.url('/api/alerts?$skip=10').toString(), `${apiOrigin}/api/alerts?$skip=10`);
    });
  });
});

describe('Defender API client: a stalled stream', () => {
  it('a page whose body stops arriving fails after requestTimeoutSeconds of silence, not hours later', async () => {
    const server = await localHttps((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"value":[{"id":"a"},'); // then nothing, connection kept open
    });
    try {
      const connector = testConnector({ apiEndpoint: server.origin, authorityHost: server.origin, allowCustomEndpoint: true, caFile: server.caFile, requestTimeoutSeconds: 1 });
      // the authority is beside the point here: a stand-in token provider
      const tokens = { getToken: async () => 'token', close() {}, renewals: 0 } as unknown as TokenProvider;
      const client = new DefenderClient(connector, { tokens });
      const started = Date.now();
      const err = await rejection(client.streamPage({ path: '/api/alerts' }, 10, async () => undefined));
      assert.equal(err.errorClass, 'timeout');
      assert.match(err.message, /no data for 1 s \(requestTimeoutSeconds\); gave up after 21 bytes, 1 items/);
      assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`);
      client.close();
    } finally {
      await server.close();
    }
  });
});
