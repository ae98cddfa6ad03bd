import { pino, type Logger } from 'pino';

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
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v);
    return out as T;
  }
  return value;
}

/**
 * Logs go to stderr as JSON lines: stdout belongs to the stdout sink (records for in_exec).
 * `destination` lets tests capture the output.
 */
export function createLogger(level = 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
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
          const err = e as { name?: string; message?: string; code?: string; errorClass?: string };
          return redactValue({ type: err?.name, message: err?.message, code: err?.code, errorClass: err?.errorClass });
        },
      },
    },
    destination as pino.DestinationStream,
  );
}
