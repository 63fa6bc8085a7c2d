// The token lifecycle: fresh → stale (served + one background refresh) → expired (callers wait on one fetch),
// driven by an injected clock against a real oidc-provider and a real protected API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, ErrorCode, TimeoutError, TokenExpiredError, type ClientConfiguration, type ClientEvents, type OAuthToken } from '../src/index.js';
import { SVC_CREDENTIALS, directToken, manualClock, nextEvent, startStack, tokenRequestCounter, waitUntil, type Stack } from './helpers/fixtures.js';

let stack: Stack;

before(async () => {
  stack = await startStack({ ttl: 60 });
});
after(() => stack.close());

function makeClient(clock: { now(): number }, extra: Partial<ClientConfiguration> = {}, tokenUrl = stack.op.tokenUrl): Client {
  return new Client({ baseUrl: stack.api.url, tokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...extra });
}

/** The bearer tokens the API received from `from` on. */
function tokensSeen(from: number): string[] {
  return stack.api.requests.slice(from).map((r) => String(r.headers.authorization).replace(/^Bearer /, ''));
}

async function getAll(client: Client, n: number): Promise<void> {
  const responses = await Promise.all(Array.from({ length: n }, () => client.get('/things')));
  for (const r of responses) assert.equal(r.statusCode, 200);
}

test('three states on an injected clock: exact token requests in cold, fresh, stale and expired', async () => {
  const clock = manualClock();
  const client = makeClient(clock);
  try {
    const tokenRequests = tokenRequestCounter(stack.op);
    const t0 = clock.now();

    // cold: five concurrent callers wait on one fetch
    let seen = stack.api.requests.length;
    await getAll(client, 5);
    assert.equal(tokenRequests(), 1);
    assert.deepEqual(client.stats().waits, 5);
    const first = await client.clientCredentialsAuthManager.getToken();
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([first.accessToken]));
    assert.equal(first.expiresIn, 60);
    const expiryMs = first.expiry! * 1000;
    const issuedMs = expiryMs - 60_000;
    assert.ok(issuedMs <= t0 && t0 < issuedMs + 1000, 'expiry is anchored at the moment the request was sent');

    // fresh: up to half the lifetime, served from memory
    clock.set(issuedMs + 30_000 - 1);
    await getAll(client, 5);
    assert.equal(tokenRequests(), 1);
    assert.equal(client.stats().backgroundRefreshes, 0);

    // stale: the old token is served, and exactly one background refresh starts however many callers come
    clock.set(issuedMs + 30_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    seen = stack.api.requests.length;
    await getAll(client, 5);
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([first.accessToken]));
    assert.equal(client.stats().backgroundRefreshes, 1);
    assert.equal((await refreshed).source, 'endpoint');
    assert.equal(tokenRequests(), 2);
    assert.equal(client.stats().waits, 5, 'nobody waited in the stale window');
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);
    seen = stack.api.requests.length;
    await getAll(client, 5);
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([second.accessToken]));
    assert.equal(tokenRequests(), 2);

    // expired: the new token's expiry is reached, so callers wait on one shared fetch
    clock.set(second.expiry! * 1000);
    seen = stack.api.requests.length;
    await getAll(client, 5);
    assert.equal(tokenRequests(), 3);
    assert.equal(client.stats().waits, 10);
    const third = await client.clientCredentialsAuthManager.getToken();
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([third.accessToken]));
    assert.notEqual(third.accessToken, second.accessToken);

    const stats = client.stats();
    assert.equal(stats.tokenRequests, 3);
    assert.equal(stats.tokensObtained, 3);
    assert.equal(stats.backgroundRefreshes, 1);
    assert.equal(stats.failures, 0);
  } finally {
    await client.close();
  }
});

