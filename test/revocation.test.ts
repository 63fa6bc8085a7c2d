// Revocation recovery: a 401 from the API to a cached token drops that token (only if it is still the cached one),
// fetches once, and retries the request once. A refresh that began before the drop never puts the revoked token back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, Client, ErrorCode, type ClientConfiguration, type ClientEvents, type OAuthToken } from '../src/index.js';
import { startFaultProxy, type FaultProxyHandle } from './helpers/faultProxy.js';
import { SVC_CREDENTIALS, manualClock, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';

let stack: Stack;
/** A second fault proxy, in front of the API. */
let apiProxy: FaultProxyHandle;

before(async () => {
  stack = await startStack({ ttl: 60 });
  apiProxy = await startFaultProxy(stack.api.url);
});

after(async () => {
  await apiProxy.close();
  await stack.close();
});

function setup(extra: Partial<ClientConfiguration> = {}) {
  stack.proxy.clear();
  apiProxy.clear();
  const clock = manualClock();
  const client = new Client({ baseUrl: apiProxy.url, tokenUrl: stack.proxiedTokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...extra });
  const invalidated: ClientEvents['tokenInvalidated'][] = [];
  const retried: ClientEvents['unauthorizedRetried'][] = [];
  const installed: string[] = [];
  client.on('tokenInvalidated', (e) => invalidated.push(e));
  client.on('unauthorizedRetried', (e) => retried.push(e));
  client.on('tokenFetched', () => installed.push('fetched'));
  client.on('tokenRefreshed', () => installed.push('refreshed'));
  return { client, clock, invalidated, retried, installed };
}

const bearer = (i: number): string => String(stack.api.requests[i]!.headers.authorization).replace(/^Bearer /, '');

test('a revoked token: 401 → the token is dropped, one new token is fetched, the request is retried once and succeeds', async () => {
  const { client, invalidated, retried } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    const index = stack.api.requests.length;
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    assert.equal(stack.api.requests.length - index, 2, 'one 401, one retry');
    assert.equal(bearer(index), first.accessToken);
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(bearer(index + 1), second.accessToken);
    assert.equal(invalidated.length, 1);
    assert.equal(invalidated[0]!.reason, 'unauthorized');
    assert.equal(retried.length, 1);
    const stats = client.stats();
    assert.equal(stats.tokenRequests, 2);
    assert.equal(stats.invalidations, 1);
    assert.equal(stats.unauthorizedRetries, 1);
  } finally {
    await client.close();
  }
});

test('many concurrent 401s for the same revoked token: one invalidation, one fetch, every request retried once', async () => {
  const { client, invalidated } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    const index = stack.api.requests.length;
    const responses = await Promise.all(Array.from({ length: 50 }, () => client.get('/things')));
    assert.ok(responses.every((r) => r.statusCode === 200));
    assert.equal(stack.api.requests.length - index, 100);
    assert.equal(invalidated.length, 1, 'the generation guard: only the first 401 drops the token');
    assert.equal(client.stats().tokenRequests, 2, 'single flight');
    const second = await client.clientCredentialsAuthManager.getToken();
    const sent = stack.api.requests.slice(index).map((_, i) => bearer(index + i));
    assert.equal(sent.filter((t) => t === first.accessToken).length, 50);
    assert.equal(sent.filter((t) => t === second.accessToken).length, 50);
  } finally {
    await client.close();
  }
});

test('a 401 to a token that is no longer the cached one leaves the newer token alone (generation guard)', async () => {
  const { client, invalidated } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    apiProxy.inject({ kind: 'delay', ms: 800 });
    const index = stack.api.requests.length;
    const slow = client.get('/things'); // carries the first token, held back by the proxy
    // Meanwhile the application installs a newer token.
    const second = await client.clientCredentialsAuthManager.fetchToken();
    await client.clientCredentialsAuthManager.updateToken(second);
    const res = await slow;
    assert.equal(res.statusCode, 200);
    assert.equal(bearer(index), first.accessToken);
    assert.equal(bearer(index + 1), second.accessToken, 'retried with the newer token');
    assert.equal(invalidated.length, 0, 'the newer token was not dropped');
    assert.equal(client.stats().tokenRequests, 2, 'no fetch: the cached token was already new');
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, second.accessToken);
  } finally {
    await client.close();
  }
});

