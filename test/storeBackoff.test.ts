/**
 * The token store's back-off (after a failure the store is skipped for a second, then tried again) runs on a monotonic
 * clock: a step of the wall clock (NTP, a VM resumed, a laptop waking up) neither stretches it, which left the store
 * unused for as long as the clock stepped back, nor cuts it short. The monotonic clock is injected; the wall clock is
 * stepped by replacing `Date.now`, as a clock step changes it for the whole process.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, MemoryTokenStore, type OAuthToken, type TokenStore } from '../src/index.js';
import { EventHub } from '../src/events.js';
import { GuardedStore } from '../src/stores/guardedStore.js';
import { sendJson, startScripted } from './helpers/scripted.js';

const realNow = Date.now;
afterEach(() => {
  Date.now = realNow;
});

/** Steps the process's wall clock by `ms` (negative: back). */
function stepWallClock(ms: number): void {
  const previous = Date.now;
  Date.now = () => previous() + ms;
}

/** A MemoryTokenStore whose next `failures` operations throw (a Redis restart, say), counting the calls that reach it. */
function flaky(): TokenStore & { failures: number; calls: number } {
  const inner = new MemoryTokenStore();
  const store = {
    failures: 0,
    calls: 0,
    async get(key: string) {
      store.calls++;
      if (store.failures > 0) {
        store.failures--;
        throw new Error('connection reset');
      }
      return inner.get(key);
    },
    async set(key: string, token: OAuthToken, ttlMs: number) {
      store.calls++;
      return inner.set(key, token, ttlMs);
    },
    async delete(key: string, accessToken?: string) {
      return inner.delete(key, accessToken);
    },
  };
  return store;
}

function guarded(store: TokenStore, monotonic: () => number): GuardedStore {
  return new GuardedStore(store, 1_000, new EventHub(), { storeErrors: 0 }, 1_000, { monotonic });
}

test('the wall clock stepped back an hour during the back-off: the store is used again after the back-off, not an hour later', async () => {
  let m = 0;
  const store = flaky();
  const guard = guarded(store, () => m);
  store.failures = 1;
  assert.equal(await guard.get('k'), undefined);
  assert.equal(guard.available, false, 'in the back-off');
  stepWallClock(-3_600_000);
  m += 999;
  assert.equal(guard.available, false);
  m += 1;
  assert.equal(guard.available, true, 'the back-off ended one monotonic second after the failure');
  const calls = store.calls;
  await guard.get('k');
  assert.equal(store.calls, calls + 1, 'the store is asked again');
});

test('the wall clock stepped forward an hour during the back-off: the back-off still lasts its second', async () => {
  let m = 0;
  const store = flaky();
  const guard = guarded(store, () => m);
  store.failures = 1;
  await guard.get('k');
  stepWallClock(3_600_000);
  assert.equal(guard.available, false, 'a forward step does not end the back-off');
  const calls = store.calls;
  await guard.get('k');
  assert.equal(store.calls, calls, 'the store is not asked inside the back-off');
  m += 1_000;
  assert.equal(guard.available, true);
});

test('a Client with an injected monotonic clock: its store back-off follows that clock, whatever the wall clock does', async () => {
  let n = 0;
  const endpoint = await startScripted((_req, res) => sendJson(res, 200, { access_token: `tok-${++n}-${'x'.repeat(24)}`, token_type: 'Bearer', expires_in: 60 }));
  let wall = Math.floor(Date.now() / 1000) * 1000;
  let m = 0;
  const store = flaky();
  const client = new Client({
    tokenUrl: `${endpoint.url}/token`,
    tokenStore: store,
    clock: { now: () => wall, monotonic: () => m },
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' },
  });
  try {
    store.failures = 1;
    await client.clientCredentialsAuthManager.getToken(); // the store's get fails: back-off; the endpoint gives the token
    assert.equal(client.stats().storeErrors, 1);
    stepWallClock(-3_600_000);
    wall += 61_000; // the token expired (on the Client's clock)
    const inside = store.calls;
    await client.clientCredentialsAuthManager.getToken();
    assert.equal(store.calls, inside, 'inside the back-off the store is skipped');
    wall += 61_000;
    m += 1_000; // one monotonic second later: the back-off is over, though the wall clock went back an hour
    const after = store.calls;
    await client.clientCredentialsAuthManager.getToken();
    assert.ok(store.calls > after, 'the store is used again');
  } finally {
    await client.close();
    await endpoint.close();
  }
});
