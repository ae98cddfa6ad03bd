import type { IncomingMessage } from 'node:http';

/** A request the sidecar refuses before acting: HTTP status, machine-readable code, readable reason. */
export class RequestError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
    readonly details?: { pointer: string; message: string }[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/**
 * Reads the body, refusing (413) as soon as it exceeds `limit` bytes: by Content-Length when the
 * client sends one, otherwise while streaming. Nothing past the limit is buffered.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new RequestError(413, 'body_too_large', `request body exceeds the limit of ${limit} bytes (respond.maxBodyBytes)`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) reject(new RequestError(400, 'body_unreadable', `request body could not be read: ${e.message}`));
      failed = true;
    });
  });
}

/** One JSON document; 400 with JSON.parse's reason otherwise. */
export function parseJson(buf: Buffer): unknown {
  const text = buf.toString('utf8');
  if (!text.trim()) throw new RequestError(400, 'malformed_json', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RequestError(400, 'malformed_json', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Fluentd out_http payloads: a JSON array (json_array true) or NDJSON (one object per line), or a
 * single object. Any malformed line refuses the whole payload (400, with the line number): acting
 * on part of a batch that Fluentd will re-send would be worse.
 */
export function parseRecords(buf: Buffer): unknown[] {
  const text = buf.toString('utf8');
  const trimmed = text.trim();
  if (!trimmed) throw new RequestError(400, 'malformed_json', 'request body is empty; expected a JSON array or NDJSON of alert records');
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (e) {
      throw new RequestError(400, 'malformed_json', `request body is not a valid JSON array: ${(e as Error).message}`);
    }
    return parsed as unknown[];
  }
  const out: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new RequestError(400, 'malformed_json', `NDJSON line ${i + 1} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return out;
}
