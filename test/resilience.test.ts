// Token endpoint resilience: the pure retry / circuit-breaker policy, then every fault through a real proxy in front
// of a real oidc-provider.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApiError,
  CircuitOpenError,
  Client,
  ErrorCode,
  MalformedTokenResponseError,
  NetworkError,
  OAuthProviderError,
  RetriesExhaustedError,
  TimeoutError,
  AbortError,
  type ClientConfiguration,
  type ClientEvents,
} from '../src/index.js';
import fc from 'fast-check';
import { ATTEMPT_INTERVAL, backgroundAttemptBound, backoffDelay, CircuitBreaker, DEFAULT_CIRCUIT_BREAKER, DEFAULT_RETRY, hedgeDelay, isRetryable, MAX_HEDGE_DELAY, MIN_HEDGE_DELAY, NEVER_RETRIED_ERRORS, nextBackgroundAttempt, parseRetryAfter } from '../src/auth/resilience.js';
import { manualClock, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';

const apiError = (statusCode: number, headers: Record<string, string> = {}) => new ApiError({ statusCode, headers, body: '' });
const providerError = (statusCode: number, error: string) => new OAuthProviderError({ statusCode, headers: {}, body: '', result: { error } });

describe('backoffDelay: full jitter over an exponential ceiling', () => {
  const options = { baseDelay: 100, maxDelay: 1_000 };

  test('the ceiling doubles per attempt from baseDelay and stops at maxDelay', () => {
    const top = () => 0.999_999;
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, options, top)), [99, 199, 399, 799, 999, 999]);
  });

  test('the delay is random × ceiling, from 0 (full jitter, not equal jitter)', () => {
    assert.equal(backoffDelay(3, options, () => 0), 0);
    assert.equal(backoffDelay(3, options, () => 0.5), 200);
    assert.equal(backoffDelay(1, options, () => 0.25), 25);
  });

  test('with Math.random every delay lies in [0, ceiling) and they spread', () => {
    const delays = Array.from({ length: 2_000 }, () => backoffDelay(4, options));
    assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d < 800));
    assert.ok(Math.min(...delays) < 100 && Math.max(...delays) > 700, 'the whole range is used');
    assert.ok(new Set(delays).size > 300);
  });

  test('the defaults are documented values', () => {
    assert.deepEqual(DEFAULT_RETRY, { maxAttempts: 4, baseDelay: 200, maxDelay: 5_000, maxElapsed: 30_000, maxRetryAfter: 60_000 });
    assert.deepEqual(DEFAULT_CIRCUIT_BREAKER, { failureThreshold: 5, maxProbeInterval: 1_000 });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2026, 10, 28, 12, 0, 0);

  test('delay-seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('5', now), 5_000);
    assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  });

  test('HTTP-date in all three RFC 9110 forms, relative to now; a past date is 0', () => {
    const in30 = new Date(now + 30_000);
    assert.equal(parseRetryAfter(in30.toUTCString(), now), 30_000);
    assert.equal(parseRetryAfter('Saturday, 28-Nov-26 12:01:00 GMT', now), 60_000);
    assert.equal(parseRetryAfter('Sat Nov 28 12:00:10 2026', Date.parse('Sat Nov 28 12:00:00 2026')), 10_000);
    assert.equal(parseRetryAfter(new Date(now - 5_000).toUTCString(), now), 0);
  });

  test('absent or invalid values are undefined (never read as a year)', () => {
    for (const value of [undefined, '', 'soon', '-1', '1.5', '2 3', '2026-11-28', 'Sat, garbage']) {
      assert.equal(parseRetryAfter(value, now), undefined, String(value));
    }
  });
});