test('a second 401 rejects the caller with ApiError (no loop)', async () => {
  const { client } = setup();
  try {
    await client.clientCredentialsAuthManager.getToken();
    const index = stack.api.requests.length;
    const error = await client.get('/status/401').catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 401);
    assert.equal(error.code, ErrorCode.UnexpectedStatus);
    assert.equal(stack.api.requests.length - index, 2, 'exactly one retry');
    assert.notEqual(bearer(index), bearer(index + 1));
    assert.equal(client.stats().tokenRequests, 2);
    assert.equal(client.stats().unauthorizedRetries, 1);
  } finally {
    await client.close();
  }
});

test('a background refresh in flight when the 401 arrives: the retry joins it (one token request), and its token is the one installed', async () => {
  const { client, clock, installed } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    clock.set(first.expiry! * 1000 - 15_000); // stale
    stack.proxy.inject({ kind: 'delay', ms: 120 }); // the background refresh is slowish (under the shortest hedge delay, 250 ms)
    const tokenRequests = tokenRequestCounter(stack.op);
    const index = stack.api.requests.length;

    const res = await client.get('/things'); // starts the refresh, gets 401, joins the refresh, retries
    assert.equal(res.statusCode, 200);
    assert.equal(bearer(index), first.accessToken);
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(bearer(index + 1), second.accessToken);
    assert.equal(tokenRequests(), 1, 'the retry joined the refresh instead of starting a second token request');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(tokenRequests(), 1);
    assert.deepEqual(installed, ['fetched', 'refreshed']);
    const after = stack.api.requests.length;
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(bearer(after), second.accessToken);
    assert.equal(stack.api.requests.length - after, 1);
  } finally {
    await client.close();
  }
});

test('a provider that returns the revoked token late (it read it before the 401) cannot put it back: the endpoint gives the new one', async () => {
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let revokedToken: OAuthToken | undefined;
  const { client, clock } = setup({
    clientCredentialsAuthCredentials: {
      ...SVC_CREDENTIALS,
      oAuthTokenProvider: async (last, authManager) => {
        calls++;
        if (calls === 2) {
          // the background refresh: it read the (soon revoked) token from its storage, and is slow to return it
          const stale = last!;
          await gate;
          return stale;
        }
        return authManager.fetchToken();
      },
    },
  });
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    revokedToken = first;
    stack.api.revoke(first.accessToken);
    clock.set(first.expiry! * 1000 - 15_000); // stale: the next call starts the background refresh (call 2)
    const index = stack.api.requests.length;
    setTimeout(release, 100); // the slow provider returns the revoked token after the 401
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    assert.equal(calls, 2, 'cold fetch, the slow background refresh; it offered the refused token, so the endpoint was asked');
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.equal(bearer(index + 1), second.accessToken);
    assert.notEqual(second.accessToken, revokedToken.accessToken, 'the revoked token was not put back');
    const after = stack.api.requests.length;
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(stack.api.requests.length - after, 1, 'no 401 any more');
    assert.equal(client.stats().invalidations, 1);
  } finally {
    release();
    await client.close();
  }
});

test('retryOnUnauthorized: false per client: a 401 fails at once and the token stays', async () => {
  const { client, invalidated } = setup({ retryOnUnauthorized: false });
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    const index = stack.api.requests.length;
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 401);
    assert.equal(stack.api.requests.length - index, 1);
    assert.equal(invalidated.length, 0);
    assert.equal(client.stats().tokenRequests, 1);

    // switched back on for one request
    const res = await client.get('/things', { retryOnUnauthorized: true });
    assert.equal(res.statusCode, 200);
    assert.equal(invalidated.length, 1);
  } finally {
    await client.close();
  }
});

test('retryOnUnauthorized: false per request on a client that retries by default', async () => {
  const { client, invalidated } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(first.accessToken);
    const index = stack.api.requests.length;
    const error = await client.get('/things', { retryOnUnauthorized: false }).catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 401);
    assert.equal(stack.api.requests.length - index, 1);
    assert.equal(invalidated.length, 0);
    assert.equal((await client.get('/things')).statusCode, 200, 'the default still recovers');
  } finally {
    await client.close();
  }
});
