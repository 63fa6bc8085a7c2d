/**
 * Refused tokens (a 401 from the API) are remembered by value, bounded, for the whole Client: not per cache entry, so
 * LRU eviction does not forget them; and a token endpoint that hands the refused token back (a caching identity
 * provider or gateway does until the token expires) is not asked again on every call. Real servers: a scripted token
 * endpoint and a protected API that answers 401 to revoked tokens; the throttle runs on an injected clock.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
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

let idps = 0;

/** A caching identity provider: the same access token for every request, until `rotate()` makes it issue another. */
async function cachingIdp(lifetime: number): Promise<ScriptedServer & { token: () => string; rotate: () => void }> {
  let generation = 1;
  const instance = ++idps; // the API's revocations outlive a test: every identity provider issues tokens of its own
  const token = () => `cached-${instance}-${generation}-${'z'.repeat(24)}`;
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

test('property: any mix of calls, revocations, IdP rotations and time: at most 2 API requests per call, token requests bounded, and calls recover', async () => {
  type Op = { kind: 'call' } | { kind: 'advance'; ms: number } | { kind: 'rotate' } | { kind: 'revoke' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.constant({ kind: 'call' } as const) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 4_000 }).map((ms) => ({ kind: 'advance', ms }) as const) },
    { weight: 1, arbitrary: fc.constant({ kind: 'rotate' } as const) },
    { weight: 1, arbitrary: fc.constant({ kind: 'revoke' } as const) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
      const idp = await cachingIdp(3600);
      const clock = testClock();
      const client = new Client({ baseUrl: api.url, tokenUrl: `${idp.url}/token`, clock, clientCredentialsAuthCredentials: CREDENTIALS });
      let elapsed = 0;
      let revocations = 0;
      try {
        for (const step of ops) {
          if (step.kind === 'advance') {
            clock.advance(step.ms);
            elapsed += step.ms;
          } else if (step.kind === 'rotate') idp.rotate();
          else if (step.kind === 'revoke') {
            api.revoke(idp.token());
            revocations++;
          } else {
            const from = api.requests.length;
            const result = await client.get('/things').catch((e: unknown) => e);
            assert.ok(!(result instanceof Error) || (result instanceof ApiError && result.statusCode === 401), String(result));
            assert.ok(api.requests.length - from <= 2, 'at most one retry per call');
          }
        }
        const bound = 1 + 2 * revocations + 2 * (Math.floor(elapsed / 5_000) + 1);
        assert.ok(idp.requests.length <= bound, `${idp.requests.length} token requests > ${bound}`);
        // Recovery: the identity provider issues a token the API accepts; within 5 s calls succeed again.
        idp.rotate();
        clock.advance(5_000);
        assert.equal((await client.get('/things')).statusCode, 200);
      } finally {
        await client.close();
        await idp.close();
      }
    }),
    { seed: 1_818, numRuns: 25 },
  );
});