describe('isRetryable', () => {
  test('network errors, timeouts, 408, 429 and 5xx are retried', () => {
    assert.equal(isRetryable(new NetworkError('reset')), true);
    assert.equal(isRetryable(new TimeoutError('slow', 10)), true);
    for (const status of [408, 429, 500, 502, 503, 504]) assert.equal(isRetryable(apiError(status)), true, String(status));
    assert.equal(isRetryable(providerError(503, 'temporarily_unavailable')), true);
  });

  test('RFC 6749 errors and other 4xx are never retried, whatever their status', () => {
    for (const error of ['invalid_client', 'invalid_scope', 'unauthorized_client', 'unsupported_grant_type', 'invalid_request']) {
      assert.ok(NEVER_RETRIED_ERRORS.has(error));
      assert.equal(isRetryable(providerError(400, error)), false, error);
      assert.equal(isRetryable(providerError(500, error)), false, `${error} with 500`);
    }
    for (const status of [400, 401, 403, 404]) assert.equal(isRetryable(apiError(status)), false, String(status));
  });

  test('malformed responses, aborts and foreign errors are not retried', () => {
    assert.equal(isRetryable(new MalformedTokenResponseError('bad', 200)), false);
    assert.equal(isRetryable(new AbortError()), false);
    assert.equal(isRetryable(new Error('boom')), false);
    assert.equal(isRetryable(undefined), false);
  });
});

describe('CircuitBreaker transitions', () => {
  test('closed → open after failureThreshold consecutive failures → exactly one half-open trial → closed', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, maxProbeInterval: 1_000 });
    assert.deepEqual(breaker.check(0), { allowed: true, trial: false });
    assert.equal(breaker.failure(0, 'e1'), undefined);
    assert.equal(breaker.failure(1, 'e2'), undefined);
    assert.equal(breaker.isOpen(1), false);
    assert.equal(breaker.failure(2, 'e3'), 250, 'the third failure opens it; the first trial waits 250 ms');
    assert.equal(breaker.isOpen(2), true);
    assert.deepEqual(breaker.check(100), { allowed: false, retryInMs: 152, cause: 'e3' });
    // half-open: one trial, and nobody else while it runs
    assert.deepEqual(breaker.check(252), { allowed: true, trial: true });
    assert.equal(breaker.isOpen(252), true);
    assert.deepEqual(breaker.check(253), { allowed: false, retryInMs: 0, cause: 'e3' });
    assert.equal(breaker.success(), true, 'the trial succeeded: closed, and the caller learns it was open');
    assert.equal(breaker.isOpen(253), false);
    assert.deepEqual(breaker.check(253), { allowed: true, trial: false });
    assert.equal(breaker.success(), false);
  });

  test('a success resets the count: failures must be consecutive', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2, maxProbeInterval: 1_000 });
    breaker.failure(0, 'a');
    breaker.success();
    assert.equal(breaker.failure(0, 'b'), undefined);
    assert.equal(breaker.failures, 1);
  });

  test('failed trials re-open it for a doubling interval capped at maxProbeInterval: the breaker never extends an outage by more than that', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, maxProbeInterval: 1_000 });
    let t = 0;
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const wait = breaker.failure(t, 'x')!;
      waits.push(wait);
      t += wait;
      assert.deepEqual(breaker.check(t), { allowed: true, trial: true });
    }
    assert.deepEqual(waits, [250, 500, 1_000, 1_000, 1_000, 1_000]);
  });

  test("a server's Retry-After wins over the probe interval, up to maxRetryAfter", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, maxProbeInterval: 1_000 }, 60_000);
    assert.equal(breaker.failure(0, 'x', 2_000), 2_000);
    assert.deepEqual(breaker.check(1_999), { allowed: false, retryInMs: 1, cause: 'x' });
    assert.equal(breaker.failure(0, 'x', 3_600_000), 60_000);
  });

  test('an abandoned (aborted) trial frees the half-open slot; an aborted non-trial request does not', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, maxProbeInterval: 100 });
    breaker.failure(0, 'a');
    assert.deepEqual(breaker.check(100), { allowed: true, trial: true });
    breaker.abandon(false);
    assert.equal(breaker.check(10_000).allowed, false, 'a non-trial abort must not let a second trial through');
    breaker.abandon(true);
    assert.equal(breaker.isOpen(10_000), false);
    assert.deepEqual(breaker.check(10_000), { allowed: true, trial: true });
  });

});

