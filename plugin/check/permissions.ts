import type { Connector, ContentType } from '../config/load.js';

/**
 * The token's application permissions, read from the JWT payload's `roles` claim. The signature is
 * not checked: the token came straight from Entra over TLS and is only inspected, never trusted
 * for access decisions (Defender checks it on every call).
 */
export type TokenRoles =
  | { kind: 'jwt'; roles: string[]; hasRolesClaim: boolean; tid?: string; aud?: string }
  | { kind: 'not-jwt'; reason: string };

function base64urlJson(segment: string): unknown {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(segment)) throw new Error('not base64url');
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

export function readTokenRoles(token: string): TokenRoles {
  const parts = token.split('.');
  if (parts.length !== 3) return { kind: 'not-jwt', reason: `expected 3 dot-separated parts (header.payload.signature), got ${parts.length}` };
  let payload: unknown;
  try {
    base64urlJson(parts[0]!);
    payload = base64urlJson(parts[1]!);
  } catch {
    return { kind: 'not-jwt', reason: 'the header or payload is not base64url-encoded JSON' };
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return { kind: 'not-jwt', reason: 'the payload is not a JSON object' };
  const p = payload as Record<string, unknown>;
  const hasRolesClaim = 'roles' in p;
  const roles = Array.isArray(p.roles) ? p.roles.filter((r): r is string => typeof r === 'string') : [];
  return {
    kind: 'jwt',
    roles,
    hasRolesClaim,
    tid: typeof p.tid === 'string' ? p.tid : undefined,
    aud: typeof p.aud === 'string' ? p.aud : undefined,
  };
}

/** One permission need of a connector: any of `anyOf` satisfies it. */
export interface PermissionNeed {
  /** what the permission is used for, e.g. "alerts" */
  purpose: string;
  anyOf: string[];
  /** the probe that depends on it, so that probe can be skipped when the need is unmet */
  probe: ProbeId;
}

/** hunting is checked on its own Graph token (checkHunting), not with the WindowsDefenderATP roles */
export type ProbeId = Exclude<ContentType, 'hunting'> | 'respond';

const contentNeeds: Record<ProbeId & ContentType, string[]> = {
  alerts: ['Alert.Read.All', 'Alert.ReadWrite.All'],
  host: ['Machine.Read.All', 'Machine.ReadWrite.All'],
  vulnerabilities: ['Vulnerability.Read.All'],
  // GET /api/machineactions: Machine.Read.All or Machine.ReadWrite.All (get-machineactions-collection.md)
  machineActions: ['Machine.Read.All', 'Machine.ReadWrite.All'],
};

/** The permission each response action beside contain / release needs (the sidecar's respond.tokens[].actions). */
const actionNeeds: Record<string, string[]> = {
  scan: ['Machine.Scan'],
  quarantine: ['Machine.StopAndQuarantine'],
  restrict: ['Machine.RestrictExecution'],
  unrestrict: ['Machine.RestrictExecution'],
  'collect-package': ['Machine.CollectForensics'],
  'update-alert': ['Alert.ReadWrite.All'],
  tag: ['Machine.ReadWrite.All'],
  indicators: ['Ti.ReadWrite', 'Ti.ReadWrite.All'],
};

/**
 * What the connector's functions and content types need from the WindowsDefenderATP API, and the
 * response actions some token may call on it (`respondActions`).
 */
export function permissionNeeds(connector: Pick<Connector, 'functions' | 'contentTypes'>, respondActions: readonly string[] = []): PermissionNeed[] {
  const needs: PermissionNeed[] = [];
  if (connector.functions.includes('collect')) {
    for (const ct of connector.contentTypes) if (ct !== 'hunting') needs.push({ purpose: ct, anyOf: contentNeeds[ct], probe: ct });
  }
  if (connector.functions.includes('respond')) {
    needs.push({ purpose: 'respond: isolate / release', anyOf: ['Machine.Isolate'], probe: 'respond' });
    // The sidecar follows each action with GET /api/machineactions/{id}, which needs a machine
    // read permission even when the connector does not collect hosts.
    if (!needs.some((n) => n.anyOf.includes('Machine.Read.All'))) {
      needs.push({ purpose: 'respond: follow the action status', anyOf: contentNeeds.host, probe: 'respond' });
    }
    for (const action of respondActions) {
      const anyOf = actionNeeds[action];
      if (anyOf && !needs.some((n) => n.anyOf.join() === anyOf.join())) needs.push({ purpose: `respond: ${action}`, anyOf, probe: 'respond' });
    }
  }
  return needs;
}

export function describeNeed(n: PermissionNeed): string {
  return n.anyOf.join(' or ');
}

/** Needs the granted roles do not satisfy (role names compare case-insensitively, as Entra does). */
export function missingNeeds(needs: PermissionNeed[], granted: string[]): PermissionNeed[] {
  const have = new Set(granted.map((r) => r.toLowerCase()));
  return needs.filter((n) => !n.anyOf.some((r) => have.has(r.toLowerCase())));
}
