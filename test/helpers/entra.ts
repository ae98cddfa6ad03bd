import nock from 'nock';
import { useNock } from './nock.js';

export const tenantId = '7f3c2a10-5b6d-4e8f-9a0b-1c2d3e4f5a6b';
export const clientId = '0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5';
export const clientSecret = 'test-secret-Xq9~abcdefghijkl';

/** An unsigned JWT-shaped token with the given claims (Defender tokens are opaque to the collector). */
export function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ typ: 'JWT', alg: 'none' })}.${enc({ aud: 'https://api.securitycenter.microsoft.com', tid: tenantId, ...claims })}.sig`;
}

/**
 * Intercepts Entra's token endpoint for client credentials. Each call answers the next reply; the
 * returned list records the form bodies MSAL posted.
 */
export function nockTokens(
  replies: Array<{ status?: number; body: Record<string, unknown> }>,
  authority = 'https://login.microsoftonline.com',
): { calls: Array<Record<string, string>>; scope: nock.Scope } {
  const calls: Array<Record<string, string>> = [];
  const scope = nock(authority);
  for (const r of replies) {
    scope
      .post(`/${tenantId}/oauth2/v2.0/token`)
      .query(true)
      .reply(r.status ?? 200, (_uri, body) => {
        calls.push(Object.fromEntries(new URLSearchParams(String(body))));
        return r.body;
      });
  }
  return { calls, scope };
}

export const tokenReply = (token: string, expiresIn = 3599) => ({ body: { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token } });

/** For a describe block: no real network, and a token endpoint answering once per test. */
export function useNockedEntra(claims: Record<string, unknown> = {}): void {
  useNock();
  beforeEach(() => {
    nock.disableNetConnect();
    nockTokens([tokenReply(fakeJwt(claims))]);
  });
  afterEach(() => {
    nock.cleanAll();
    nock.enableNetConnect();
  });
}
