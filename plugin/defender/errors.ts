/** Coarse classes used in status, metrics and the `test` command's advice. */
export type ErrorClass =
  | 'auth' // token refused or 401
  | 'permission' // 403
  | 'not_found' // 404
  | 'bad_request' // 400
  | 'throttled' // 429
  | 'server' // 5xx
  | 'timeout'
  | 'network' // DNS, refused, reset, proxy
  | 'tls'
  | 'malformed' // body not the JSON we expect, or truncated
  | 'paging' // nextLink loop or off-host link
  | 'pipeline' // the Fluent side is not acknowledging
  | 'config';

/** Defender's error envelope: {"error":{"code","message","target"}} (common-errors.md). */
export interface DefenderErrorBody {
  code?: string;
  message?: string;
  /** correlation id for Microsoft support */
  target?: string;
}

export class DefenderApiError extends Error {
  readonly errorClass: ErrorClass;
  readonly status?: number;
  /** Defender error.code, or a Node error code (ECONNRESET, ...) */
  readonly code?: string;
  readonly target?: string;
  /** Defender's error.message (free text, may change) */
  readonly serverMessage?: string;
  readonly retryAfterMs?: number;
  /** method and path of the request (no query secrets: the API takes none) */
  readonly request?: string;

  constructor(
    message: string,
    opts: { errorClass: ErrorClass; status?: number; code?: string; target?: string; serverMessage?: string; retryAfterMs?: number; request?: string; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DefenderApiError';
    this.errorClass = opts.errorClass;
    this.status = opts.status;
    this.code = opts.code;
    this.target = opts.target;
    this.serverMessage = opts.serverMessage;
    this.retryAfterMs = opts.retryAfterMs;
    this.request = opts.request;
  }
}

/** Token acquisition failed (Entra). `aadsts` carries the AADSTS code when Entra gave one. */
export class TokenError extends Error {
  readonly errorClass: ErrorClass;
  readonly aadsts?: string;
  readonly code?: string;

  constructor(message: string, opts: { errorClass: ErrorClass; aadsts?: string; code?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TokenError';
    this.errorClass = opts.errorClass;
    this.aadsts = opts.aadsts;
    this.code = opts.code;
  }
}

export function errorClassOf(e: unknown): ErrorClass | 'internal' {
  if (e instanceof DefenderApiError || e instanceof TokenError || e instanceof PipelineError) return e.errorClass;
  return 'internal';
}

/** The pipeline is not taking records (forward server down, handshake refused, ...). */
export class PipelineError extends Error {
  readonly errorClass = 'pipeline' as const;

  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}
