import { createHash, timingSafeEqual } from 'node:crypto';
import type { RespondToken } from '../generated/config.js';
import { registerSecret } from '../log.js';

/** Who called: the configured token's name (appears in audit records) and its connector scope. */
export interface Caller {
  name: string;
  connectors: readonly string[];
  /** the /v1/actions/* it may call (respond.tokens[].actions) */
  actions: readonly string[];
  /** may submit an indicator that never expires */
  indicatorsWithoutExpiration?: boolean;
}

export type AuthResult = { ok: true; caller: Caller } | { ok: false; reason: string };

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Bearer tokens from respond.tokens. Presented and configured tokens are compared as SHA-256
 * digests (equal length, so timingSafeEqual applies) and every configured token is compared, so the
 * time taken says nothing about which one nearly matched.
 */
export class TokenAuth {
  private readonly entries: { digest: Buffer; caller: Caller }[];

  constructor(tokens: readonly RespondToken[]) {
    this.entries = tokens.map((t) => {
      // Literal tokens in the config are not registered by the ${env:} resolver; redact them too.
      registerSecret(t.token);
      return { digest: digest(t.token), caller: { name: t.name, connectors: [...t.connectors], actions: [...(t.actions ?? ['contain', 'release'])], indicatorsWithoutExpiration: t.indicatorsWithoutExpiration ?? false } };
    });
  }

  get configured(): number {
    return this.entries.length;
  }

  authenticate(header: string | undefined): AuthResult {
    if (!header) return { ok: false, reason: 'missing Authorization: Bearer <token>' };
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) return { ok: false, reason: 'Authorization header is not "Bearer <token>"' };
    const presented = digest(m[1]!);
    let found: Caller | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(presented, e.digest) && !found) found = e.caller;
    }
    return found ? { ok: true, caller: found } : { ok: false, reason: 'unknown bearer token' };
  }
}

export function mayUse(caller: Caller, connector: string): boolean {
  return caller.connectors.includes('*') || caller.connectors.includes(connector);
}

export function mayAct(caller: Caller, action: string): boolean {
  return caller.actions.includes(action);
}
