// Small HTTP helpers shared by the Entra and Defender handlers.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyAborted, BodyWriter, type Trickle } from './body.js';

export const jsonType = 'application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8';

/** Per-request state: the fault decided for it and whether the body arrived whole. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** bytes after which the body is cut (truncate fault) */
  cutAfterBytes: number | null;
  /** the body goes out in pieces of `bytes` every `ms` (trickle fault) */
  trickle?: Trickle;
  fault?: string;
  api: string;
  /** id (jti) of the bearer token that made the call: tells apart the clients (replicas) of one tenant */
  token?: string;
}

/**
 * Sends a whole JSON body (through BodyWriter so a truncate or trickle fault applies here too). Returns true if
 * sent completely; without a cut the body is handed to the socket before this returns (synchronously).
 */
export async function sendJson(x: Exchange, status: number, body: unknown, headers: Record<string, string> = {}): Promise<boolean> {
  const text = JSON.stringify(body);
  if (x.cutAfterBytes === null && !x.trickle) {
    x.res.writeHead(status, { 'content-type': jsonType, 'content-length': Buffer.byteLength(text), ...headers });
    x.res.end(text);
    return true;
  }
  x.res.writeHead(status, { 'content-type': jsonType, ...headers });
  try {
    await new BodyWriter(x.res, x.cutAfterBytes, x.trickle).end(text);
    return true;
  } catch (e) {
    if (e instanceof BodyAborted) return false;
    throw e;
  }
}

/** Defender's error envelope (common-errors.md): {"error":{"code","message","target"}}. */
export function sendError(x: Exchange, status: number, code: string, message: string, headers: Record<string, string> = {}): Promise<boolean> {
  return sendJson(x, status, { error: { code, message, target: randomUUID() } }, headers);
}

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Query parameter lookup ignoring case (the export APIs accept pageSize and pagesize). */
export function queryParam(q: URLSearchParams, name: string): string | null {
  const lower = name.toLowerCase();
  for (const [k, v] of q) if (k.toLowerCase() === lower) return v;
  return null;
}
