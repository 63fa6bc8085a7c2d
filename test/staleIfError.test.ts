// Stale-if-error: when the background refresh fails, the current token is served until it really expires, and the
// refresh is retried with backoff. The token endpoint fails for real: a proxy in front of oidc-provider goes down.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitOpenError, Client, ErrorCode, NetworkError, RetriesExhaustedError, type ClientConfiguration, type ClientEvents } from '../src/index.js';
import { SVC_CREDENTIALS, manualClock, nextEvent, startStack, type Stack } from './helpers/fixtures.js';

let stack: Stack;

before(async () => {
  stack = await startStack({ ttl: 60 });
});
after(() => stack.close());

function setup(extra: Partial<ClientConfiguration> = {}) {
  stack.proxy.clear();
  const clock = manualClock();
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    retry: { maxAttempts: 2, baseDelay: 5, maxDelay: 10 },
    circuitBreaker: false,
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
    ...extra,
  });
  const failed: ClientEvents['refreshFailed'][] = [];
  const waiters: ((e: ClientEvents['refreshFailed']) => void)[] = [];
  client.on('refreshFailed', (e) => {
    failed.push(e);
    waiters.shift()?.(e);
  });
  const nextFailure = () => new Promise<ClientEvents['refreshFailed']>((resolve) => waiters.push(resolve));
  return { client, clock, failed, nextFailure };
}

/** Sends a request and returns the bearer token the API received with it. */
async function tokenSent(client: Client): Promise<string> {
  const index = stack.api.requests.length;
  const res = await client.get('/things');
  assert.equal(res.statusCode, 200);
  return String(stack.api.requests[index]!.headers.authorization).replace(/^Bearer /, '');
}

test('a failing background refresh keeps the current token in use until it really expires, retried at a pace set by the time left', async () => {
  const { client, clock, failed, nextFailure } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    const expiryMs = first.expiry! * 1000;
    stack.proxy.setDown(true);

    // stale: served, and the background refresh (one attempt) fails
    clock.set(expiryMs - 15_000);
    let failure = nextFailure();
    let before = stack.proxy.requests;
    assert.equal(await tokenSent(client), first.accessToken);
    let event = await failure;
    assert.equal(stack.proxy.requests - before, 1, 'a background refresh is one attempt: the lifecycle paces the next');
    assert.equal(event.attempt, 1);
    assert.ok(event.error instanceof NetworkError);
    assert.ok(event.nextAttemptInMs >= 500 && event.nextAttemptInMs <= 1_000, `first back-off 0.5–1 s: ${event.nextAttemptInMs}`);
    assert.match(event.key, /^[A-Za-z0-9_-]{43}$/, 'the key is a hash');
    assert.equal(failed.length, 1);

    // during the back-off: served, and no new refresh
    before = stack.proxy.requests;
    for (let i = 0; i < 10; i++) assert.equal(await tokenSent(client), first.accessToken);
    clock.set(clock.now() + event.nextAttemptInMs - 1);
    assert.equal(await tokenSent(client), first.accessToken);
    assert.equal(stack.proxy.requests, before);
    assert.equal(client.stats().backgroundRefreshes, 1);

    // the back-off grows (jitter under a doubling ceiling), but never past a quarter of the time left
    const ceilings = [2_000, 4_000, 8_000];
    for (const [i, ceiling] of ceilings.entries()) {
      clock.set(clock.now() + event.nextAttemptInMs);
      failure = nextFailure();
      assert.equal(await tokenSent(client), first.accessToken);
      event = await failure;
      assert.equal(event.attempt, i + 2);
      const bound = Math.max(Math.min(ceiling, (expiryMs - clock.now()) / 4), 500);
      assert.ok(event.nextAttemptInMs >= bound / 2 && event.nextAttemptInMs <= bound, `back-off ${i + 2}: ${event.nextAttemptInMs} ms within [${bound / 2}, ${bound}]`);
    }
    assert.equal(client.stats().backgroundRefreshes, 4);
    assert.equal(client.stats().failures, 4);
    assert.equal(client.stats().waits, 1, 'only the very first call waited');

    // near the expiry the pace tightens: with 2 s left, the next attempt is within 0.5 s
    clock.set(expiryMs - 2_000);
    failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    assert.ok((await failure).nextAttemptInMs <= 500);

    // the last moment of validity: still served
    clock.set(expiryMs - 1);
    assert.equal(await tokenSent(client), first.accessToken);

    // really expired: callers wait on a fetch, which fails with the documented code
    clock.set(expiryMs);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof RetriesExhaustedError);
    assert.equal(error.code, ErrorCode.RetriesExhausted);

    // the endpoint is back: the next call fetches a new token, no restart needed
    stack.proxy.setDown(false);
    const next = await tokenSent(client);
    assert.notEqual(next, first.accessToken);
  } finally {
    stack.proxy.setDown(false);
    await client.close();
  }
});

test('when the endpoint comes back during the stale window, the next retry refreshes and the back-off resets', async () => {
  const { client, clock, failed, nextFailure } = setup();
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    clock.set(first.expiry! * 1000 - 15_000);
    stack.proxy.inject({ kind: 'status', status: 503 });
    const failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    const event = await failure;
    assert.equal((event.error as { statusCode?: number }).statusCode, 503);

    clock.set(clock.now() + event.nextAttemptInMs);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    assert.equal(await tokenSent(client), first.accessToken);
    const info = await refreshed;
    assert.equal(info.source, 'endpoint');
    const second = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(await tokenSent(client), second.accessToken);
    assert.equal(failed.length, 1);

    // the new token's stale window starts a refresh at once: the failure count was reset
    clock.set(second.expiry! * 1000 - 15_000);
    stack.proxy.inject({ kind: 'status', status: 503 });
    const again = nextFailure();
    await tokenSent(client);
    assert.equal((await again).attempt, 1);
  } finally {
    await client.close();
  }
});

test('a stale token is served while the circuit is open; background refreshes keep probing at their own pace, and callers fail fast once it expires', async () => {
  const { client, clock, nextFailure } = setup({ retry: false, circuitBreaker: { failureThreshold: 1, maxProbeInterval: 60_000 } });
  const opened: ClientEvents['circuitOpen'][] = [];
  client.on('circuitOpen', (e) => opened.push(e));
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    const expiryMs = first.expiry! * 1000;
    stack.proxy.setDown(true);
    clock.set(expiryMs - 15_000);
    let failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    let event = await failure;
    assert.ok(event.error instanceof CircuitOpenError, 'the failure opened the circuit');
    assert.equal(opened.length, 1);
    assert.equal(client.stats().circuitOpen, true);

    // the circuit is open: the token is served, and the paced background refresh still probes the endpoint
    let before = stack.proxy.requests;
    clock.set(clock.now() + event.nextAttemptInMs);
    failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    event = await failure;
    assert.ok(event.error instanceof CircuitOpenError);
    assert.ok(event.error.cause instanceof NetworkError);
    assert.equal(stack.proxy.requests, before + 1, 'a background probe reached the endpoint');
    clock.set(expiryMs - 1);
    assert.equal(await tokenSent(client), first.accessToken);

    // expired: one trial (the probe interval has passed), then callers fail fast without a token request
    clock.set(expiryMs);
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof CircuitOpenError);
    before = stack.proxy.requests;
    const started = Date.now();
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof CircuitOpenError);
    assert.equal(error.code, ErrorCode.CircuitOpen);
    assert.ok(Date.now() - started < 500, 'failed fast');
    assert.equal(stack.proxy.requests, before);
  } finally {
    stack.proxy.setDown(false);
    await client.close();
  }
});
