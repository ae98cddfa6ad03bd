import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import { startStatusLoop } from '../plugin/collect/observe.js';
import type { TaskState } from '../plugin/collect/collector.js';
import { newCounters } from '../plugin/collect/pipeline.js';
import type { OutRecord, Sink, SinkState } from '../plugin/output/sink.js';
import { connectorHealth, readStatusFile, StatusStore } from '../plugin/status/store.js';
import { captureLogger } from './helpers/collect.js';
import { testConfig } from './helpers/connector.js';

/** A sink whose health the test sets; delivered batches are kept. */
class ControlledSink implements Sink {
  received: OutRecord[] = [];
  current: SinkState = { ok: true };
  async deliver(batch: OutRecord[]) {
    this.received.push(...batch);
  }
  state() {
    return this.current;
  }
  async close() {}
}

describe('status loop', () => {
  let clock: ReturnType<typeof FakeTimers.install>;
  beforeEach(() => {
    clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval', 'Date'], now: Date.parse('2026-03-01T12:00:00Z') });
  });
  afterEach(() => clock.uninstall());

  it('marks polls waiting on an unreachable pipeline red with the reason, and sends status records every statusIntervalMinutes', async () => {
    const config = testConfig({ contentTypes: ['alerts', 'host'] }, { statusIntervalMinutes: 5 });
    const status = new StatusStore(config.stateDir);
    const sink = new ControlledSink();
    const running: TaskState = { connector: 'acme-mde', content: 'alerts', running: true, counters: newCounters() };
    const idle: TaskState = { connector: 'acme-mde', content: 'host', running: false, counters: newCounters() };
    status.recordSuccess('acme-mde', 'alerts', { records: 1, filtered: 0, failed: 0 });
    status.recordSuccess('acme-mde', 'host', { records: 1, filtered: 0, failed: 0 });
    const stop = startStatusLoop({ config, status, sink, runners: () => [running, idle], logger: captureLogger().logger });
    try {
      const health = () => connectorHealth(config.connectors[0]!, readStatusFile(config.stateDir), Date.now());
      clock.tick(15_000);
      assert.equal(readStatusFile(config.stateDir), undefined, 'nothing written while the sink is fine');

      sink.current = { ok: false, reason: 'forward server 127.0.0.1:24224 unreachable (ECONNREFUSED)' };
      clock.tick(15_000);
      const red = health();
      assert.equal(red.state, 'red');
      assert.deepEqual(red.reasons.length, 1, 'only the poll that waits on the sink');
      assert.match(red.reasons[0]!, /^alerts: last poll failed .*\(pipeline\): pipeline not acknowledging: forward server 127\.0\.0\.1:24224 unreachable/);

      assert.equal(sink.received.length, 0);
      clock.tick(5 * 60_000);
      await Promise.resolve();
      const records = sink.received.filter((r) => r.tag === 'microsoft_defender.status');
      assert.equal(records.length, 1);
      assert.equal(records[0]!.record.msg_class, 'microsoft_defender_status');
    } finally {
      stop();
    }
  });
});