describe('issue 18: pacing, hedging and trial rules (pure)', () => {
  test('the next background attempt is never sooner than a second after the last one started, nor before Retry-After, nor later than a quarter of the time left (or that second)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 0, max: 60_000 }),
      fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (now, failures, left, sinceLast, retryAfter, r) => {
        const last = now - sinceLast;
        const next = nextBackgroundAttempt(now, failures, left, last, retryAfter, () => r);
        assert.ok(next >= last + ATTEMPT_INTERVAL);
        assert.ok(next >= now + (retryAfter ?? 0));
        assert.ok(next >= now);
        const ceiling = Math.min(1_000 * 2 ** (failures - 1), 30_000, left / 4);
        assert.ok(next <= Math.max(now + ceiling, last + ATTEMPT_INTERVAL, now + (retryAfter ?? 0)) + 1e-6);
      },
    ), { seed: 18, numRuns: 500 });
  });

  test('the hedge delay stays within [0.25 s, 1 s] whatever the observed latency, 1 s before any; a background attempt is bounded by the time left', () => {
    assert.equal(hedgeDelay(undefined), MAX_HEDGE_DELAY);
    fc.assert(fc.property(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 1, max: 60_000 }), (latency, left, timeout) => {
      const h = hedgeDelay(latency);
      assert.ok(h >= MIN_HEDGE_DELAY && h <= MAX_HEDGE_DELAY);
      const bound = backgroundAttemptBound(h, left, timeout);
      assert.ok(bound <= Math.max(left, 1) && bound <= timeout && bound >= 1);
    }), { seed: 18, numRuns: 500 });
  });

  test('a background attempt may run twice as long after each failure, up to a quarter of the time left (never less than the first bound, never past the expiry)', () => {
    fc.assert(fc.property(fc.integer({ min: MIN_HEDGE_DELAY, max: MAX_HEDGE_DELAY }), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 1, max: 60_000 }), fc.nat(20), (h, left, timeout, failures) => {
      const first = backgroundAttemptBound(h, left, timeout);
      const bound = backgroundAttemptBound(h, left, timeout, failures);
      assert.ok(bound >= first && bound >= backgroundAttemptBound(h, left, timeout, failures - 1));
      assert.ok(bound <= Math.max(left, 1) && bound <= timeout);
      assert.ok(bound <= Math.max(left / 4, first, 1));
    }), { seed: 25, numRuns: 500 });
    assert.equal(backgroundAttemptBound(250, 1_800_000, 30_000, 0), 1_000);
    assert.equal(backgroundAttemptBound(250, 1_800_000, 30_000, 3), 8_000);
    assert.equal(backgroundAttemptBound(250, 1_800_000, 30_000, 10), 30_000);
    assert.equal(backgroundAttemptBound(1_000, 8_000, 30_000, 3), 4_000, 'short tokens keep the first bound');
    assert.equal(backgroundAttemptBound(250, 1_800_000, Number.POSITIVE_INFINITY, 10, 5_000), 5_000, 'the growth stops at the token request timeout');
    assert.equal(backgroundAttemptBound(1_000, 1_800_000, Number.POSITIVE_INFINITY, 10, 200), 4_000, 'never below the first bound');
  });

  test('an open circuit with nothing being tried makes the caller the trial (it waits the rest of the interval); with a trial out, callers are refused', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, maxProbeInterval: 1_000 });
    assert.equal(breaker.claimTrial(0), undefined, 'closed: nothing to claim');
    assert.equal(breaker.failure(0, 'x'), 250);
    assert.equal(breaker.claimTrial(100), 150);
    assert.equal(breaker.trialInFlight, true);
    assert.equal(breaker.claimTrial(100), undefined, 'one trial at a time');
    assert.equal(breaker.check(300).allowed, false);
    breaker.failure(400, 'y');
    assert.equal(breaker.claimTrial(2_000), 0, 'past the interval: it goes at once');
  });

  test('Retry-After is a floor on the probe interval: 0 keeps the pacing (it used to remove it)', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, maxProbeInterval: 1_000 });
    assert.equal(breaker.failure(0, 'x', 0), 250);
    assert.equal(breaker.failure(0, 'x', 100), 500);
    assert.equal(breaker.failure(0, 'x', 5_000), 5_000);
  });
});

