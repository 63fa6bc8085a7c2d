/**
 * Refused tokens (a 401 from the API) are remembered by value, bounded, for the whole Client: not per cache entry, so
 * LRU eviction does not forget them; and a token endpoint that hands the refused token back (a caching identity
 * provider or gateway does until the token expires) is not asked again on every call. Real servers: a scripted token
 * endpoint and a protected API that answers 401 to revoked tokens; the throttle runs on an injected clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, Client, type OAuthToken } from '../src/index.js';
import type { ClientCredentialsAuthManager } from '../src/auth/authManager.js';
import { startProtectedApi, type ProtectedApiHandle } from './helpers/api.js';
import { sendJson, startScripted, type ScriptedServer } from './helpers/scripted.js';

let api: ProtectedApiHandle;
before(async () => {
  api = await startProtectedApi({ verify: async () => true });
});
after(() => api.close());

/** A clock the test moves; `monotonic()` moves with `now()`. */
function testClock() {
  let t = Math.floor(Date.now() / 1000) * 1000;
  return { now: () => t, monotonic: () => t, advance: (ms: number) => void (t += ms) };
}

const CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };
const bearerSent = (from: number): string[] => api.requests.slice(from).map((r) => String(r.headers.authorization).replace(/^Bearer /, ''));

/** A caching identity provider: the same access token for every request, until `rotate()` makes it issue another. */
async function cachingIdp(lifetime: number): Promise<ScriptedServer & { token: () => string; rotate: () => void }> {
  let generation = 1;
  const token = () => `cached-${generation}-${'z'.repeat(24)}`;
  const server = await startScripted((_req, res) => sendJson(res, 200, { access_token: token(), token_type: 'Bearer', expires_in: lifetime }));
  return Object.assign(server, { token, rotate: () => void generation++ });
}

test('same-token 401: an endpoint that hands back the refused token is not asked again for 5 s, and each call sends one API request', async () => {
  const idp = await cachingIdp(3600);
  const clock = testClock();
  const client = new Client({ baseUrl: api.url, tokenUrl: `${idp.url}/token`, clock, clientCredentialsAuthCredentials: CREDENTIALS });
  try {
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(idp.requests.length, 1);
    api.revoke(idp.token());

    // 2 s of calls, one every 10 ms: the first drops the token and asks the endpoint (which hands it back); the
    // others get the 401 straight from the API with the token the endpoint insists on, and no token request.
    const from = api.requests.length;
    for (let i = 0; i < 200; i++) {
      const error = await client.get('/things').catch((e: unknown) => e);
      assert.ok(error instanceof ApiError && error.statusCode === 401, `call ${i} gets the API's 401`);
      clock.advance(10);
    }
    assert.equal(idp.requests.length, 1 + 2, 'the refusal asks the endpoint twice (once more after it handed the refused token back), then never in the 5 s');
    assert.equal(api.requests.length - from, 200 + 1, 'one API request per call (the first call retried once)');
    assert.ok(bearerSent(from).every((t) => t === idp.token()));

    // After the 5 s the endpoint is asked again (once, and once more since it hands the same token back).
    clock.advance(5_000);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof ApiError && error.statusCode === 401);
    assert.equal(idp.requests.length, 3 + 2);

    // The identity provider issues a new token (its cache expired): the next look gets it, and calls succeed.
    idp.rotate();
    clock.advance(5_000);
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(idp.requests.length, 5 + 1);
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, idp.token(), 'the new token is installed');
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(idp.requests.length, 6, 'and served from the cache');
  } finally {
    await client.close();
    await idp.close();
  }
});

test('same-token 401, concurrent callers: one refusal, two token requests, each caller one 401 (the first retried once)', async () => {
  const idp = await cachingIdp(3600);
  const clock = testClock();
  const client = new Client({ baseUrl: api.url, tokenUrl: `${idp.url}/token`, clock, clientCredentialsAuthCredentials: CREDENTIALS });
  try {
    await client.clientCredentialsAuthManager.getToken();
    api.revoke(idp.token());
    const from = api.requests.length;
    const results = await Promise.all(Array.from({ length: 20 }, () => client.get('/things').catch((e: unknown) => e)));
    assert.ok(results.every((e) => e instanceof ApiError && e.statusCode === 401));
    assert.equal(idp.requests.length, 1 + 2);
    assert.ok(api.requests.length - from <= 40, 'at most one retry per caller');
    const later = await Promise.all(Array.from({ length: 20 }, () => client.get('/things').catch((e: unknown) => e)));
    assert.ok(later.every((e) => e instanceof ApiError && e.statusCode === 401));
    assert.equal(idp.requests.length, 3, 'no token request for the calls that follow');
  } finally {
    await client.close();
    await idp.close();
  }
});

test('updateToken() after a same-token 401 asks the endpoint again at once', async () => {
  const idp = await cachingIdp(3600);
  const client = new Client({ baseUrl: api.url, tokenUrl: `${idp.url}/token`, clock: testClock(), clientCredentialsAuthCredentials: CREDENTIALS });
  try {
    await client.clientCredentialsAuthManager.getToken();
    api.revoke(idp.token());
    await client.get('/things').catch(() => undefined);
    assert.equal(idp.requests.length, 3);
    idp.rotate();
    const fresh = await client.clientCredentialsAuthManager.updateToken();
    assert.equal(fresh.accessToken, idp.token());
    assert.equal(idp.requests.length, 4);
    assert.equal((await client.get('/things')).statusCode, 200);
  } finally {
    await client.close();
    await idp.close();
  }
});

test('LRU eviction does not forget refusals: with maxCachedTokens 1 and two scope sets, a revoked token is sent once', async () => {
  // A token endpoint that issues a new token per request; the application's provider keeps its own saved copy per
  // selection (by the bound authManager) and hands it back, as a provider reading a saved copy does.
  let n = 0;
  const endpoint = await startScripted((_req, res) => sendJson(res, 200, { access_token: `tok-${++n}-${'y'.repeat(24)}`, token_type: 'Bearer', expires_in: 3600 }));
  const saved = new WeakMap<ClientCredentialsAuthManager, OAuthToken>();
  const client = new Client({
    baseUrl: api.url,
    tokenUrl: `${endpoint.url}/token`,
    clock: testClock(),
    maxCachedTokens: 1,
    clientCredentialsAuthCredentials: {
      ...CREDENTIALS,
      oAuthScopes: 'a',
      oAuthTokenProvider: async (_last, authManager) => {
        const copy = saved.get(authManager);
        if (copy) return copy;
        const token = await authManager.fetchToken();
        saved.set(authManager, token);
        return token;
      },
    },
  });
  try {
    const revoked = await client.clientCredentialsAuthManager.getToken();
    api.revoke(revoked.accessToken);
    const from = api.requests.length;
    for (let i = 0; i < 5; i++) {
      assert.equal((await client.get('/things', { scopes: 'b' })).statusCode, 200);
      assert.equal((await client.get('/things')).statusCode, 200, `call ${i} with the configured scope succeeds`);
    }
    assert.equal(client.stats().cachedTokens, 1);
    assert.equal(bearerSent(from).filter((t) => t === revoked.accessToken).length, 1, 'the revoked token reached the API once, not once per eviction');
  } finally {
    await client.close();
    await endpoint.close();
  }
});
