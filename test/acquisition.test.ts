// One acquisition path (issue 9): each defect found from outside, reproduced against real servers, now fixed.
// Refused tokens never come back (from any source), the provider's manager is bound to the caller's selection,
// callers giving up do not cancel a shared fetch, close() is final, a 401 joins a running refresh, the cache bound
// comes back after a burst, a route that always answers 401 is not a token-request loop, and a token that lives
// under a second is refused rather than fetched per call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, Client, ErrorCode, MemoryTokenStore, TimeoutError, type ClientConfiguration, type OAuthToken } from '../src/index.js';
import { parseRetryAfter } from '../src/auth/resilience.js';
import { startFaultProxy, type FaultProxyHandle } from './helpers/faultProxy.js';
import { SVC_CREDENTIALS, directToken, manualClock, nextEvent, startStack, tokenRequestCounter, waitUntil, type Stack } from './helpers/fixtures.js';

let stack: Stack;
/** A fault proxy in front of the API. */
let apiProxy: FaultProxyHandle;
const clients: Client[] = [];

before(async () => {
  stack = await startStack({ ttl: 60 });
  apiProxy = await startFaultProxy(stack.api.url);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await apiProxy.close();
  await stack.close();
});

function makeClient(extra: Partial<ClientConfiguration> = {}, credentials: Record<string, unknown> = {}): Client {
  stack.proxy.clear();
  apiProxy.clear();
  const client = new Client({ baseUrl: stack.api.url, tokenUrl: stack.proxiedTokenUrl, ...extra, clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, ...credentials } });
  clients.push(client);
  return client;
}

describe('refused tokens never come back', () => {
  test("revocation through the provider (the README pattern): the saved token is refused, the endpoint gives a new one, and oAuthOnTokenUpdate replaces the saved copy", async () => {
    let saved: OAuthToken | undefined;
    let providerCalls = 0;
    const client = makeClient({}, {
      oAuthTokenProvider: async (_last: OAuthToken | undefined, authManager: { fetchToken(): Promise<OAuthToken>; isExpired(t: OAuthToken): boolean }) => {
        providerCalls++;
        return saved && !authManager.isExpired(saved) ? saved : authManager.fetchToken();
      },
      oAuthOnTokenUpdate: (token: OAuthToken) => {
        saved = token;
      },
    });
    assert.equal((await client.get('/things')).statusCode, 200);
    const first = saved!;
    stack.api.revoke(first.accessToken);
    const count = tokenRequestCounter(stack.op);
    assert.equal((await client.get('/things')).statusCode, 200, 'recovered from the revocation');
    assert.equal(count(), 1, 'the endpoint was asked once, since the provider offered only the refused token');
    assert.notEqual(saved!.accessToken, first.accessToken, 'oAuthOnTokenUpdate replaced the saved copy');
    for (let i = 0; i < 5; i++) assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(count(), 1);
    assert.ok(providerCalls >= 2);
  });

  test('a 401 while a background refresh runs joins that refresh: one token request, not two', async () => {
    const clock = manualClock();
    const client = makeClient({ clock });
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000 - 5_000); // stale under any default
    stack.api.revoke(first.accessToken);
    stack.proxy.inject({ kind: 'delay', ms: 50 }); // the background refresh is slowish (under the shortest hedge delay)
    const proxied = stack.proxy.requests;
    const response = await client.get('/things'); // served the stale token (starts the refresh), 401, joins the refresh
    assert.equal(response.statusCode, 200);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(stack.proxy.requests - proxied, 1, 'one token request');
  });

  test('a route that always answers 401 does not cost a token request per call (the 401 reaches the caller)', async () => {
    const client = makeClient({ baseUrl: apiProxy.url });
    await client.clientCredentialsAuthManager.getToken();
    const count = tokenRequestCounter(stack.op);
    apiProxy.inject({ kind: 'json', status: 401, body: { error: 'invalid_token' } }, 40);
    for (let i = 0; i < 20; i++) {
      const error = await client.get('/things').then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof ApiError && error.statusCode === 401);
    }
    assert.ok(count() <= 1, `${count()} token requests for 20 refused calls`);
  });
});

