// Observability: every lifecycle event fires, `stats()` counts exactly, and nothing either hands out carries the
// client secret or an access token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { CircuitOpenError, Client, type ClientEventName, type ClientEvents, type ClientStats } from '../src/index.js';
import { manualClock, nextEvent, startStack, type Stack } from './helpers/fixtures.js';

let stack: Stack;

before(async () => {
  stack = await startStack({ ttl: 60 });
});
after(() => stack.close());

const SECRET = 'svc-secret';
const EVENT_NAMES: readonly ClientEventName[] = [
  'tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'requestRetried', 'unauthorizedRetried',
  'circuitOpen', 'circuitClosed', 'tokenWait', 'callbackError', 'storeError',
];

type Recorded = { name: ClientEventName; event: unknown };

function record(client: Client): Recorded[] {
  const seen: Recorded[] = [];
  for (const name of EVENT_NAMES) client.on(name, (event: unknown) => seen.push({ name, event }));
  return seen;
}

const count = (seen: Recorded[], name: ClientEventName) => seen.filter((r) => r.name === name).length;

/** Every secret-bearing string: the secret, its Basic credential, and every access token the API has seen. */
function secrets(): string[] {
  const tokens = new Set(stack.api.requests.map((r) => String(r.headers.authorization ?? '').replace(/^Bearer /, '')).filter((t) => t.length > 20));
  for (const r of stack.op.tokenRequests) tokens.add(String(r.headers.authorization ?? '').replace(/^Basic /, ''));
  return [SECRET, Buffer.from(`svc:${SECRET}`).toString('base64'), ...tokens].filter(Boolean);
}

function assertClean(label: string, value: unknown): void {
  const texts = [JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? '', inspect(value, { depth: Infinity, showHidden: true })];
  for (const text of texts) {
    for (const s of secrets()) assert.ok(!text.includes(s), `${label} leaks ${s.slice(0, 12)}…`);
  }
}

test('every lifecycle event fires and stats() counts exactly, through a full life: cold, retry, refresh, 401, outage, circuit', async () => {
  const clock = manualClock();
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    retry: { maxAttempts: 2, baseDelay: 5, maxDelay: 10 },
    circuitBreaker: { failureThreshold: 2 },
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, oAuthScopes: 'api:read' },
  });
  const seen = record(client);
  try {
    // 1. cold: one wait, one fetch
    await client.get('/things');
    const t1 = await client.clientCredentialsAuthManager.getToken();
    assert.equal(count(seen, 'tokenWait'), 1);
    assert.equal(count(seen, 'tokenFetched'), 1);
    const fetched = seen.find((r) => r.name === 'tokenFetched')!.event as ClientEvents['tokenFetched'];
    assert.deepEqual(Object.keys(fetched).sort(), ['expiresAtMs', 'key', 'scope', 'source']);
    assert.equal(Math.floor(fetched.expiresAtMs / 1000), t1.expiry);
    assert.equal(fetched.scope, 'api:read');
    assert.equal(fetched.source, 'endpoint');

    // 2. fresh: cache hits
    for (let i = 0; i < 3; i++) await client.get('/things');

    // 3. stale: a background refresh (one attempt) gets a 500; the next one, after its back-off, succeeds
    clock.set(t1.expiry! * 1000 - 15_000);
    stack.proxy.inject({ kind: 'status', status: 500 });
    const firstFailure = nextEvent(client, 'refreshFailed');
    await client.get('/things');
    assert.ok((await firstFailure).nextAttemptInMs <= 1_000);
    clock.advance(1_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    await client.get('/things');
    await refreshed;
    const t2 = await client.clientCredentialsAuthManager.getToken();

    // 4. the API revokes the token: invalidated, refetched, retried
    stack.api.revoke(t2.accessToken);
    await client.get('/things');
    assert.equal(count(seen, 'tokenInvalidated'), 1);
    assert.equal(count(seen, 'unauthorizedRetried'), 1);
    const t3 = await client.clientCredentialsAuthManager.getToken();

    // 5. stale while the endpoint is down: two background attempts fail; a usable token is served, so they do not open
    // the circuit
    clock.set(t3.expiry! * 1000 - 15_000);
    stack.proxy.setDown(true);
    let failed = nextEvent(client, 'refreshFailed');
    await client.get('/things');
    await failed;
    clock.advance(1_000);
    failed = nextEvent(client, 'refreshFailed');
    await client.get('/things');
    const failure = await failed;
    assert.ok(!(failure.error instanceof CircuitOpenError));
    assert.equal(count(seen, 'circuitOpen'), 0);

    // 6. expired while the endpoint is down: the caller's fetch (an attempt and a retry) fails and opens the circuit;
    // the next caller, finding nothing being tried, makes the trial, which fails and re-opens it
    clock.set(t3.expiry! * 1000);
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof CircuitOpenError);
    assert.equal(count(seen, 'circuitOpen'), 1);
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof CircuitOpenError, 'the trial failed');

    // 7. the endpoint is back and the probe interval (at most 1 s) passed: a trial closes the circuit
    stack.proxy.setDown(false);
    clock.advance(1_000);
    await client.get('/things');
    assert.equal(count(seen, 'circuitClosed'), 1);

    const expected: ClientStats = {
      tokenRequests: 10, // 1 + 2 (background: 500, then success) + 1 (after 401) + 2 (background, down) + 2 (fetch and retry, down) + 1 (trial, down) + 1 (trial)
      tokensObtained: 4,
      cacheHits: 11, // 3 fresh + 2 stale + 1 before the 401 + 2 stale while down, + 3 getToken() calls
      waits: 5, // cold, after the 401, expired with the circuit open (twice), the trial
      backgroundRefreshes: 4,
      failures: 5, // the first background attempt, the two in the outage, the failed fetch, the failed trial
      retries: 1,
      invalidations: 1,
      unauthorizedRetries: 1,
      storeHits: 0,
      storeErrors: 0,
      cachedTokens: 1,
      circuitOpen: false,
    };
    assert.deepEqual(client.stats(), expected);
    assert.deepEqual(
      Object.fromEntries(EVENT_NAMES.map((n) => [n, count(seen, n)])),
      { tokenFetched: 3, tokenRefreshed: 1, refreshFailed: 3, tokenInvalidated: 1, requestRetried: 1, unauthorizedRetried: 1, circuitOpen: 2, circuitClosed: 1, tokenWait: 5, callbackError: 0, storeError: 0 },
    );

    for (const { name, event } of seen) assertClean(`event ${name}`, event);
    assertClean('stats', client.stats());
  } finally {
    stack.proxy.clear();
    await client.close();
  }
});

