import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { DefenderApiError } from '../plugin/defender/errors.js';
import { createLogger, redactValue, registerSecret, setCliLogOptions } from '../plugin/log.js';

// The secret set is process-wide (other test files register theirs too), so this one is unique to this file.
const secret = 'log-test-secret-8c1f27';

/** A logger whose lines are collected synchronously (pino writes straight to the stream). */
function capturedLogger() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger('info', stream), text: () => text, lines: () => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>) };
}

describe('logger redaction', () => {
  before(() => registerSecret(secret));

  it('an err logged while a secret is configured keeps its message, type, code and status, with the secret redacted', () => {
    const { logger, text, lines } = capturedLogger();
    const e = new DefenderApiError(`POST /oauth2/v2.0/token: 401 client_secret=${secret} rejected`, { errorClass: 'auth', status: 401, code: 'invalid_client', serverMessage: `bad secret ${secret}` });
    logger.error({ connector: 'acme', err: e }, 'poll failed; the cursor did not move');
    logger.warn(new Error(`plain error quoting ${secret}`), 'first-argument error');

    const [first, second] = lines();
    assert.deepEqual(first!.err, { type: 'DefenderApiError', message: 'POST /oauth2/v2.0/token: 401 client_secret=[REDACTED] rejected', code: 'invalid_client', status: 401, errorClass: 'auth' });
    assert.equal(first!.msg, 'poll failed; the cursor did not move');
    assert.deepEqual(second!.err, { type: 'Error', message: 'plain error quoting [REDACTED]' });
    assert.ok(!text().includes(secret), 'the secret appears nowhere in the log output');
    // the caller's error is not altered by logging it
    assert.ok(e.message.includes(secret));
  });

  it('a redacted error is still an Error of its class, with the secret gone from message and stack', () => {
    const e = new DefenderApiError(`GET /api/alerts: token ${secret} refused`, { errorClass: 'auth', status: 401 });
    const r = redactValue(e);
    assert.ok(r instanceof DefenderApiError);
    assert.equal(r.message, 'GET /api/alerts: token [REDACTED] refused');
    assert.ok(r.stack?.includes('[REDACTED]') && !r.stack.includes(secret));
    assert.equal(r.status, 401);
    assert.equal(JSON.stringify(r), JSON.stringify(e), 'the same fields serialise as for the original');
  });
});

describe('--log-level and --log-format', () => {
  before(() => registerSecret(secret));
  afterEach(() => setCliLogOptions({ level: undefined, format: undefined }));

  const sink = () => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        done();
      },
    });
    return { stream, text: () => text };
  };

  it('--log-level wins over the config’s level; a component’s silent default stays silent', () => {
    setCliLogOptions({ level: 'debug' });
    const out = sink();
    createLogger('warn', out.stream).debug('shown at debug');
    createLogger('silent', out.stream).error('never shown');
    assert.match(out.text(), /shown at debug/);
    assert.doesNotMatch(out.text(), /never shown/);
  });

  it('text: one readable line per entry (time, level, message, fields), not JSON, secrets redacted', () => {
    setCliLogOptions({ format: 'text' });
    const out = sink();
    const logger = createLogger('info', out.stream);
    logger.warn({ connector: 'acme', token: secret }, 'poll failed; the cursor did not move');
    logger.info('second entry');
    const lines = out.text().trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: poll failed; the cursor did not move \{"connector":"acme","token":"\[REDACTED\]"\}$/);
    assert.match(lines[1]!, /\] INFO: second entry$/);
    assert.throws(() => JSON.parse(lines[0]!));
    assert.ok(!out.text().includes(secret));
  });
});