describe('refusals near expiry', () => {
  test('a stale token refused soon after another refusal is replaced, not throttled (an API whose clock runs ahead)', async () => {
    let wall = Math.floor(Date.now() / 1000) * 1000;
    let mono = 0;
    const client = makeClient({ clock: { now: () => wall, monotonic: () => mono } });
    const t1 = await client.clientCredentialsAuthManager.getToken();
    stack.api.revoke(t1.accessToken);
    assert.equal((await client.get('/things')).statusCode, 200);
    const t2 = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(t2.accessToken, t1.accessToken);
    mono += 1_000; // a second later on the monotonic clock...
    wall = t2.expiry! * 1000 - 2_000; // ...and t2 is in its last seconds on the wall clock
    stack.api.revoke(t2.accessToken); // the API already treats it as expired
    stack.proxy.inject({ kind: 'delay', ms: 200 }); // the background refresh it starts is still running at the 401
    assert.equal((await client.get('/things')).statusCode, 200, 'replaced and retried');
    assert.notEqual((await client.clientCredentialsAuthManager.getToken()).accessToken, t2.accessToken);
  });
});

describe('the provider is bound to the selection', () => {
  test("a request with its own audience gets that audience's token: the provider's authManager fetches for it, and lastOAuthToken is that selection's", async () => {
    const lasts: (string | undefined)[] = [];
    const client = makeClient({}, {
      oAuthTokenProvider: (last: OAuthToken | undefined, authManager: { fetchToken(): Promise<OAuthToken> }) => {
        lasts.push(last?.accessToken);
        return authManager.fetchToken();
      },
    });
    const count = tokenRequestCounter(stack.op);
    const defaultToken = await client.clientCredentialsAuthManager.getToken();
    const payments = await client.clientCredentialsAuthManager.getToken({ audience: 'https://payments' });
    assert.notEqual(payments.accessToken, defaultToken.accessToken);
    assert.equal(count(), 2);
    const bodies = stack.op.tokenRequests.slice(-2).map((r) => new URLSearchParams(r.body));
    assert.equal(bodies[0]!.get('audience'), null);
    assert.equal(bodies[1]!.get('audience'), 'https://payments', 'the provider fetched for the selection it was asked for');
    await client.clientCredentialsAuthManager.updateToken(undefined, { audience: 'https://payments' });
    assert.equal(lasts.at(-1), undefined, 'a dropped token is not handed back as lastOAuthToken');
  });
});

