/**
 * The `authManager` handed to `oAuthTokenProvider`: calling its `getToken()` inside the provider (docs/lifecycle.md
 * says it may) works and never deadlocks, and `client.close()` stops a provider's `fetchToken()`, on the
 * application's own dispatcher too. Against a real scripted token endpoint and a real protected API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { AbortError, CallbackError, Client, ErrorCode, type OAuthTokenProvider } from '../src/index.js';
import { startProtectedApi, type ProtectedApiHandle } from './helpers/api.js';
import { waitUntil } from './helpers/fixtures.js';
import { startScripted, tokenScript, type ScriptedServer } from './helpers/scripted.js';

const CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };
let api: ProtectedApiHandle;
let endpoint: ScriptedServer;
before(async () => {
  api = await startProtectedApi({ verify: async () => true });
  endpoint = await startScripted(tokenScript(60));
});
after(async () => {
  await api.close();
  await endpoint.close();
});

function client(provider: OAuthTokenProvider, extra: Record<string, unknown> = {}, clock?: { now(): number }): Client {
  return new Client({
    baseUrl: api.url,
    tokenUrl: `${endpoint.url}/token`,
    tokenRequestTimeout: 10_000,
    ...(clock ? { clock } : {}),
    ...extra,
    clientCredentialsAuthCredentials: { ...CREDENTIALS, oAuthTokenProvider: provider },
  });
}

test('a provider that returns authManager.getToken(): a new token from the endpoint at once, no deadlock', async () => {
  const c = client((_last, authManager) => authManager.getToken());
  try {
    const start = performance.now();
    const before = endpoint.requests.length;
    assert.equal((await c.get('/things')).statusCode, 200);
    assert.ok(performance.now() - start < 4_000, 'no wait for the provider timeout');
    assert.equal(endpoint.requests.length - before, 1);
    assert.equal(c.stats().tokensObtained, 1);
  } finally {
    await c.close();
  }
});

test('inside the provider, getToken() with a selection gets that selection\'s token; the app\'s own getToken() still waits for the provider', async () => {
  let inside = 0;
  const c = client(async (_last, authManager) => {
    inside++;
    await sleep(50);
    return authManager.getToken();
  });
  try {
    const [mine, again] = await Promise.all([c.clientCredentialsAuthManager.getToken(), c.clientCredentialsAuthManager.getToken()]);
    assert.equal(mine.accessToken, again.accessToken, 'both callers share the one provider call');
    assert.equal(inside, 1);
    const scoped = await c.clientCredentialsAuthManager.getToken({ scopes: 'other' });
    assert.notEqual(scoped.accessToken, mine.accessToken);
    assert.equal(inside, 2);
  } finally {
    await c.close();
  }
});

test('in the stale window, getToken() inside the background provider call returns the token being served ("nothing newer")', async () => {
  let t = Math.floor(Date.now() / 1000) * 1000;
  let calls = 0;
  const c = client(
    async (last, authManager) => {
      calls++;
      return last ? authManager.getToken() : authManager.fetchToken();
    },
    {},
    { now: () => t },
  );
  try {
    const first = await c.clientCredentialsAuthManager.getToken();
    t += 31_000; // stale: the provider is called in the background
    assert.equal((await c.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    await waitUntil(() => calls === 2);
    await sleep(20);
    assert.equal((await c.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    assert.equal(c.stats().waits, 1, 'nobody waited but the cold start');
  } finally {
    await c.close();
  }
});

test('a provider-only Client (no client secret) whose provider calls getToken(): CallbackError at once, not a timeout', async () => {
  const c = new Client({
    baseUrl: api.url,
    tokenRequestTimeout: 10_000,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthTokenProvider: (_last, authManager) => authManager.getToken() },
  });
  try {
    const start = performance.now();
    const error = await c.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof CallbackError, String(error));
    assert.equal(error.code, ErrorCode.Callback);
    assert.match(error.message, /inside oAuthTokenProvider/);
    assert.ok(performance.now() - start < 4_000);
  } finally {
    await c.close();
  }
});

test('a provider that calls updateToken() without a token: CallbackError at once, not a deadlock', async () => {
  const c = client(async (_last, authManager) => authManager.updateToken());
  try {
    const start = performance.now();
    const error = await c.clientCredentialsAuthManager.getToken().catch((e: unknown) => e);
    assert.ok(error instanceof CallbackError, String(error));
    assert.ok(performance.now() - start < 4_000);
  } finally {
    await c.close();
  }
});

test('close() cancels a provider\'s fetchToken() on the application\'s own dispatcher: no token request after close()', async () => {
  // A token endpoint that never answers: each attempt of the provider's fetchToken() times out after 1 s and is
  // retried. Exactly one attempt is in flight when close() is called.
  const failing = await startScripted(() => undefined);
  const dispatcher = new Agent();
  const c = new Client({
    baseUrl: api.url,
    tokenUrl: `${failing.url}/token`,
    dispatcher,
    tokenRequestTimeout: 1_000,
    retry: { maxAttempts: 8, baseDelay: 50, maxDelay: 50 },
    circuitBreaker: false,
    clientCredentialsAuthCredentials: { ...CREDENTIALS, oAuthTokenProvider: (_last, authManager) => authManager.fetchToken() },
  });
  try {
    const waiting = c.clientCredentialsAuthManager.getToken().catch((e: unknown) => e);
    await waitUntil(() => failing.requests.length >= 1);
    await c.close();
    const atClose = failing.requests.length;
    assert.ok((await waiting) instanceof Error);
    await sleep(2_500); // the old behaviour: the attempt times out at 1 s and the next one goes out
    assert.equal(failing.requests.length, atClose, 'no token request after close()');
    // And a fetchToken() after close() rejects at once, without a request.
    const late = await c.clientCredentialsAuthManager.fetchToken().catch((e: unknown) => e);
    assert.ok(late instanceof AbortError, String(late));
    assert.equal(failing.requests.length, atClose);
  } finally {
    await c.close();
    await dispatcher.close();
    await failing.close();
  }
});