test('clockSkew: a token expires at expiry − clockSkew; a skew longer than the token is clamped to half its lifetime', async () => {
  const clock = manualClock();
  const client = makeClient(clock, { clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, clockSkew: 20 } });
  const huge = makeClient(clock, { clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, oAuthClockSkew: 3600 } });
  try {
    const token = await client.clientCredentialsAuthManager.getToken();
    const expiryMs = token.expiry! * 1000;
    const issuedMs = expiryMs - 60_000;
    // usable lifetime 40 s: stale after 20 s (its middle), expired at 40 s
    clock.set(issuedMs + 20_000 - 1);
    assert.equal(client.clientCredentialsAuthManager.isExpired(token), false);
    await client.get('/things');
    assert.equal(client.stats().backgroundRefreshes, 0);
    clock.set(expiryMs - 20_000 - 1);
    assert.equal(client.clientCredentialsAuthManager.isExpired(token), false);
    clock.set(expiryMs - 20_000);
    assert.equal(client.clientCredentialsAuthManager.isExpired(token), true);

    // a 3600 s skew on a 60 s token: clamped to 30 s, so the token is still used (never "fetch then expired")
    clock.set(Date.now());
    const before = huge.stats().tokenRequests;
    const res = await huge.get('/things');
    assert.equal(res.statusCode, 200);
    await huge.get('/things');
    assert.equal(huge.stats().tokenRequests - before, 1);
    const t = await huge.clientCredentialsAuthManager.getToken();
    clock.set(t.expiry! * 1000 - 30_000 - 1);
    assert.equal(huge.clientCredentialsAuthManager.isExpired(t), false);
    clock.set(t.expiry! * 1000 - 30_000);
    assert.equal(huge.clientCredentialsAuthManager.isExpired(t), true);
  } finally {
    await client.close();
    await huge.close();
  }
});

test('stale-while-revalidate: callers in the stale window never wait, and only one background refresh runs', async () => {
  const clock = manualClock();
  const client = makeClient(clock, {}, stack.proxiedTokenUrl);
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000 - 15_000); // stale
    stack.proxy.inject({ kind: 'delay', ms: 800 }); // the background refresh is slow
    let refreshedAt = 0;
    const refreshed = nextEvent(client, 'tokenRefreshed').then(() => (refreshedAt = Date.now()));
    const waitsBefore = client.stats().waits;
    const forwardedBefore = stack.proxy.forwarded;

    const seen = stack.api.requests.length;
    const settled: number[] = [];
    await Promise.all(Array.from({ length: 50 }, () => client.get('/things').then(() => settled.push(Date.now()))));
    assert.equal(refreshedAt, 0, 'every caller was answered before the refresh finished');
    assert.equal(settled.length, 50);
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([first.accessToken]));
    assert.equal(client.stats().backgroundRefreshes, 1);
    assert.equal(client.stats().waits, waitsBefore);

    await refreshed;
    assert.equal(stack.proxy.forwarded - forwardedBefore, 1, 'exactly one token request for the whole stale window');
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);
    const after = stack.api.requests.length;
    await client.get('/things');
    assert.deepEqual(tokensSeen(after), [second.accessToken]);
  } finally {
    await client.close();
  }
});

test('refresh_in from the token response sets when the token turns stale', async () => {
  // A real token from oidc-provider, handed back through the proxy with a refresh_in of 10 s.
  const wire = await directToken(stack.op.tokenUrl, 'svc', 'svc-secret', 'api:read');
  stack.proxy.inject({ kind: 'json', status: 200, body: { access_token: wire.access_token, token_type: 'Bearer', expires_in: 60, refresh_in: '10' } });

  const clock = manualClock();
  const client = makeClient(clock, {}, stack.proxiedTokenUrl);
  try {
    assert.equal((await client.get('/things')).statusCode, 200);
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.accessToken, wire.access_token);
    assert.equal(token.refreshIn, 10);
    const issuedMs = token.expiry! * 1000 - 60_000;

    clock.set(issuedMs + 10_000 - 1);
    await client.get('/things');
    assert.equal(client.stats().backgroundRefreshes, 0, 'still fresh just before refresh_in');
    assert.equal(client.stats().tokenRequests, 1);

    clock.set(issuedMs + 10_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    await client.get('/things');
    assert.equal(client.stats().backgroundRefreshes, 1, 'stale at refresh_in, not at 75 % of the lifetime');
    await refreshed;
    assert.equal(client.stats().tokenRequests, 2);
    const next = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(next.accessToken, wire.access_token);
    assert.equal(next.refreshIn, undefined);
  } finally {
    await client.close();
  }
});

