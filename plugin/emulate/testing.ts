// Helpers for talking to an emulator from tests, the demo and benchmarks: an https.Agent that trusts
// its certificate, and an MSAL confidential client configured the way a custom (non-Microsoft)
// authority needs: `knownAuthorities: [host:port]` (otherwise MSAL asks login.microsoftonline.com for
// instance discovery) and a `system.networkClient` going through node-fetch with that agent.
import https from 'node:https';
import { ConfidentialClientApplication, type Configuration } from '@azure/msal-node';
import fetch, { type Response } from 'node-fetch';
import { defenderScope, FetchNetworkClient } from '../defender/auth.js';
import type { Emulator } from './server.js';

export function trustingAgent(emu: Pick<Emulator, 'caPem'>): https.Agent {
  return new https.Agent({ ca: emu.caPem, keepAlive: true });
}

export function msalFor(emu: Emulator, agent: https.Agent, overrides: Partial<Configuration['auth']> = {}): ConfidentialClientApplication {
  return new ConfidentialClientApplication({
    auth: {
      clientId: emu.clientId,
      clientSecret: emu.clientSecret,
      authority: `${emu.authorityUrl}/${emu.tenantId}`,
      knownAuthorities: [new URL(emu.authorityUrl).host],
      ...overrides,
    },
    system: { networkClient: new FetchNetworkClient(agent, 30_000) },
  });
}

export async function msalToken(app: ConfidentialClientApplication, forceRefresh = false): Promise<string> {
  const r = await app.acquireTokenByClientCredential({ scopes: [defenderScope], skipCache: forceRefresh });
  if (!r?.accessToken) throw new Error('MSAL returned no access token');
  return r.accessToken;
}

/** GET/POST against the emulator with a bearer token; returns status, headers and the raw body text. */
export async function call(emu: Emulator, agent: https.Agent, token: string | null, path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<{ status: number; headers: Response['headers']; text: string; json: () => any }> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path.startsWith('https://') ? path : `${emu.url}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    agent,
    signal: init.signal as never,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}
