// Rate limits and faults of the emulator, through real HTTPS and MSAL tokens. The clock is frozen
// where windows matter, so nothing here depends on how fast the machine is.
import assert from 'node:assert/strict';
import type https from 'node:https';
import { parseFaults, startEmulator, type Emulator, type EmulatorOptions } from '../plugin/emulate/index.js';
import { call, msalFor, msalToken, trustingAgent } from '../plugin/emulate/testing.js';

const START = Date.parse('2026-03-02T10:00:00Z');

async function withEmulator(opts: EmulatorOptions, fn: (emu: Emulator, agent: https.Agent, token: string) => Promise<void>): Promise<void> {
  const emu = await startEmulator({ seed: 17, alerts: 30, machines: 5, vulnerabilities: 20, startTime: START, freezeClock: true, ...opts });
  try {
    const agent = trustingAgent(emu);
    await fn(emu, agent, await msalToken(msalFor(emu, agent)));
  } finally {
    await emu.close();
  }
}

async function burst(emu: Emulator, agent: https.Agent, token: string, path: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await call(emu, agent, token, path)).status);
  return statuses;
}

describe('emulator: rate limits', () => {
  it('100 calls per minute per API, then 429 TooManyRequests with Retry-After; a minute later calls pass again', () =>
    withEmulator({}, async (emu, agent, token) => {
      assert.deepEqual(new Set(await burst(emu, agent, token, '/api/alerts?$top=1', 100)), new Set([200]));
      const limited = await call(emu, agent, token, '/api/alerts?$top=1');
      assert.equal(limited.status, 429);
      assert.equal(limited.json().error.code, 'TooManyRequests');
      assert.equal(limited.headers.get('retry-after'), '60');
      // other APIs have their own budget
      assert.equal((await call(emu, agent, token, '/api/machines')).status, 200);
      emu.advanceTime(59_999);
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=1')).status, 429);
      emu.advanceTime(1);
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=1')).status, 200);
    }));

  it('1 500 calls per hour: Retry-After counts down to the oldest call leaving the hour', async function () {
    this.timeout(60_000);
    await withEmulator({}, async (emu, agent, token) => {
      for (let minute = 0; minute < 15; minute++) {
        assert.deepEqual(new Set(await burst(emu, agent, token, '/api/machineactions', 100)), new Set([200]), `minute ${minute}`);
        emu.advanceTime(60_000);
      }
      const r = await call(emu, agent, token, '/api/machineactions');
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), String(3600 - 15 * 60));
    });
  });

  it("rateLimitScope 'family': one budget shared by alerts, machines and machine actions", () =>
    withEmulator({ rateLimitScope: 'family' }, async (emu, agent, token) => {
      await burst(emu, agent, token, '/api/alerts?$top=1', 60);
      await burst(emu, agent, token, '/api/machines', 40);
      assert.equal((await call(emu, agent, token, '/api/machineactions')).status, 429);
      assert.equal((await call(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=1')).status, 200, 'exports have their own');
    }));

  it('export APIs: 30 per minute', () =>
    withEmulator({}, async (emu, agent, token) => {
      const statuses = await burst(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine?pageSize=1', 31);
      assert.deepEqual(statuses.slice(0, 30), Array(30).fill(200));
      assert.equal(statuses[30], 429);
      assert.equal(emu.served.statusCounts('vulnerabilities')[429], 1);
    }));

  it('--rate-scale shrinks the windows (0.01: 100 calls per 0.6 s) and says the exact wait in x-ms-retry-after-ms', () =>
    withEmulator({ rateScale: 0.01 }, async (emu, agent, token) => {
      await burst(emu, agent, token, '/api/machineactions', 100);
      const r = await call(emu, agent, token, '/api/machineactions');
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal(r.headers.get('x-ms-retry-after-ms'), '600');
      emu.advanceTime(600);
      assert.equal((await call(emu, agent, token, '/api/machineactions')).status, 200);
    }));

  it('can be turned off (benchmarks) and on again', () =>
    withEmulator({ rateLimits: false }, async (emu, agent, token) => {
      assert.deepEqual(new Set(await burst(emu, agent, token, '/api/machines', 130)), new Set([200]));
      emu.setRateLimits({ enabled: true });
      await burst(emu, agent, token, '/api/machines', 100);
      assert.equal((await call(emu, agent, token, '/api/machines')).status, 429);
    }));
});

describe('emulator: faults', () => {
  it('parses fault lists and explains bad ones', () => {
    assert.deepEqual(parseFaults('429:count=3:retryAfter=2, 503:p=0.1,truncate:bytes=100:on=alerts,token-reject:after=3,reset'), [
      { kind: '429', count: 3, retryAfter: 2 },
      { kind: '503', p: 0.1 },
      { kind: 'truncate', bytes: 100, on: 'alerts' },
      { kind: 'token-reject', after: 3 },
      { kind: 'reset' },
    ]);
    assert.throws(() => parseFaults('404'), /unknown kind "404"/);
    assert.throws(() => parseFaults('503:p=2'), /p=2 is not a probability/);
    assert.throws(() => parseFaults('slow:speed=3'), /bad parameter "speed=3"/);
    assert.throws(() => parseFaults('reset:on=everywhere'), /on=everywhere/);
    assert.deepEqual(parseFaults('novalue,novalue:shape=null:on=machines'), [{ kind: 'novalue' }, { kind: 'novalue', shape: 'null', on: 'machines' }]);
    assert.throws(() => parseFaults('novalue:shape=round'), /shape=round is not one of empty, null, scalar, other/);
  });

  it('novalue: a whole 200 JSON body without a `value` array, in the shape asked for', () =>
    withEmulator({ faults: 'novalue:on=alerts,novalue:shape=null:on=alerts,novalue:shape=scalar:on=alerts,novalue:shape=other:on=alerts' }, async (emu, agent, token) => {
      const bodies = [];
      for (let i = 0; i < 4; i++) {
        const r = await call(emu, agent, token, '/api/alerts?$top=1');
        assert.equal(r.status, 200);
        bodies.push(r.json());
      }
      assert.deepEqual(bodies.map((b) => b.value), [undefined, null, 'none', undefined]);
      assert.deepEqual(bodies[3], { foo: [] });
      assert.equal(emu.faultsFired().novalue, 4);
      assert.ok(Array.isArray((await call(emu, agent, token, '/api/alerts?$top=1')).json().value), 'then normal pages');
    }));

  it('pageCap: list pages hold at most that many whatever $top says; pageCapNextLink links the rest', async () => {
    await withEmulator({ machines: 25, pageCap: 10 }, async (emu, agent, token) => {
      const r = (await call(emu, agent, token, '/api/machines?$top=100&$skip=20')).json();
      assert.equal(r.value.length, 5);
      const first = (await call(emu, agent, token, '/api/machines?$top=100')).json();
      assert.equal(first.value.length, 10);
      assert.equal(first['@odata.nextLink'], undefined, 'no link under $top by default');
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=100')).json().value.length, 10);
    });
    await withEmulator({ machines: 25, pageCap: 10, pageCapNextLink: true }, async (emu, agent, token) => {
      const ids: string[] = [];
      let link: string | undefined = '/api/machines?$top=100';
      while (link) {
        const page = (await call(emu, agent, token, link)).json();
        ids.push(...page.value.map((m: { id: string }) => m.id));
        link = page['@odata.nextLink'];
      }
      assert.equal(new Set(ids).size, 25);
    });
  });

  it('429 storm: N consecutive 429s with the given Retry-After, then normal answers', () =>
    withEmulator({ faults: '429:count=3:retryAfter=7' }, async (emu, agent, token) => {
      const rs = [];
      for (let i = 0; i < 4; i++) rs.push(await call(emu, agent, token, '/api/alerts'));
      assert.deepEqual(rs.map((r) => r.status), [429, 429, 429, 200]);
      assert.equal(rs[0]!.headers.get('retry-after'), '7');
      assert.equal(rs[0]!.json().error.code, 'TooManyRequests');
      assert.equal(emu.faultsFired()['429'], 3);
    }));

  it('500 and 503 bursts after N good calls, only on the API named', () =>
    withEmulator({ faults: '500:count=2:after=1:on=machines,503:count=1:on=vulnerabilities' }, async (emu, agent, token) => {
      assert.deepEqual(await burst(emu, agent, token, '/api/machines', 4), [200, 500, 500, 200]);
      assert.equal((await call(emu, agent, token, '/api/alerts')).status, 200);
      const r = await call(emu, agent, token, '/api/machines/SoftwareVulnerabilitiesByMachine');
      assert.equal(r.status, 503);
      assert.equal(r.json().error.code, 'ServiceUnavailable');
    }));

  it('slow responses: a client with a short deadline gives up; the response itself is intact', () =>
    withEmulator({ faults: 'slow:ms=3000:count=1,slow:ms=150:count=1:after=1' }, async (emu, agent, token) => {
      await assert.rejects(call(emu, agent, token, '/api/alerts', { signal: AbortSignal.timeout(100) }), /abort/i);
      const r = await call(emu, agent, token, '/api/alerts');
      assert.equal(r.status, 200);
      assert.equal(r.json().value.length, 30);
      assert.equal(emu.faultsFired().slow, 2);
    }));

  it('truncated body: the stream ends mid-JSON, and nothing of it counts as served', () =>
    withEmulator({ faults: 'truncate:bytes=700' }, async (emu, agent, token) => {
      let received = '';
      await assert.rejects(async () => {
        const r = await call(emu, agent, token, '/api/alerts?$expand=evidence');
        received = r.text;
        JSON.parse(r.text);
      });
      assert.ok(received.length < 700 + 1);
      assert.equal(emu.served.alertRecords, 0);
      const entry = emu.served.requests.find((r) => r.fault === 'truncate')!;
      assert.equal(entry.complete, false);
      const ok = await call(emu, agent, token, '/api/alerts?$expand=evidence');
      assert.equal(ok.json().value.length, 30);
      assert.equal(emu.served.alertRecords, 30);
    }));

  it('trickled body: it arrives a few bytes at a time, whole in the end (token answers too)', () =>
    withEmulator({ faults: 'trickle:bytes=40:ms=5:on=alerts,trickle:bytes=40:ms=5:on=token' }, async (emu, agent, token) => {
      const r = await call(emu, agent, token, '/api/alerts?$top=2');
      assert.equal(r.status, 200);
      assert.equal(r.json().value.length, 2);
      assert.equal(emu.served.requests.find((q) => q.fault === 'trickle')?.complete, true);
      const fresh = await msalToken(msalFor(emu, agent), true);
      assert.ok(fresh);
      assert.equal(emu.faultsFired().trickle, 2);
    }));

  it('malformed JSON: 200 with a body that does not parse', () =>
    withEmulator({ faults: 'malformed' }, async (emu, agent, token) => {
      const r = await call(emu, agent, token, '/api/alerts');
      assert.equal(r.status, 200);
      assert.throws(() => r.json(), SyntaxError);
      assert.equal(emu.served.alertRecords, 0);
    }));

  it('token rejected mid-paging: 401 on the Nth data call, the same token stays refused, a new one works', () =>
    withEmulator({ faults: 'token-reject:after=2' }, async (emu, agent, token) => {
      const app = msalFor(emu, agent);
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=10&$skip=0')).status, 200);
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=10&$skip=10')).status, 200);
      const third = await call(emu, agent, token, '/api/alerts?$top=10&$skip=20');
      assert.equal(third.status, 401);
      assert.equal(third.json().error.code, 'Unauthorized');
      assert.equal((await call(emu, agent, token, '/api/alerts?$top=10&$skip=20')).status, 401, 'retrying with the same token fails again');
      const fresh = await msalToken(app, true);
      assert.notEqual(fresh, token);
      assert.equal((await call(emu, agent, fresh, '/api/alerts?$top=10&$skip=20')).status, 200);
    }));

  it('connection reset: the socket is destroyed without an answer', () =>
    withEmulator({ faults: 'reset:on=alerts' }, async (emu, agent, token) => {
      await assert.rejects(call(emu, agent, token, '/api/alerts'), (e: Error & { code?: string }) => {
        assert.match(`${e.code} ${e.message}`, /ECONNRESET|socket hang up/);
        return true;
      });
      assert.equal((await call(emu, agent, token, '/api/alerts')).status, 200);
    }));

  it('faults on the token endpoint use the Entra error shape', () =>
    withEmulator({ faults: '503:on=token:after=3' }, async (emu, agent) => {
      await assert.rejects(msalToken(msalFor(emu, agent), true), (e: { errorCode?: string; errorMessage?: string }) => {
        assert.match(`${e.errorCode} ${e.errorMessage}`, /temporarily_unavailable|90033/);
        return true;
      });
    }));

  it('probabilistic faults are deterministic from the seed', async () => {
    const sequence = async (seed: number) => {
      const out: number[] = [];
      await withEmulator({ seed, faults: '500:p=0.5' }, async (emu, agent, token) => {
        out.push(...(await burst(emu, agent, token, '/api/machines?$top=1', 24)));
      });
      return out;
    };
    const a = await sequence(1);
    assert.deepEqual(await sequence(1), a);
    assert.ok(a.includes(500) && a.includes(200));
    assert.notDeepEqual(await sequence(2), a);
  });

  it('setFaults arms faults on a running emulator', () =>
    withEmulator({}, async (emu, agent, token) => {
      assert.equal((await call(emu, agent, token, '/api/alerts')).status, 200);
      emu.setFaults('503:count=1');
      assert.equal((await call(emu, agent, token, '/api/alerts')).status, 503);
      assert.equal((await call(emu, agent, token, '/api/alerts')).status, 200);
    }));
});