test('refreshAhead sets the stale point; one longer than the token is clamped so tokens are not refreshed in a loop', async () => {
  const clock = manualClock();
  const client = makeClient(clock, { refreshAhead: 20 });
  const long = makeClient(clock, { refreshAhead: 300 });
  try {
    const token = await client.clientCredentialsAuthManager.getToken();
    clock.set(token.expiry! * 1000 - 20_000 - 1);
    await client.get('/things');
    assert.equal(client.stats().backgroundRefreshes, 0);
    clock.set(token.expiry! * 1000 - 20_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    await client.get('/things');
    assert.equal(client.stats().backgroundRefreshes, 1);
    await refreshed;

    // refreshAhead 300 s on a 60 s token: clamped to half the lifetime (30 s), never stale at birth
    clock.set(Math.ceil(Date.now() / 1000) * 1000); // a whole second, so that `expiry` (whole seconds) is exact
    const t = await long.clientCredentialsAuthManager.getToken();
    const issuedMs = t.expiry! * 1000 - 60_000;
    clock.set(issuedMs + 30_000 - 1);
    for (let i = 0; i < 5; i++) await long.get('/things');
    assert.equal(long.stats().backgroundRefreshes, 0);
    assert.equal(long.stats().tokenRequests, 1);
    clock.set(issuedMs + 30_000);
    const longRefreshed = nextEvent(long, 'tokenRefreshed');
    await long.get('/things');
    await longRefreshed;
    for (let i = 0; i < 5; i++) await long.get('/things');
    assert.equal(long.stats().backgroundRefreshes, 1, 'the refreshed token is fresh again');
    assert.equal(long.stats().tokenRequests, 2);
  } finally {
    await client.close();
    await long.close();
  }
});

test('oAuthTokenProvider is what refreshes: called once cold, once in the stale window, once when expired', async () => {
  const clock = manualClock();
  const calls: (string | undefined)[] = [];
  const updates: OAuthToken[] = [];
  const client = makeClient(clock, {
    clientCredentialsAuthCredentials: {
      ...SVC_CREDENTIALS,
      oAuthTokenProvider: async (last, authManager) => {
        calls.push(last?.accessToken);
        return authManager.fetchToken();
      },
      oAuthOnTokenUpdate: (token) => updates.push(token),
    },
  });
  try {
    const tokenRequests = tokenRequestCounter(stack.op);
    await getAll(client, 5);
    assert.deepEqual(calls, [undefined]);
    const first = await client.clientCredentialsAuthManager.getToken();
    const issuedMs = first.expiry! * 1000 - 60_000;

    clock.set(issuedMs + 30_000 - 1);
    await getAll(client, 5);
    assert.equal(calls.length, 1, 'fresh: the provider is not called');

    clock.set(issuedMs + 30_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    await getAll(client, 5);
    assert.equal((await refreshed).source, 'provider');
    assert.deepEqual(calls, [undefined, first.accessToken], 'stale: one background call, given the current token');
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);

    clock.set(second.expiry! * 1000);
    await getAll(client, 5);
    assert.deepEqual(calls, [undefined, first.accessToken, second.accessToken], 'expired: one call that callers wait on');
    assert.equal(tokenRequests(), 3);
    assert.equal(updates.length, 3);
    assert.equal(updates[0]!.accessToken, first.accessToken);
    assert.equal(updates[1]!.accessToken, second.accessToken);
    assert.equal(client.stats().waits, 10);
  } finally {
    await client.close();
  }
});

test('a provider that returns the same token in the stale window is asked again after a back-off, not on every call', async () => {
  const clock = manualClock();
  let calls = 0;
  let held: OAuthToken | undefined;
  const failures: ClientEvents['refreshFailed'][] = [];
  const client = makeClient(clock, {
    clientCredentialsAuthCredentials: {
      ...SVC_CREDENTIALS,
      // Seed style: reuse the last token until it is expired.
      oAuthTokenProvider: async (last, authManager) => {
        calls++;
        if (last && !authManager.isExpired(last)) return last;
        return (held = await authManager.fetchToken());
      },
    },
  });
  client.on('refreshFailed', (e) => failures.push(e));
  try {
    await client.get('/things');
    assert.equal(calls, 1);
    clock.set(held!.expiry! * 1000 - 15_000); // stale
    await client.get('/things');
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 2);
    clock.advance(499); // the first back-off is between 0.5 s and 1 s
    for (let i = 0; i < 10; i++) await client.get('/things');
    assert.equal(calls, 2, 'no call on every request while backing off');
    clock.advance(502); // past the first back-off, still before expiry
    await client.get('/things');
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 3);
    assert.equal(failures.length, 0, 'returning the same token is not a failure');
    assert.equal(client.stats().tokenRequests, 1);
  } finally {
    await client.close();
  }
});