describe('shared fetches and close()', () => {
  test('no token ever (regression): a 1.5 s token endpoint and 1 s request timeouts; the shared fetch finishes and later callers get its token', async () => {
    const client = makeClient({ retry: false });
    const count = tokenRequestCounter(stack.op);
    stack.proxy.inject({ kind: 'delay', ms: 1_500 });
    const error = await client.get('/things', { timeout: 1_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof TimeoutError);
    await waitUntil(() => client.stats().tokensObtained === 1, 5_000);
    assert.equal((await client.get('/things', { timeout: 1_000 })).statusCode, 200);
    assert.equal(count(), 1);
  });

  test('a caller that joins a background refresh after the token expired gets a fetch with retries when that one attempt fails', async () => {
    const clock = manualClock();
    const client = makeClient({ clock, tokenRequestTimeout: 400, retry: { maxAttempts: 3, baseDelay: 1, maxDelay: 2 } });
    const first = await client.clientCredentialsAuthManager.getToken();
    stack.proxy.inject({ kind: 'hang' }); // the background attempt hangs until its 400 ms timeout
    clock.set(first.expiry! * 1000 - 5_000); // stale: the background refresh starts
    await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000); // expired while the refresh still hangs: the next caller joins it
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(token.accessToken, first.accessToken, 'the joined refresh failed; a fetch with retries got the token');
  });

  test('after close(), a background refresh from a provider installs nothing and fires no callback', async () => {
    const clock = manualClock();
    let release: (t: OAuthToken) => void = () => {};
    let calls = 0;
    const updates: string[] = [];
    const wire = await directToken(stack.op.tokenUrl);
    const client = makeClient({ clock }, {
      oAuthTokenProvider: () => {
        calls++;
        if (calls === 1) return { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: 60 };
        return new Promise<OAuthToken>((resolve) => (release = resolve));
      },
      oAuthOnTokenUpdate: (t: OAuthToken) => updates.push(t.accessToken),
    });
    const events: string[] = [];
    client.on('tokenRefreshed', () => events.push('refreshed'));
    await client.clientCredentialsAuthManager.getToken();
    clock.advance(40_000); // stale: the background refresh calls the provider, which hangs
    await client.clientCredentialsAuthManager.getToken();
    await waitUntil(() => calls === 2);
    await client.close();
    release({ accessToken: 'late-token', tokenType: 'Bearer', expiresIn: 60 });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(updates, [wire.access_token]);
    assert.deepEqual(events, []);
  });

  test('after close(), a detached fetch stops retrying', async () => {
    const client = makeClient({ retry: { maxAttempts: 10, baseDelay: 100, maxDelay: 100 }, circuitBreaker: false });
    stack.proxy.inject({ kind: 'status', status: 503 }, 100);
    const pending = client.clientCredentialsAuthManager.getToken().catch((e: unknown) => e);
    await waitUntil(() => stack.proxy.requests >= 2);
    client.clientCredentialsAuthManager.updateToken({ accessToken: 'manual', tokenType: 'Bearer', expiresIn: 60 }); // detaches the fetch
    await client.close();
    const after = stack.proxy.requests;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(stack.proxy.requests, after, 'no retry after close()');
    assert.equal((await pending as { code?: string }).code, ErrorCode.Aborted);
  });
});

describe('bounds', () => {
  test('maxCachedTokens holds again once a burst of distinct keys has settled', async () => {
    const client = makeClient({ maxCachedTokens: 3 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.clientCredentialsAuthManager.getToken({ audience: `https://api-${i}` })));
    assert.ok(client.stats().cachedTokens <= 3, `${client.stats().cachedTokens} cached`);
  });

  test('a token that lives under a second (expires_in 0.001) is refused with ERR_TOKEN_LIFETIME, and calls for 3 s cost about one token request a second once the circuit opened', async () => {
    const client = makeClient({ retry: false });
    const wire = await directToken(stack.op.tokenUrl);
    stack.proxy.inject({ kind: 'json', status: 200, body: { access_token: wire.access_token, token_type: 'Bearer', expires_in: 0.001 } }, 100);
    const before = stack.proxy.requests;
    const codes = new Set<string>();
    const started = Date.now();
    while (Date.now() - started < 3_000) {
      const error = (await client.clientCredentialsAuthManager.getToken().then(() => undefined, (e: unknown) => e)) as { code?: string } | undefined;
      assert.ok(error);
      codes.add(error.code!);
    }
    assert.ok(codes.has(ErrorCode.TokenLifetime));
    // 5 failures open the circuit; then each trial waits for its probe interval (0.25, 0.5, 1, 1 s…)
    assert.ok(stack.proxy.requests - before <= 10, `${stack.proxy.requests - before} token requests`);
    assert.equal(client.clientCredentialsAuthManager.getToken !== undefined, true);
  });
});