describe('through a fault proxy in front of oidc-provider', () => {
  let stack: Stack;
  const clients: Client[] = [];

  before(async () => {
    stack = await startStack();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack.close();
  });

  /** A cold client whose token endpoint is the proxy; fast retries, breaker off unless asked. */
  function makeClient(extra: Partial<ClientConfiguration> = {}, secret = 'svc-secret', scopes = 'api:read'): { client: Client; retried: ClientEvents['requestRetried'][] } {
    stack.proxy.clear();
    const client = new Client({
      baseUrl: stack.api.url,
      tokenUrl: stack.proxiedTokenUrl,
      tokenRequestTimeout: 2_000,
      retry: { maxAttempts: 4, baseDelay: 10, maxDelay: 40 },
      circuitBreaker: false,
      clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: secret, oAuthScopes: scopes },
      ...extra,
    });
    clients.push(client);
    const retried: ClientEvents['requestRetried'][] = [];
    client.on('requestRetried', (e) => retried.push(e));
    return { client, retried };
  }

  async function succeeds(client: Client): Promise<void> {
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    assert.equal((res.result as { client_id: string }).client_id, 'svc');
  }

  test('500 is retried, then the request succeeds', async () => {
    const { client, retried } = makeClient();
    stack.proxy.inject({ kind: 'status', status: 500, body: 'oops' }, 2);
    const before = stack.proxy.requests;
    await succeeds(client);
    assert.equal(stack.proxy.requests - before, 3);
    assert.equal(client.stats().tokenRequests, 3);
    assert.equal(client.stats().retries, 2);
    assert.deepEqual(retried.map((e) => [e.attempt, (e.error as ApiError).statusCode]), [[1, 500], [2, 500]]);
    assert.ok(retried.every((e) => e.delayMs >= 0 && e.delayMs < 40));
  });

  test('429 with Retry-After: the retry waits exactly as long as asked', async () => {
    const { client, retried } = makeClient();
    stack.proxy.inject({ kind: 'json', status: 429, body: { error: 'slow_down' }, headers: { 'retry-after': '1' } });
    const started = Date.now();
    await succeeds(client);
    const elapsed = Date.now() - started;
    assert.equal(retried.length, 1);
    assert.equal(retried[0]!.delayMs, 1_000, 'Retry-After replaces the (much shorter) backoff');
    assert.ok(elapsed >= 990, `waited ${elapsed} ms`);
    assert.equal(client.stats().tokenRequests, 2);
  });

  test('Retry-After as an HTTP-date is honoured against the client clock', async () => {
    const clock = manualClock();
    const { client, retried } = makeClient({ clock });
    stack.proxy.inject({ kind: 'status', status: 503, headers: { 'retry-after': new Date(clock.now() + 1_000).toUTCString() } });
    const started = Date.now();
    await succeeds(client);
    assert.equal(retried.length, 1);
    assert.equal(retried[0]!.delayMs, 1_000);
    assert.ok(Date.now() - started >= 990);
  });

  test('a Retry-After longer than maxRetryAfter ends the retries at once', async () => {
    const { client } = makeClient({ retry: { maxAttempts: 4, baseDelay: 10, maxRetryAfter: 5_000 } });
    stack.proxy.inject({ kind: 'status', status: 503, headers: { 'retry-after': '120' } });
    const started = Date.now();
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof RetriesExhaustedError);
    assert.equal(error.attempts, 1);
    assert.equal((error.cause as ApiError).statusCode, 503);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(client.stats().tokenRequests, 1);
  });

  test('a connection reset is retried', async () => {
    const { client, retried } = makeClient();
    stack.proxy.inject({ kind: 'reset' });
    await succeeds(client);
    assert.equal(retried.length, 1);
    assert.ok(retried[0]!.error instanceof NetworkError);
    assert.equal(client.stats().tokenRequests, 2);
  });

  test('a hang past tokenRequestTimeout times out and is retried', async () => {
    const { client, retried } = makeClient({ tokenRequestTimeout: 200 });
    stack.proxy.inject({ kind: 'hang' });
    const started = Date.now();
    await succeeds(client);
    assert.ok(Date.now() - started >= 190);
    assert.equal(retried.length, 1);
    assert.ok(retried[0]!.error instanceof TimeoutError);
    assert.equal((retried[0]!.error as TimeoutError).code, ErrorCode.Timeout);
    assert.equal(client.stats().tokenRequests, 2);
  });

  test('malformed JSON fails with ERR_MALFORMED_TOKEN_RESPONSE and is not retried', async () => {
    const { client, retried } = makeClient();
    stack.proxy.inject({ kind: 'malformed-json' });
    const before = stack.proxy.requests;
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof MalformedTokenResponseError);
    assert.equal(error.code, ErrorCode.MalformedTokenResponse);
    assert.equal(stack.proxy.requests - before, 1);
    assert.equal(retried.length, 0);
    await succeeds(client); // the next call fetches again and works
  });

  test('an HTML login page instead of JSON is malformed, not retried', async () => {
    const { client } = makeClient();
    stack.proxy.inject({ kind: 'html' });
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof MalformedTokenResponseError);
    assert.match(error.message, /not JSON \(text\/html/);
    assert.equal(client.stats().tokenRequests, 1);
  });

  test('a body over maxTokenResponseBytes is cut off and rejected, not retried', async () => {
    const { client } = makeClient({ maxTokenResponseBytes: 4_096 });
    stack.proxy.inject({ kind: 'huge', bytes: 4 * 1024 * 1024 });
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof MalformedTokenResponseError);
    assert.match(error.message, /larger than 4096 bytes/);
    assert.equal(client.stats().tokenRequests, 1);
    await succeeds(client);
  });

  test('invalid_client (a wrong secret) is never retried: exactly 1 token request', async () => {
    const { client, retried } = makeClient({ retry: { maxAttempts: 10, baseDelay: 1 } }, 'wrong-secret');
    const tokenRequests = tokenRequestCounter(stack.op);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.error, 'invalid_client');
    assert.equal(error.code, ErrorCode.OAuthProvider);
    assert.equal(tokenRequests(), 1);
    assert.equal(retried.length, 0);
    assert.doesNotMatch(error.message + JSON.stringify(error), /wrong-secret/);
  });

  test('invalid_scope (a scope not granted) is never retried: exactly 1 token request', async () => {
    const { client, retried } = makeClient({ retry: { maxAttempts: 10, baseDelay: 1 } }, 'svc-secret', 'api:admin');
    const tokenRequests = tokenRequestCounter(stack.op);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.error, 'invalid_scope');
    assert.equal(tokenRequests(), 1);
    assert.equal(retried.length, 0);
  });

  test('unauthorized_client, unsupported_grant_type and invalid_request are never retried, even with a 5xx status', async () => {
    for (const [status, code] of [[400, 'unauthorized_client'], [400, 'unsupported_grant_type'], [400, 'invalid_request'], [503, 'invalid_request']] as const) {
      const { client, retried } = makeClient({ retry: { maxAttempts: 10, baseDelay: 1 } });
      stack.proxy.inject({ kind: 'json', status, body: { error: code } }, 3);
      const before = stack.proxy.requests;
      const error = await client.get('/things').catch((e: unknown) => e);
      assert.ok(error instanceof OAuthProviderError, code);
      assert.equal(error.error, code);
      assert.equal(stack.proxy.requests - before, 1, code);
      assert.equal(retried.length, 0);
    }
  });

  test('retries are bounded by maxAttempts: RetriesExhaustedError with the last failure as cause', async () => {
    const { client } = makeClient({ retry: { maxAttempts: 3, baseDelay: 5 } });
    stack.proxy.inject({ kind: 'status', status: 502, body: 'bad gateway' }, 10);
    const before = stack.proxy.requests;
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof RetriesExhaustedError);
    assert.equal(error.code, ErrorCode.RetriesExhausted);
    assert.equal(error.attempts, 3);
    assert.equal((error.cause as ApiError).statusCode, 502);
    assert.equal(stack.proxy.requests - before, 3);
    assert.equal(client.stats().failures, 1);
    assert.equal(client.stats().retries, 2);
  });

  test('retries are bounded in total time by maxElapsed', async () => {
    const { client } = makeClient({ retry: { maxAttempts: 1_000, baseDelay: 50, maxDelay: 50, maxElapsed: 300 } });
    stack.proxy.setDown(true);
    const started = Date.now();
    const error = await client.get('/things').catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    stack.proxy.setDown(false);
    assert.ok(error instanceof RetriesExhaustedError);
    assert.ok(error.cause instanceof NetworkError);
    assert.ok(error.attempts > 1 && error.attempts < 100, `${error.attempts} attempts`);
    assert.ok(elapsed < 2_000, `took ${elapsed} ms`);
  });

  test('retry: false makes exactly one attempt and throws the failure itself', async () => {
    const { client } = makeClient({ retry: false });
    stack.proxy.inject({ kind: 'status', status: 500 }, 3);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, ErrorCode.UnexpectedStatus);
    assert.equal(client.stats().tokenRequests, 1);
  });

  test('the circuit opens after repeated failures; the next caller makes the trial after the probe interval (250 ms) while callers of other keys fail fast with the cause; the trial closes it', async () => {
    const clock = manualClock();
    const { client } = makeClient({ clock, retry: { maxAttempts: 2, baseDelay: 5 }, circuitBreaker: { failureThreshold: 3, maxProbeInterval: 10_000 } });
    const opened: ClientEvents['circuitOpen'][] = [];
    let closed = 0;
    client.on('circuitOpen', (e) => opened.push(e));
    client.on('circuitClosed', () => closed++);
    stack.proxy.inject({ kind: 'status', status: 500, body: 'down' }, 3);

    const first = await client.get('/things').catch((e: unknown) => e);
    assert.ok(first instanceof RetriesExhaustedError, 'two failures: retries exhausted, circuit still closed');
    assert.equal(client.stats().circuitOpen, false);
    const second = await client.get('/things').catch((e: unknown) => e);
    assert.ok(second instanceof CircuitOpenError, 'the third failure opens it');
    assert.equal(second.code, ErrorCode.CircuitOpen);
    assert.notEqual(ErrorCode.CircuitOpen, ErrorCode.RetriesExhausted);
    assert.equal((second.cause as ApiError).statusCode, 500);
    assert.equal(second.retryAt, clock.now() + 250);
    assert.equal(second.retryInMs, 250);
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.failures, 3);
    assert.equal(client.stats().circuitOpen, true);

    // open, nothing being tried: the next caller's fetch is the trial, which waits for the rest of the probe interval
    // (250 ms: the injected clock stands still, so in real time) and goes out; meanwhile callers of another key fail
    // fast, with the last failure attached, and no token request
    const before = stack.proxy.requests;
    const started = Date.now();
    const trial = client.get('/things');
    for (let i = 0; i < 20; i++) {
      const error = await client.clientCredentialsAuthManager.getToken({ audience: 'https://other.example' }).catch((e: unknown) => e);
      assert.ok(error instanceof CircuitOpenError);
      assert.equal((error.cause as ApiError).statusCode, 500);
    }
    assert.equal(stack.proxy.requests, before);
    assert.equal((await trial).statusCode, 200);
    assert.ok(Date.now() - started >= 200, 'the trial waited for its probe interval');
    assert.equal(closed, 1);
    assert.equal(client.stats().circuitOpen, false);
    assert.equal(stack.proxy.requests, before + 1);
  });

  test('a failed trial re-opens the circuit for another cooldown', async () => {
    const clock = manualClock();
    const { client } = makeClient({ clock, retry: false, circuitBreaker: { failureThreshold: 1, cooldown: 1_000 } });
    const opened: number[] = [];
    client.on('circuitOpen', (e) => opened.push(e.retryInMs));
    stack.proxy.inject({ kind: 'reset' }, 2);
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof CircuitOpenError);
    clock.advance(250);
    const trial = await client.get('/things').catch((e: unknown) => e);
    assert.ok(trial instanceof CircuitOpenError);
    assert.ok(trial.cause instanceof NetworkError);
    assert.deepEqual(opened, [250, 500], 'the interval doubles after a failed trial');
    clock.advance(500);
    await succeeds(client);
  });

  test('regression: a half-open trial whose caller gives up ends at tokenRequestTimeout and frees the trial slot', async () => {
    const clock = manualClock();
    const { client } = makeClient({ clock, retry: false, tokenRequestTimeout: 300, circuitBreaker: { failureThreshold: 1, maxProbeInterval: 1_000 } });
    stack.proxy.inject({ kind: 'status', status: 500 });
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof CircuitOpenError);
    clock.advance(250);
    stack.proxy.inject({ kind: 'hang' });
    const aborted = await client.get('/things', { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    assert.ok(aborted instanceof AbortError);
    // the trial runs on to its own timeout, fails, and re-opens the circuit for the next interval
    for (let i = 0; i < 200 && client.stats().failures < 2; i++) await new Promise((r) => setTimeout(r, 10));
    clock.advance(1_000);
    await succeeds(client);
    assert.equal(client.stats().circuitOpen, false, 'the trial slot was freed');
  });

  test('a malformed 200 is not retried but counts towards opening the circuit', async () => {
    const { client } = makeClient({ circuitBreaker: { failureThreshold: 2, cooldown: 60_000 } });
    stack.proxy.inject({ kind: 'html' }, 2);
    assert.ok((await client.get('/things').catch((e: unknown) => e)) instanceof MalformedTokenResponseError);
    const second = await client.get('/things').catch((e: unknown) => e);
    assert.ok(second instanceof CircuitOpenError);
    assert.ok(second.cause instanceof MalformedTokenResponseError);
    assert.equal(client.stats().tokenRequests, 2);
  });

  test('regression: retry and breaker numbers given as strings, or as undefined, work as numbers and defaults', async () => {
    const clock = manualClock();
    // As read from environment variables: strings, and an unset one. `cooldown: '1000'` used to be concatenated to the
    // clock reading (a circuit open for ever), and `maxAttempts: undefined` used to retry without a bound on attempts.
    const { client } = makeClient({
      clock,
      retry: { maxAttempts: undefined, baseDelay: '1', maxDelay: '2' } as unknown as ClientConfiguration['retry'],
      circuitBreaker: { failureThreshold: '5', cooldown: '1000' } as unknown as ClientConfiguration['circuitBreaker'],
    });
    stack.proxy.inject({ kind: 'status', status: 500 }, 10);
    const first = await client.get('/things').catch((e: unknown) => e);
    assert.ok(first instanceof RetriesExhaustedError, String(first));
    assert.equal(first.attempts, 4, 'the default maxAttempts');
    const second = await client.get('/things').catch((e: unknown) => e);
    assert.ok(second instanceof CircuitOpenError, 'the fifth failure opens the circuit');
    assert.equal(second.retryAt, clock.now() + 250);
    stack.proxy.clear();
    clock.advance(250);
    await succeeds(client);
    assert.equal(client.stats().tokenRequests, 6);
  });

  test('an OAuth error from a healthy server does not open the circuit', async () => {
    const { client } = makeClient({ circuitBreaker: { failureThreshold: 1, cooldown: 60_000 } }, 'wrong-secret');
    for (let i = 0; i < 3; i++) {
      const error = await client.get('/things').catch((e: unknown) => e);
      assert.ok(error instanceof OAuthProviderError);
    }
    assert.equal(client.stats().circuitOpen, false);
    assert.equal(client.stats().tokenRequests, 3);
  });
});
