import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import nock from 'nock';
import { Collector } from '../plugin/collect/collector.js';
import { CursorStore } from '../plugin/collect/cursor-store.js';
import { WaitInterruptedError } from '../plugin/defender/budget.js';
import { DefenderClient } from '../plugin/defender/client.js';
import { apiOrigin, testConfig, testConnector } from './helpers/connector.js';
import { captureLogger } from './helpers/collect.js';
import { useNockedEntra } from './helpers/entra.js';
import { MemorySink } from './helpers/memory-sink.js';
import { RawMapper } from './helpers/raw-mapper.js';

/**
 * A stop must not sit out the API's waits: an hour-long Retry-After (or budget window) ends at
 * once, the poll counts as stopped (not failed) and its cursor does not move.
 */
describe('Collector.stop() during a wait on the API', () => {
  useNockedEntra({ roles: ['Alert.Read.All'] });

  it('interruptWaits() ends a call waiting for the rate budget with WaitInterruptedError', async () => {
    const client = new DefenderClient(testConnector({ contentTypes: ['alerts'] }));
    const budget = client.budget('standard');
    for (let i = 0; i < budget.perMinute; i++) await budget.acquire();
    const call = client.request({ path: '/api/alerts' });
    const outcome = call.then(
      () => 'answered',
      (e: unknown) => (e instanceof WaitInterruptedError ? 'interrupted' : String(e)),
    );
    await new Promise((r) => setTimeout(r, 20));
    client.interruptWaits(); // without it the call waits a minute for the budget: a test timeout
    assert.equal(await outcome, 'interrupted');
    client.close();
  });

  it('ends a 1-hour Retry-After wait at once; the poll is stopped, not failed, and commits nothing', async () => {
    const config = testConfig({ contentTypes: ['alerts'], lookbackHours: 3 });
    nock(apiOrigin).get('/api/alerts').query(true).reply(429, { error: { code: 'TooManyRequests', message: 'slow down', target: 't' } }, { 'Retry-After': '3600' });
    const { logger } = captureLogger();
    let throttled!: () => void;
    const wasThrottled = new Promise<void>((r) => (throttled = r));
    const collector = new Collector({
      config,
      sink: new MemorySink(),
      mapper: () => new RawMapper(),
      logger,
      clientFor: (c) => new DefenderClient(c, { logger, events: { onThrottled: () => throttled() } }),
    });
    collector.start();
    await wasThrottled;
    await collector.stop(); // without the interruption this waits an hour and the test times out
    const state = collector.runners[0]!.state;
    assert.equal(state.running, false);
    assert.equal(state.lastError, undefined, 'a stop is not a failure');
    assert.equal(existsSync(new CursorStore(config.stateDir).file('acme-mde', 'alerts')), false);
  });
});
