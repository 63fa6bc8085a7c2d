/**
 * DPoP nonces under concurrency (RFC 9449 §8, §9): requests that set out together with no nonce (or the same stale
 * one) are all told `use_dpop_nonce` with the same new nonce. The first answer to arrive makes the Client remember it;
 * each of the others must still be retried once, since its proof carried the old one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Client } from '../src/index.js';
import type { OidcProviderHandle } from './helpers/oidc.js';
import { DPOP_CLIENT, startDpopWorld, type DpopApiHandle, type DpopWorld } from './helpers/dpopApi.js';
import { startScripted } from './helpers/scripted.js';

let world: DpopWorld;
let op: OidcProviderHandle;
let api: DpopApiHandle;

before(async () => {
  world = await startDpopWorld();
  ({ op, api } = world);
});
after(async () => {
  await world.close();
});

/** The `nonce` claim of a DPoP proof. */
function nonceOf(proof: string): unknown {
  return JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()).nonce;
}

test('concurrent API requests all refused for the same new nonce are each retried with it: every one succeeds', async () => {
  const client = new Client({ baseUrl: api.url, tokenUrl: op.tokenUrl, retry: false, clientCredentialsAuthCredentials: DPOP_CLIENT, dpop: true });
  try {
    // Token and API nonce known; then the API rotates its nonce, so every request below carries a stale one.
    await client.get('/things');
    api.rotateNonce();
    const tokensBefore = op.tokenRequests.length;
    const apiBefore = api.requests.length;
    const statuses = await Promise.all(Array.from({ length: 8 }, () => client.get('/things').then((r) => r.statusCode, (e: { statusCode?: number }) => e.statusCode ?? -1)));
    assert.deepEqual(statuses, Array(8).fill(200));
    // Each retried with the nonce, not recovered by dropping a good token and fetching another.
    assert.equal(op.tokenRequests.length, tokensBefore, `no token was fetched again: ${api.requests.slice(apiBefore).map((r) => r.verdict).join(', ')}`);
    assert.equal(api.requests.length - apiBefore, 16, 'one refusal and one retry each');
  } finally {
    await client.close();
  }
});

test('concurrent token requests (two scope sets) both refused for the same new nonce are each retried with it', async () => {
  const NONCE = 'nonce-1';
  let waiting: (() => void)[] = [];
  const server = await startScripted(async (req, res) => {
    if (req.url !== '/token') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    if (nonceOf(String(req.headers.dpop)) !== NONCE) {
      // Both first requests are held until the second arrives, so both carry no nonce.
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === 2) for (const go of waiting.splice(0)) go();
        setTimeout(resolve, 2_000);
      });
      res.writeHead(400, { 'content-type': 'application/json', 'dpop-nonce': NONCE }).end('{"error":"use_dpop_nonce","error_description":"nonce required"}');
      return;
    }
    const scope = new URLSearchParams(String((req as { body?: string }).body ?? '')).get('scope');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `tok-${scope ?? 'x'}`, token_type: 'DPoP', expires_in: 300 }));
  });
  const client = new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'c', oAuthClientSecret: 's' }, dpop: true });
  try {
    const outcomes = await Promise.all(['a', 'b'].map((scopes) => client.request({ path: '/api', scopes }).then(() => 'ok', (e: Error) => `${e.name}: ${e.message}`)));
    assert.deepEqual(outcomes, ['ok', 'ok']);
    waiting = [];
  } finally {
    await client.close();
    await server.close();
  }
});

test('property: every proof\'s htu is the URL the resource server received, without query and fragment (RFC 9449 §4.3, as oidc-provider compares it)', async () => {
  const seen: { target: string; host: string; proof: string }[] = [];
  const server = await startScripted((req, res) => {
    if (req.url === '/token') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'tok-htu', token_type: 'DPoP', expires_in: 300 }));
      return;
    }
    seen.push({ target: req.url ?? '', host: req.headers.host ?? '', proof: String(req.headers.dpop) });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const client = new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'c', oAuthClientSecret: 'a-long-enough-secret' }, dpop: true });
  const segment = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '.', '_', '~', '%', '%41', '%7e', ' ', 'é', '日', '!', '$', '&', "'", '(', '*', '+', ',', ';', '=', ':', '@', '[', '|', '^', '`', '{'), maxLength: 6 });
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.option(segment), fc.option(segment), fc.constantFrom('GET', 'post', 'DELETE'), async (segments, query, fragment, method) => {
        const path = `/${segments.join('/')}${query !== null ? `?${query}` : ''}${fragment !== null ? `#${fragment}` : ''}`;
        let sent: boolean;
        try {
          await client.request({ method, path, auth: true });
          sent = true;
        } catch (error) {
          // A path the Client refuses before any I/O (a typed error) sends nothing.
          assert.ok((error as { code?: string }).code?.startsWith('ERR_'), String(error));
          sent = false;
        }
        if (!sent) return;
        const { target, host, proof } = seen.at(-1)!;
        // As koa (oidc-provider) builds it: origin and request-target concatenated (a target of `//` is a path).
        const received = new URL(`http://${host}${target}`);
        received.search = '';
        received.hash = '';
        const claims = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString());
        assert.equal(claims.htu, received.href);
        assert.equal(claims.htm, method.toUpperCase());
      }),
      { numRuns: 150 },
    );
  } finally {
    await client.close();
    await server.close();
  }
});

test('a use_dpop_nonce refusal of a streamed request is let go before the retry: its connection is not held open unread', async () => {
  let nonce = 'n-1';
  const open = new Set<import('node:net').Socket>();
  const server = await startScripted((req, res) => {
    if (req.url === '/token') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'tok-stream', token_type: 'DPoP', expires_in: 300 }));
      return;
    }
    open.add(req.socket);
    req.socket.once('close', () => open.delete(req.socket));
    if (nonceOf(String(req.headers.dpop)) !== nonce) {
      // A refusal with a body larger than the socket buffers: unread, it holds the connection.
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': nonce }).end(Buffer.alloc(16 * 1024 * 1024, 0x61));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('streamed');
  });
  const client = new Client({ baseUrl: server.url, tokenUrl: `${server.url}/token`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: 'c', oAuthClientSecret: 'a-long-enough-secret' }, dpop: true });
  try {
    const response = await client.request({ path: '/stream', responseType: 'stream' });
    assert.equal(response.statusCode, 200);
    assert.equal(await new Response(response.body).text(), 'streamed');
    // The refused request's connection closes (its body discarded); only the one that answered 200 may stay.
    for (let i = 0; i < 40 && open.size > 1; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(open.size <= 1, `${open.size} connections still open`);
    nonce = 'n-2';
  } finally {
    await client.close();
    await server.close();
  }
});
