// nock turns itself on when first imported, for the whole mocha process: every HTTPS request of every
// file then goes through its interceptor, the emulator's and local servers' too. Passing a real
// request through, the interceptor's socket shares the real TLS socket's handle, and on its close
// (after a connection reset, say) drops the real socket's listeners before destroying it: a write
// that handle still had queued is cancelled, and its error ("write ECANCELED Canceled because of SSL
// destruction") goes to a socket nobody listens to, an uncaught exception in whatever test runs.
// So nock is off once the test files are loaded, and on only for the suites it answers for.
import nock from 'nock';

if (nock.isActive()) nock.restore();

/** For a describe block whose requests nock answers: nock intercepts from its first test to its last. */
export function useNock(): void {
  before(() => nock.activate());
  after(() => nock.restore());
}