test('a caller arriving after every waiter gave up joins the shared fetch, which runs on to tokenRequestTimeout and a retry', async () => {
  const client = makeClient({ now: () => Date.now() }, { tokenRequestTimeout: 1_000 }, stack.proxiedTokenUrl);
  try {
    stack.proxy.inject({ kind: 'hang' });
    const aborted = await client.get('/things', { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    assert.equal((aborted as Error).name, 'AbortError');
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    assert.equal(client.stats().tokenRequests, 2, 'the hung attempt (timed out at 1 s) and its retry');
    assert.equal(client.stats().tokensObtained, 1);
  } finally {
    await client.close();
  }
});

test('regression: a background refresh whose provider returns an expired token keeps the stale token in use (stale-if-error)', async () => {
  const clock = manualClock();
  let calls = 0;
  const client = makeClient(clock, {
    clientCredentialsAuthCredentials: {
      ...SVC_CREDENTIALS,
      // The background call hands back an old token from the application's storage, long expired.
      oAuthTokenProvider: async (_last, authManager) =>
        ++calls === 2 ? { accessToken: 'an-old-expired-token', tokenType: 'Bearer', expiry: Math.floor(clock.now() / 1000) - 60 } : authManager.fetchToken(),
    },
  });
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000 - 10_000); // stale
    const outcome = Promise.race([nextEvent(client, 'refreshFailed'), nextEvent(client, 'tokenRefreshed')]);
    await client.get('/things');
    const event = await outcome;
    assert.ok('error' in event, 'the expired token was not installed as a refresh');
    assert.ok(event.error instanceof TokenExpiredError, String(event.error));
    assert.equal(event.error.code, ErrorCode.TokenExpired);

    const seen = stack.api.requests.length;
    await getAll(client, 5);
    assert.deepEqual(new Set(tokensSeen(seen)), new Set([first.accessToken]), 'the stale token is still served');
    assert.equal(client.stats().waits, 1, 'nobody waited after the cold start');
    assert.equal(calls, 2);
  } finally {
    await client.close();
  }
});

test('issue 18: a background provider call that never settles does not hold the callers of the expired token: a fetch of their own goes out beside it', async () => {
  const clock = manualClock();
  let calls = 0;
  const client = makeClient(clock, {
    clientCredentialsAuthCredentials: {
      ...SVC_CREDENTIALS,
      // The background call (the second) hangs for ever, as a provider awaiting a dead connection may.
      oAuthTokenProvider: (_last, authManager) => (++calls === 2 ? new Promise<never>(() => {}) : authManager.fetchToken()),
    },
  });
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000 - 10_000); // stale: the hanging background refresh starts
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(calls, 2);

    // expired: the hanging refresh is older than the hedge delay, so the caller's own fetch goes out at once (the old
    // code joined the hanging call until tokenRequestTimeout, 30 s, and the caller timed out)
    clock.set(first.expiry! * 1000);
    const res = await client.get('/things', { timeout: 3_000 });
    assert.equal(res.statusCode, 200);
    assert.equal(calls, 3);
    assert.notEqual(client.clientCredentialsAuthManager.getToken, undefined);
  } finally {
    await client.close();
  }
});
