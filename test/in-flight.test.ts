import assert from 'node:assert/strict';
import { InFlightDeliveries } from '../plugin/collect/in-flight.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('InFlightDeliveries', () => {
  it('waits for the oldest only when the window is full', async () => {
    const w = new InFlightDeliveries(2);
    const a = deferred();
    const b = deferred();
    await w.add(a.promise); // 1 of 2: returns at once
    let second = false;
    const adding = w.add(b.promise).then(() => (second = true)); // 2 of 2: waits for a
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(second, false);
    a.resolve();
    await adding;
    b.resolve();
    await w.drain();
  });

  it('a failed delivery is thrown by the next add(), not only at drain()', async () => {
    const w = new InFlightDeliveries(3);
    const a = deferred();
    await w.add(a.promise);
    a.reject(new Error('chunk refused'));
    await new Promise((r) => setImmediate(r));
    await assert.rejects(w.add(Promise.resolve()), /chunk refused/);
    await assert.rejects(w.drain(), /chunk refused/);
  });

  it('drain() waits for every delivery and throws the first failure', async () => {
    const w = new InFlightDeliveries(5);
    const a = deferred();
    const b = deferred();
    await w.add(a.promise);
    await w.add(b.promise);
    let drained = false;
    const draining = w.drain().then(
      () => (drained = true),
      (e: Error) => e.message,
    );
    b.reject(new Error('second failed'));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(drained, false, 'still waiting for the first');
    a.resolve();
    assert.equal(await draining, 'second failed');
  });
});