test('callbackError and storeError fire; a throwing listener or callback never breaks a request', async () => {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    tokenStore: {
      get: async () => { throw new Error('redis is gone'); },
      set: async () => undefined,
      delete: async () => undefined,
    },
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'svc',
      oAuthClientSecret: SECRET,
      oAuthScopes: 'api:read',
      oAuthOnTokenUpdate: () => { throw new Error('persisting failed'); },
    },
  });
  const seen = record(client);
  client.on('tokenFetched', () => { throw new Error('listener bug'); });
  try {
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    const callbacks = seen.filter((r) => r.name === 'callbackError').map((r) => (r.event as ClientEvents['callbackError']).callback).sort();
    assert.deepEqual(callbacks, ['listener of tokenFetched', 'oAuthOnTokenUpdate']);
    const storeErrors = seen.filter((r) => r.name === 'storeError').map((r) => r.event as ClientEvents['storeError']);
    assert.equal(storeErrors.length, 1);
    assert.equal(storeErrors[0]!.operation, 'get');
    assert.ok(storeErrors[0]!.error instanceof Error);
    assert.equal(client.stats().storeErrors, 1);
    for (const { name, event } of seen) assertClean(`event ${name}`, event);
  } finally {
    await client.close();
  }
});

test('on() returns an unsubscribe function', async () => {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, oAuthScopes: 'api:read' },
  });
  try {
    let calls = 0;
    const off = client.on('tokenWait', () => calls++);
    await client.get('/things');
    off();
    client.clientCredentialsAuthManager.invalidate();
    await client.get('/things');
    assert.equal(calls, 1);
    assert.equal(client.stats().waits, 2, 'stats count even with nobody listening');
  } finally {
    await client.close();
  }
});

test('errors handed out in events and to callers carry no secret, token or Basic credential', async () => {
  const clock = manualClock();
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    retry: { maxAttempts: 2, baseDelay: 1 },
    circuitBreaker: false,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, oAuthScopes: 'api:read' },
  });
  const seen = record(client);
  try {
    await client.get('/things');
    const errors: unknown[] = [];
    for (const fault of [{ kind: 'reset' }, { kind: 'malformed-json' }, { kind: 'html' }, { kind: 'status', status: 503, body: 'busy' }] as const) {
      client.clientCredentialsAuthManager.invalidate();
      stack.proxy.inject(fault, 2);
      errors.push(await client.get('/things').catch((e: unknown) => e));
      stack.proxy.clear();
    }
    errors.push(await client.get('/status/401').catch((e: unknown) => e));
    assert.equal(errors.filter((e) => e instanceof Error).length, 5);
    for (const [i, error] of errors.entries()) assertClean(`error ${i}`, error);
    for (const { name, event } of seen) assertClean(`event ${name}`, event);
  } finally {
    stack.proxy.clear();
    await client.close();
  }
});
