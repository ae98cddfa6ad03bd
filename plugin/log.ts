import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

// Every resolved secret is registered here; anything logged passes through `redact` so that a
// secret quoted back by a server or embedded in an error message never reaches the log.
const secrets = new Set<string>();

export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}

/** Deep-redacts strings in a JSON-like value (for records, audit entries and --json output). */
export function redactValue<T>(value: T): T {
  if (secrets.size === 0) return value;
  if (typeof value === 'string') return redact(value) as T;
  if (value instanceof Error) return redactError(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v);
    return out as T;
  }
  return value;
}

// An Error's message and stack are own but non-enumerable, so copying Object.entries (as for a plain
// object) would turn it into `{}` and every log line would lose the reason (`"err":{}`) whenever a
// secret is configured. The copy keeps the prototype (pino and the err serializer still see an Error)
// and the non-enumerable shape (JSON.stringify gives what it gave for the original), texts redacted.
function redactError(e: Error): Error {
  const out = Object.create(Object.getPrototypeOf(e)) as Error;
  for (const key of ['message', 'stack', 'cause'] as const) {
    if (Object.prototype.hasOwnProperty.call(e, key)) Object.defineProperty(out, key, { value: redactValue(e[key]), writable: true, configurable: true, enumerable: false });
  }
  for (const [k, v] of Object.entries(e)) (out as unknown as Record<string, unknown>)[k] = redactValue(v);
  return out;
}

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const logFormats = ['json', 'text'] as const;
export type LogFormat = (typeof logFormats)[number];

/**
 * Set once by the CLI from --log-level / --log-format, before the command starts: the command line
 * wins over the config's logLevel. ('silent', the default of components given no logger, stays.)
 */
const cliLog: { level?: string; format?: LogFormat } = {};
export function setCliLogOptions(o: { level?: string; format?: LogFormat }): void {
  Object.assign(cliLog, o);
}

/**
 * Logs go to stderr: stdout belongs to the stdout sink (records for in_exec). JSON lines by default
 * (for log shippers); `--log-format text` prints one readable line per entry for a terminal
 * (pino-pretty, synchronous, coloured on a TTY). `destination` lets tests capture the output.
 */
export function createLogger(level = 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  const stream =
    cliLog.format === 'text'
      ? pretty({ destination, sync: true, colorize: (destination as NodeJS.WriteStream).isTTY === true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: true })
      : (destination as pino.DestinationStream);
  return pino(
    {
      level: level === 'silent' ? level : (cliLog.level ?? level),
      base: { name: 'defender-fluent' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redact(a) : redactValue(a))) as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (e: unknown) => {
          // a thrown string or number has no fields: log it as the message rather than as `{}`
          if (e === null || typeof e !== 'object') return { message: redact(String(e)) };
          const err = e as { name?: string; message?: string; code?: string; status?: number; errorClass?: string };
          return redactValue({ type: err.name, message: err.message, code: err.code, status: err.status, errorClass: err.errorClass });
        },
      },
    },
    stream,
  );
}
