// Token endpoint outage longer than a token's lifetime: the stale token carries on while it can, then calls fail with
// the documented codes and the circuit opens (one trial per cooldown, no hammering); once the endpoint is back, calls
// recover with no restart. The endpoint really goes down: the fault proxy in front of oidc-provider drops connections.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitOpenError, Client, ErrorCode, NetworkError, RetriesExhaustedError, type ClientEvents } from '../src/index.js';
import { SVC_CREDENTIALS, manualClock, nextEvent, startStack, type Stack } from './helpers/fixtures.js';

/** 60 s tokens for the test on an injected clock; 2 s tokens for the one in real time. */
let stack: Stack;
let short: Stack;

before(async () => {
  [stack, short] = await Promise.all([startStack({ ttl: 60 }), startStack({ ttl: 2 })]);
});

after(async () => {
  await Promise.all([stack.close(), short.close()]);
});

test('an outage longer than the token lifetime (injected clock): stale token, then ERR_CIRCUIT_OPEN fast, then recovery', async () => {
  const clock = manualClock();
  const cooldown = 5_000;
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    retry: { maxAttempts: 2, baseDelay: 5, maxDelay: 10 },
    circuitBreaker: { failureThreshold: 2, cooldown },
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
  });
  const opened: ClientEvents['circuitOpen'][] = [];
  let closed = 0;
  client.on('circuitOpen', (e) => opened.push(e));
  client.on('circuitClosed', () => closed++);
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    const expiryMs = first.expiry! * 1000;
    const outageStart = clock.now();
    stack.proxy.setDown(true);

    // while the token is stale it is still served (the background refresh, one attempt, fails; a usable token is being
    // served, so that failure does not count towards opening the circuit)
    clock.set(expiryMs - 15_000);
    const refreshFailed = nextEvent(client, 'refreshFailed');
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.ok((await refreshFailed).error instanceof NetworkError);
    assert.equal(client.stats().circuitOpen, false);

    // the token expires: the next fetch fails twice (two attempts) and opens the circuit
    clock.set(expiryMs);
    const failure = await client.get('/things').catch((e: unknown) => e);
    assert.ok(failure instanceof CircuitOpenError);
    assert.equal(failure.code, ErrorCode.CircuitOpen);
    assert.ok(failure.cause instanceof NetworkError, 'the last failure is attached');
    assert.equal(opened.length, 1);
    assert.equal(client.stats().circuitOpen, true);

    // the rest of a three-minute outage, a caller every `cooldown` (the old name of maxProbeInterval): each finds
    // nothing being tried, so its fetch is the trial; the trial fails and the caller gets ERR_CIRCUIT_OPEN
    const before = stack.proxy.requests;
    let calls = 0;
    const started = Date.now();
    while (clock.now() < outageStart + 180_000) {
      clock.advance(cooldown);
      calls++;
      const error = await client.get('/things').catch((e: unknown) => e);
      assert.ok(error instanceof CircuitOpenError, `call ${calls}: ${String(error)}`);
      assert.ok(error.cause instanceof NetworkError);
    }
    const trials = stack.proxy.requests - before;
    assert.equal(trials, calls, `${trials} trials for ${calls} calls, one per probe interval`);
    assert.equal(opened.length, 1 + trials, 'each failed trial re-opens the circuit');
    assert.ok(Date.now() - started < 5_000, 'calls failed fast');
    assert.equal(client.stats().waits, 2 + calls);

    // the endpoint is back: after the cooldown the next call recovers, with the same Client
    stack.proxy.setDown(false);
    clock.advance(cooldown);
    const res = await client.get('/things');
    assert.equal(res.statusCode, 200);
    assert.equal(closed, 1);
    assert.equal(client.stats().circuitOpen, false);
    const next = await client.clientCredentialsAuthManager.getToken();
    assert.notEqual(next.accessToken, first.accessToken);
    for (let i = 0; i < 5; i++) assert.equal((await client.get('/things')).statusCode, 200);
  } finally {
    stack.proxy.clear();
    await client.close();
  }
});

test('an outage in real time with 2 s tokens: failures carry the documented codes, and calls recover by themselves', async () => {
  const client = new Client({
    baseUrl: short.api.url,
    tokenUrl: short.proxiedTokenUrl,
    tokenRequestTimeout: 500,
    retry: { maxAttempts: 2, baseDelay: 10, maxDelay: 20 },
    circuitBreaker: { failureThreshold: 3, cooldown: 300 },
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
  });
  let closed = 0;
  client.on('circuitClosed', () => closed++);
  try {
    await client.get('/things');
    short.proxy.setDown(true);
    const downAt = Date.now();
    const outageMs = 2_600; // longer than the token's 2 s lifetime
    const codes = new Map<string, number>();
    let okDuringOutage = 0;
    while (Date.now() - downAt < outageMs) {
      try {
        await client.get('/things');
        okDuringOutage++;
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'none';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(okDuringOutage > 0, 'the cached token carried the first part of the outage');
    assert.ok((codes.get(ErrorCode.CircuitOpen) ?? 0) > 0, 'the circuit opened');
    assert.deepEqual([...codes.keys()].filter((c) => c !== ErrorCode.CircuitOpen && c !== ErrorCode.RetriesExhausted), [], 'only the documented codes');
    const trialsBound = 3 + Math.ceil(outageMs / 300) * 2; // initial failures + at most one trial per cooldown (plus retries)
    assert.ok(short.proxy.requests < trialsBound + 5, `${short.proxy.requests} token requests during the outage`);

    short.proxy.setDown(false);
    const backAt = Date.now();
    let recovered = false;
    while (!recovered && Date.now() - backAt < 2_000) {
      recovered = await client.get('/things').then((r) => r.statusCode === 200, () => false);
      if (!recovered) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(recovered, 'calls recovered with no restart');
    assert.ok(Date.now() - backAt < 1_000, 'within about one cooldown');
    assert.equal(closed, 1);
  } finally {
    short.proxy.clear();
    await client.close();
  }
});
