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
    assert.equal(event.nextAttemptInMs, 1_000, 'the first back-off is the per-key pace: a second after the attempt started');
    assert.match(event.key, /^[A-Za-z0-9_-]{43}$/, 'the key is a hash');
    assert.equal(failed.length, 1);

    // during the back-off: served, and no new refresh
    before = stack.proxy.requests;
    for (let i = 0; i < 10; i++) assert.equal(await tokenSent(client), first.accessToken);
    clock.set(clock.now() + event.nextAttemptInMs - 1);
    assert.equal(await tokenSent(client), first.accessToken);
    assert.equal(stack.proxy.requests, before);
    assert.equal(client.stats().backgroundRefreshes, 1);

    // the back-off grows (jitter under a doubling ceiling), but never past a quarter of the time left, nor under the
    // per-key pace of one attempt a second
    const ceilings = [2_000, 4_000, 8_000];
    for (const [i, ceiling] of ceilings.entries()) {
      clock.set(clock.now() + event.nextAttemptInMs);
      failure = nextFailure();
      assert.equal(await tokenSent(client), first.accessToken);
      event = await failure;
      assert.equal(event.attempt, i + 2);
      const bound = Math.min(ceiling, (expiryMs - clock.now()) / 4);
      const [low, high] = [Math.max(bound / 2, 1_000), Math.max(bound, 1_000)];
      assert.ok(event.nextAttemptInMs >= low && event.nextAttemptInMs <= high, `back-off ${i + 2}: ${event.nextAttemptInMs} ms within [${low}, ${high}]`);
    }
    assert.equal(client.stats().backgroundRefreshes, 4);
    assert.equal(client.stats().failures, 4);
    assert.equal(client.stats().waits, 1, 'only the very first call waited');

    // near the expiry the pace tightens to the per-key pace: with 2 s left, the next attempt is a second later
    clock.set(expiryMs - 2_000);
    failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    assert.equal((await failure).nextAttemptInMs, 1_000);

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

test('issue 18: background failures while a usable token is served do not open the circuit; once it expires, a caller with nothing being tried makes the trial', async () => {
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
    assert.ok(event.error instanceof NetworkError, 'the background failure is reported as it is');
    assert.equal(opened.length, 0, 'a background failure does not open the circuit (threshold 1)');
    assert.equal(client.stats().circuitOpen, false);

    // the token is served, and the paced background refresh keeps probing the endpoint
    let before = stack.proxy.requests;
    clock.set(clock.now() + event.nextAttemptInMs);
    failure = nextFailure();
    assert.equal(await tokenSent(client), first.accessToken);
    event = await failure;
    assert.ok(event.error instanceof NetworkError);
    assert.equal(stack.proxy.requests, before + 1, 'a background probe reached the endpoint');
    assert.equal(client.stats().circuitOpen, false);
    clock.set(expiryMs - 1);
    assert.equal(await tokenSent(client), first.accessToken);

    // expired: the caller's fetch fails and opens the circuit
    clock.set(expiryMs);
    const opening = await client.get('/things').catch((e: unknown) => e);
    assert.ok(opening instanceof CircuitOpenError);
    assert.equal(opened.length, 1);
    // the next caller finds nothing being tried: its fetch is the trial (it waits for the probe interval, then goes
    // out), rather than an ERR_CIRCUIT_OPEN with no request behind it
    before = stack.proxy.requests;
    const trial = client.get('/things').catch((e: unknown) => e);
    // while that trial is out, a caller of another key fails fast
    const other = await client.clientCredentialsAuthManager.getToken({ audience: 'https://other.example' }).catch((e: unknown) => e);
    assert.ok(other instanceof CircuitOpenError);
    assert.equal(other.code, ErrorCode.CircuitOpen);
    stack.proxy.setDown(false);
    assert.equal(((await trial) as { statusCode?: number }).statusCode, 200, 'the trial went out and the endpoint was back');
    assert.equal(stack.proxy.requests, before + 1);
    assert.equal(client.stats().circuitOpen, false);
  } finally {
    stack.proxy.setDown(false);
    await client.close();
  }
});
