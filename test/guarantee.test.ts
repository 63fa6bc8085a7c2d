// The resilience guarantee: a token-endpoint outage shorter than half a token's lifetime, starting at any moment of
// the token's life, fails no request. Proved on an injected clock (outages of 10 %, 30 % and 49 % of the lifetime,
// starting at 20 phases, under concurrent load), then in real time with 4 s tokens (the brief-outage reproduction of
// issue 9). And the breaker never extends an outage: once the endpoint is back, the first caller succeeds within the
// probe interval, while the outage costs about one token request per interval.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitOpenError, Client, type ClientConfiguration } from '../src/index.js';
import { SVC_CREDENTIALS, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';

let stack: Stack;

/** A virtual clock: wall and monotonic time move only when the test moves them. */
function virtualClock(start = Math.floor(Date.now() / 1000) * 1000) {
  let t = start;
  return { now: () => t, monotonic: () => t, advance: (ms: number) => (t += ms), start };
}

/** One simulated run; returns failed calls and token requests. */
async function simulate(options: { lifetimeS: number; outageStartS: number; outageS: number; runS: number; concurrency: number; stepMs: number; config?: Partial<ClientConfiguration> }) {
  const clock = virtualClock();
  // Retry sleeps are real time: kept to a millisecond so that virtual time alone decides.
  const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, retry: { baseDelay: 1, maxDelay: 2 }, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...options.config });
  const manager = client.clientCredentialsAuthManager;
  const count = tokenRequestCounter(stack.op);
  const proxied = stack.proxy.requests;
  let failed = 0;
  let outageRequests = 0;
  const settle = () => new Promise<void>((resolve) => {
    const offs = [client.on('tokenRefreshed', done), client.on('refreshFailed', done)];
    function done() {
      for (const off of offs) off();
      resolve();
    }
  });
  try {
    for (let at = 0; at <= options.runS * 1000; at += options.stepMs) {
      const down = at >= options.outageStartS * 1000 && at < (options.outageStartS + options.outageS) * 1000;
      stack.proxy.setOutage(down ? 503 : undefined);
      const before = client.stats().backgroundRefreshes;
      const proxiedBefore = stack.proxy.requests;
      const waiting = settle();
      const results = await Promise.allSettled(Array.from({ length: options.concurrency }, () => manager.getToken()));
      failed += results.filter((r) => r.status === 'rejected').length;
      if (client.stats().backgroundRefreshes > before) await waiting;
      if (down) outageRequests += stack.proxy.requests - proxiedBefore;
      clock.advance(options.stepMs);
    }
  } finally {
    stack.proxy.setOutage(undefined);
    await client.close();
  }
  return { failed, tokenRequests: count(), proxied: stack.proxy.requests - proxied, outageRequests };
}

before(async () => {
  stack = await startStack({ ttl: 100 });
});
after(() => stack.close());

describe('the guarantee, on an injected clock', () => {
  for (const fraction of [0.1, 0.3, 0.49]) {
    test(`an outage of ${fraction * 100} % of the lifetime, starting at any of 20 phases, fails no request`, async (t) => {
      const L = 100;
      let worst = 0;
      for (let phase = 0; phase < 20; phase++) {
        // Tokens are issued at 0, then refreshed every half-life; the outage starts in the second lifetime.
        const outageStartS = L + (phase * L) / 20;
        const run = await simulate({ lifetimeS: L, outageStartS, outageS: fraction * L, runS: 3 * L, concurrency: 8, stepMs: 500 });
        assert.equal(run.failed, 0, `phase ${phase}: ${run.failed} failed calls`);
        // Paced: at most about one token request per virtual second of outage, plus the ordinary refreshes.
        assert.ok(run.outageRequests <= fraction * L + 2, `phase ${phase}: ${run.outageRequests} token requests during a ${fraction * L} s outage`);
        worst = Math.max(worst, run.outageRequests);
      }
      t.diagnostic(`outage ${fraction * L} s of a ${L} s token, 20 phases x 8 concurrent callers every 0.5 s: 0 failed; at most ${worst} token requests during the outage`);
    });
  }

  test('regression: the old default (stale at 75 %) failed requests in this outage; refreshAhead trades the guarantee away explicitly', async () => {
    // refreshAhead: 25 s of a 100 s token is the old 75 % stale point: an outage of 45 % starting just before it fails calls.
    const run = await simulate({ lifetimeS: 100, outageStartS: 220, outageS: 45, runS: 300, concurrency: 4, stepMs: 500, config: { refreshAhead: 25 } });
    assert.ok(run.failed > 0, 'the 75 % stale point cannot ride out this outage');
    const fixed = await simulate({ lifetimeS: 100, outageStartS: 220, outageS: 45, runS: 300, concurrency: 4, stepMs: 500 });
    assert.equal(fixed.failed, 0);
  });
});

