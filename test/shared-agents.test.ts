import assert from 'node:assert/strict';
import { send, shareAgent } from '../plugin/defender/http.js';
import { localHttps } from './helpers/local-https.js';

/** Hundreds of connectors reach the same API and authority hosts: one agent per origin, CA and proxy. */
describe('shared HTTPS agents', () => {
  it('connectors on the same origin, CA and proxy share one agent; another origin or proxy gets its own', async () => {
    const server = await localHttps((_req, res) => res.end('{}'));
    const a = shareAgent(server.origin, { caFile: server.caFile }, {});
    const b = shareAgent(server.origin, { caFile: server.caFile }, {});
    const other = shareAgent('https://127.0.0.2:1', { caFile: server.caFile }, {});
    const proxied = shareAgent(server.origin, { caFile: server.caFile, proxy: 'http://127.0.0.1:3128' }, {});
    try {
      assert.equal(a.agent, b.agent);
      assert.notEqual(a.agent, other.agent);
      assert.notEqual(a.agent, proxied.agent);
      // the shared TLS context trusts the extra CA, for every connection
      for (const lease of [a, b]) assert.equal((await send(`${server.origin}/`, { agent: lease.agent, timeoutMs: 5000 })).status, 200);
    } finally {
      for (const l of [a, b, other, proxied]) l.release();
      await server.close();
    }
  });

  it('the agent stays while one connector still uses it; after the last release a new lease gets a fresh one', async () => {
    const server = await localHttps((_req, res) => res.end('{}'));
    const a = shareAgent(server.origin, { caFile: server.caFile }, {});
    const b = shareAgent(server.origin, { caFile: server.caFile }, {});
    try {
      await send(`${server.origin}/`, { agent: b.agent, timeoutMs: 5000 }).then((r) => r.text());
      a.release();
      a.release(); // twice is once
      assert.equal(Object.values(b.agent.freeSockets).flat().length, 1, "b's idle connection survives a's release");
      const c = shareAgent(server.origin, { caFile: server.caFile }, {});
      assert.equal(c.agent, b.agent);
      c.release();
      b.release();
      for (let i = 0; i < 100 && Object.values(b.agent.freeSockets).flat().length; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(Object.values(b.agent.freeSockets).flat().length, 0, 'the last release closes the idle connections');
      const d = shareAgent(server.origin, { caFile: server.caFile }, {});
      assert.notEqual(d.agent, b.agent);
      d.release();
    } finally {
      await server.close();
    }
  });
});