describe('clock skew and clamps reach every source', () => {
  test('isExpired({ expiry: now + 30 }) with clockSkew 60 is true; a preset token with only expiry is not used inside the skew', async () => {
    const clock = manualClock();
    const client = makeClient({ clock }, { clockSkew: 60, oAuthToken: { accessToken: 'preset', tokenType: 'Bearer', expiry: clock.now() / 1000 + 30 } });
    assert.equal(client.clientCredentialsAuthManager.isExpired({ accessToken: 'x', tokenType: 'Bearer', expiry: clock.now() / 1000 + 30 }), true);
    assert.equal(client.clientCredentialsAuthManager.isExpired({ accessToken: 'x', tokenType: 'Bearer', expiry: clock.now() / 1000 + 90 }), false);
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(token.accessToken, 'preset', 'the preset token was inside the skew: a new one was fetched');
  });

  test('a token shared through a store keeps its milliseconds: another process does not see it stale early and fetch again', async () => {
    const clock = manualClock(Math.floor(Date.now() / 1000) * 1000 + 999); // the rounded expiry would be 999 ms early
    const tokenStore = new MemoryTokenStore();
    const a = makeClient({ clock, tokenStore });
    const b = makeClient({ clock, tokenStore });
    const token = await a.clientCredentialsAuthManager.getToken();
    assert.equal((await b.clientCredentialsAuthManager.getToken()).accessToken, token.accessToken, 'from the store');
    clock.advance(30_000 - 1); // 1 ms before the middle of the 60 s lifetime
    await b.clientCredentialsAuthManager.getToken();
    assert.equal(b.stats().backgroundRefreshes, 0, 'still fresh: no second fetch for the fleet');
    assert.equal(b.stats().tokenRequests, 0);
  });

  test('a background refresh is postponed, not fetched by every process, while the store cannot take a lease; an expired token is fetched at once', async () => {
    const clock = manualClock();
    const memory = new MemoryTokenStore();
    // A store whose lease service is down (as Redis just after a restart); reads and writes still work.
    const tokenStore = { get: memory.get.bind(memory), set: memory.set.bind(memory), delete: memory.delete.bind(memory), acquireLease: async () => { throw new Error('connection is closed'); } };
    const client = makeClient({ clock, tokenStore });
    const failures: unknown[] = [];
    client.on('refreshFailed', (e) => failures.push(e.error));
    const first = await client.clientCredentialsAuthManager.getToken(); // nothing cached: fetched on its own
    assert.equal(client.stats().tokenRequests, 1);
    clock.set(first.expiry! * 1000 - 10_000); // stale
    const failed = nextEvent(client, 'refreshFailed');
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    assert.equal(((await failed).error as { code?: string }).code, ErrorCode.TokenStore);
    assert.equal(client.stats().tokenRequests, 1, 'postponed: no token request while the token is served');
    clock.set(first.expiry! * 1000); // expired: callers wait, so this process fetches
    assert.notEqual((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    assert.equal(client.stats().tokenRequests, 2);
  });

  test('a provider returning expiresIn 86400 under maxTokenLifetime 3600 is not called on every request', async () => {
    const wire = await directToken(stack.op.tokenUrl);
    let calls = 0;
    const client = makeClient({ maxTokenLifetime: 3600 }, {
      oAuthTokenProvider: () => {
        calls++;
        return { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: 86_400 };
      },
    });
    for (let i = 0; i < 20; i++) assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(calls, 1);
  });

  test('an expiry in milliseconds by mistake is read as milliseconds: the token expires', async () => {
    const clock = manualClock();
    const client = makeClient({ clock }, { oAuthToken: { accessToken: 'preset', tokenType: 'Bearer', expiry: clock.now() + 60_000 } });
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, 'preset');
    clock.advance(61_000);
    assert.notEqual((await client.clientCredentialsAuthManager.getToken()).accessToken, 'preset');
  });

  test('Retry-After in all three RFC 9110 date forms is read as GMT, whatever the local time zone', () => {
    const now = Date.UTC(1994, 10, 6, 8, 49, 0);
    const tz = process.env['TZ'];
    process.env['TZ'] = 'America/New_York'; // Node applies a TZ change at once
    try {
      assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now), 37_000);
      assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', now), 37_000);
      assert.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994', now), 37_000);
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
  });
});