describe('the breaker never extends an outage', () => {
  test('endpoint down 45 s, longer than the token lives: each caller with nothing being tried makes the trial, about one token request per second, and the first caller after recovery succeeds within a second', async () => {
    const clock = virtualClock();
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, retry: { baseDelay: 1, maxDelay: 2 }, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const manager = client.clientCredentialsAuthManager;
    try {
      await manager.getToken();
      clock.advance(100_000); // expired
      stack.proxy.setOutage(503);
      const proxied = stack.proxy.requests;
      let failures = 0;
      let circuitOpen = 0;
      for (let i = 0; i < 45; i++) { // 45 virtual seconds, a caller every second (the longest probe interval)
        const error = await manager.getToken().then(() => undefined, (e: unknown) => e);
        if (error) failures++;
        if (error instanceof CircuitOpenError) circuitOpen++;
        clock.advance(1_000);
      }
      const duringOutage = stack.proxy.requests - proxied;
      assert.equal(failures, 45);
      assert.ok(circuitOpen >= 43, `the callers' trials failed and re-opened the circuit: ${circuitOpen}`);
      assert.ok(duringOutage <= 45 + 8, `${duringOutage} token requests in a 45 s outage`);
      stack.proxy.setOutage(undefined);
      let lag = 0;
      for (;;) {
        const ok = await manager.getToken().then(() => true, () => false);
        if (ok) break;
        clock.advance(50);
        lag += 50;
      }
      assert.ok(lag <= 1_000, `the first success came ${lag} ms after the endpoint was back`);
      assert.equal(client.stats().circuitOpen, false);
    } finally {
      stack.proxy.setOutage(undefined);
      await client.close();
    }
  });

  test("a wall-clock step backwards does not hold the circuit open (the breaker runs on the monotonic clock)", async () => {
    let wall = Date.now();
    let mono = 0;
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock: { now: () => wall, monotonic: () => mono }, retry: false, circuitBreaker: { failureThreshold: 1 }, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    try {
      stack.proxy.setOutage(503);
      await assert.rejects(client.clientCredentialsAuthManager.getToken());
      assert.equal(client.stats().circuitOpen, true);
      stack.proxy.setOutage(undefined);
      wall -= 3_600_000; // an NTP step back by an hour
      mono += 1_000;
      assert.ok((await client.clientCredentialsAuthManager.getToken()).accessToken);
    } finally {
      stack.proxy.setOutage(undefined);
      await client.close();
    }
  });

  test("the server's Retry-After wins over the probe interval: told 2 s, the trial waits 2 s", async () => {
    const clock = virtualClock();
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, retry: false, circuitBreaker: { failureThreshold: 1 }, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    try {
      stack.proxy.inject({ kind: 'status', status: 503, headers: { 'retry-after': '2' } });
      await assert.rejects(client.clientCredentialsAuthManager.getToken());
      clock.advance(1_500);
      // the next caller's fetch is the trial: it waits out the 0.5 s left (in real time: the injected clock stands
      // still), while a caller of another key is told when the trial may go
      const started = Date.now();
      const trial = client.clientCredentialsAuthManager.getToken();
      const other = await client.clientCredentialsAuthManager.getToken({ audience: 'https://other.example' }).then(() => undefined, (e: unknown) => e);
      assert.ok(other instanceof CircuitOpenError, 'still open after 1.5 s');
      assert.equal(other.retryInMs, 500);
      assert.ok((await trial).accessToken);
      assert.ok(Date.now() - started >= 450, 'the trial waited for the rest of the 2 s');
    } finally {
      stack.proxy.clear();
      await client.close();
    }
  });
});

describe('the guarantee in real time, 4 s tokens (issue 9 reproduction)', () => {
  let short: Stack;
  before(async () => {
    short = await startStack({ ttl: 4 });
  });
  after(() => short.close());

  test('brief outage: 503 from 2.5 s to 4.5 s after the first token, 16 concurrent callers for 8 s: 0 failed', async (t) => {
    const client = new Client({ baseUrl: short.api.url, tokenUrl: short.proxiedTokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const count = tokenRequestCounter(short.op);
    try {
      await client.clientCredentialsAuthManager.getToken();
      const t0 = Date.now();
      const timers = [setTimeout(() => short.proxy.setOutage(503), 2_500), setTimeout(() => short.proxy.setOutage(undefined), 4_500)];
      let ok = 0;
      const errors: string[] = [];
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (Date.now() - t0 < 8_000) {
          try {
            await client.get('/things');
            ok++;
          } catch (error) {
            errors.push(String(error));
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }));
      for (const timer of timers) clearTimeout(timer);
      assert.deepEqual(errors.slice(0, 3), []);
      assert.ok(ok > 100, `${ok} requests served`);
      t.diagnostic(`brief outage, real time: ${ok} requests, 0 failed, ${count()} token requests`);
    } finally {
      short.proxy.setOutage(undefined);
      await client.close();
    }
  });
});
