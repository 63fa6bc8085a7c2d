// Adversarial review of the token lifecycle (r25a): each test is a defect found by attacking the lifecycle as a slow or
// hostile token endpoint, a hanging store or a careless caller would, and failed on the code before its fix. Real servers:
// oidc-provider behind the fault proxy, redis-server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createClient } from 'redis';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AbortError, Client, FileTokenStore, MemoryTokenStore, type ClientEvents, type OAuthToken, type TokenStore } from '../src/index.js';
import { RedisTokenStore } from '../src/stores/redis.js';
import { TokenCache } from '../src/auth/tokenCache.js';
import type { TokenKey } from '../src/auth/tokenKey.js';
import { SVC_CREDENTIALS, manualClock, startStack, type Stack } from './helpers/fixtures.js';
import { startRedis } from './helpers/redis.js';

let stack: Stack;

before(async () => {
  stack = await startStack({ ttl: 60 });
});
after(async () => {
  await stack.proxy.setShape(undefined);
  await stack.close();
});

/** Resolves with what `promise` settled with, or 'pending' after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; pending?: true }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ pending: true }>((resolve) => (timer = setTimeout(() => resolve({ pending: true }), ms)));
  try {
    return await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a slow token endpoint (every answer takes 3.5 s) is waited for, not hedged to death', () => {
  for (const [name, shape] of [
    ['answers after 3.5 s', { kind: 'delay', ms: 3_500 }],
    ['drips its body, one byte every 50 ms (about 3.3 s)', { kind: 'drip', intervalMs: 50 }],
  ] as const) {
    test(`${name}: a cold caller gets its token in about that time, with a handful of token requests (it took 30 s and 30 requests: each attempt was abandoned to make room for a hedge before it could answer)`, async () => {
      const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
      await stack.proxy.setShape(shape);
      const before = stack.proxy.requests;
      const started = Date.now();
      try {
        const outcome = await within(client.clientCredentialsAuthManager.getToken(), 15_000);
        const elapsed = Date.now() - started;
        assert.ok(outcome.value, `no token after ${elapsed} ms: ${outcome.pending ? 'still waiting' : String(outcome.error)}`);
        assert.ok(elapsed < 12_000, `the token came after ${elapsed} ms`);
        const requests = stack.proxy.requests - before;
        assert.ok(requests <= 8, `${requests} token requests for one token`);
      } finally {
        await stack.proxy.setShape(undefined);
        await client.close();
      }
    });
  }
});

/** Two connections to one redis-server: the token store's, and one that pauses the server under it. */
async function storeAndAdmin(url: string) {
  const [connection, admin] = [createClient({ url }), createClient({ url })];
  for (const each of [connection, admin]) {
    each.on('error', () => undefined);
    await each.connect();
  }
  return { connection, admin };
}

/**
 * Records `client`'s background refreshes: `refreshed`, or `failed: ` and what `failure` says of the error. Its walk
 * sets the clock to the middle of `first`'s 60 s lifetime (stale), then steps it a second at a time: each step reads
 * the token (still `first`) and waits for the background attempt it started, until one refreshed or a second is
 * left. It returns the outcomes (which go on growing with later attempts).
 */
function watchRefreshes(client: Client, failure: (error: Error) => string) {
  const outcomes: string[] = [];
  let settled: (() => void) | undefined;
  client.on('refreshFailed', (e: ClientEvents['refreshFailed']) => {
    outcomes.push(`failed: ${failure(e.error)}`);
    settled?.();
  });
  client.on('tokenRefreshed', () => {
    outcomes.push('refreshed');
    settled?.();
  });
  return {
    async walkStaleWindow(clock: ReturnType<typeof manualClock>, first: OAuthToken): Promise<string[]> {
      const expiryMs = first.expiry! * 1000;
      clock.set(expiryMs - 30_000);
      while (!outcomes.includes('refreshed') && clock.now() < expiryMs - 1_000) {
        const started = client.stats().backgroundRefreshes;
        const done = new Promise<void>((resolve) => (settled = resolve));
        assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
        if (client.stats().backgroundRefreshes > started) await done;
        clock.advance(1_000);
      }
      return outcomes;
    },
  };
}

test('an endpoint that became slow (2.5 s, after a fast first token): a background refresh still succeeds before the token expires, nobody waits (every background attempt was abandoned after 1 s, four times the first latency, until the expiry)', async () => {
  const clock = manualClock();
  const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const watch = watchRefreshes(client, (error) => error.name);
  try {
    const first = await client.clientCredentialsAuthManager.getToken(); // fast: the hedge delay drops to 0.25 s
    await stack.proxy.setShape({ kind: 'delay', ms: 2_500 });
    const waits = client.stats().waits;
    const outcomes = await watch.walkStaleWindow(clock, first);
    assert.ok(outcomes.includes('refreshed'), `no background refresh succeeded before the expiry: ${outcomes.join(', ')}`);
    assert.ok(outcomes.length <= 5, `${outcomes.length} background attempts: ${outcomes.join(', ')}`);
    assert.equal(client.stats().waits, waits, 'nobody waited');
  } finally {
    await stack.proxy.setShape(undefined);
    await client.close();
  }
});

test('close() while Redis hangs (CLIENT PAUSE) under a caller waiting for its first token: the caller is rejected at once with AbortError (it waited out two tokenStoreTimeouts, the store read and the lease, and the process was held as long)', async () => {
  const redis = await startRedis();
  const { connection, admin } = await storeAndAdmin(redis.url);
  const store = new RedisTokenStore({ client: connection, pubsub: false });
  const client = new Client({ tokenUrl: stack.proxiedTokenUrl, tokenStore: store, tokenStoreTimeout: 5_000, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    await admin.sendCommand(['CLIENT', 'PAUSE', '20000', 'ALL']);
    const pending = client.clientCredentialsAuthManager.getToken();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the store read is hanging
    const closedAt = Date.now();
    await client.close();
    const outcome = await within(pending, 4_000);
    const after = Date.now() - closedAt;
    assert.ok(outcome.error instanceof AbortError, `after close(): ${outcome.pending ? 'still waiting' : String(outcome.error ?? 'a token')} ${after} ms later`);
    assert.ok(after < 1_000, `rejected ${after} ms after close()`);
  } finally {
    await client.close();
    connection.destroy();
    admin.destroy();
    await redis.close();
  }
});

test('maxCachedTokens: selections the token endpoint refuses (invalid_scope) do not push the cached tokens of good selections out (each refused selection evicted a valid token, which then had to be fetched again)', async () => {
  const client = new Client({ tokenUrl: stack.op.tokenUrl, maxCachedTokens: 3, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const manager = client.clientCredentialsAuthManager;
  const good = ['api:read', 'api:write', 'api:read api:write'];
  try {
    const tokens = await Promise.all(good.map((scopes) => manager.getToken({ scopes })));
    const requests = client.stats().tokenRequests;
    for (const scopes of ['api:admin', 'api:admin api:read', 'api:admin api:write', 'api:read api:admin api:write']) {
      await assert.rejects(manager.getToken({ scopes }), (error: { error?: string }) => error.error === 'invalid_scope');
    }
    const again = await Promise.all(good.map((scopes) => manager.getToken({ scopes })));
    const kept = again.filter((t, i) => t.accessToken === tokens[i]!.accessToken).length;
    assert.equal(kept, good.length, `${good.length - kept} of the ${good.length} good selections lost their token`);
    assert.equal(client.stats().tokenRequests - requests, 4, 'one token request per refused selection, none for the good ones');
    assert.ok(client.stats().cachedTokens <= 3, `${client.stats().cachedTokens} entries cached`);
  } finally {
    await client.close();
  }
});

test('property: the token cache never evicts a busy entry, evicts empty entries before any holding a token, and trim() restores its bound unless every entry is busy', () => {
  type E = { key: TokenKey; busy: boolean; empty: boolean };
  const op = fc.oneof(
    fc.record({ kind: fc.constant('entry' as const), id: fc.nat(12), busy: fc.boolean(), empty: fc.boolean() }),
    fc.record({ kind: fc.constant('get' as const), id: fc.nat(12) }),
    fc.record({ kind: fc.constant('settle' as const), id: fc.nat(12), empty: fc.boolean() }),
    fc.record({ kind: fc.constant('trim' as const) }),
  );
  fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
    const cache = new TokenCache<E>(max, (key) => ({ key, busy: false, empty: true }), (e) => e.busy, (e) => e.empty);
    const keyOf = (id: number) => ({ id: `k${id}` }) as unknown as TokenKey;
    for (const o of ops) {
      if (o.kind === 'entry') Object.assign(cache.entry(keyOf(o.id)), { busy: o.busy, empty: o.empty });
      else if (o.kind === 'get') cache.get(keyOf(o.id));
      else if (o.kind === 'settle') {
        const e = cache.find(keyOf(o.id));
        if (e) Object.assign(e, { busy: false, empty: o.empty });
      } else {
        const before = [...cache.values()];
        cache.trim();
        const after = new Set(cache.values());
        const evicted = before.filter((e) => !after.has(e));
        assert.ok(evicted.every((e) => !e.busy), 'a busy entry was evicted');
        if (evicted.some((e) => !e.empty)) assert.ok([...after].every((e) => !e.empty || e.busy), 'a token was evicted while an idle empty entry stayed');
        assert.ok(cache.size <= max || [...after].every((e) => e.busy), `${cache.size} entries over a bound of ${max}`);
      }
    }
  }), { seed: 25, numRuns: 500 });
});

test('Redis hanging (CLIENT PAUSE) for longer than the stale window: a background refresh fetches on its own before the token expires, so no caller waits at the expiry (the refresh was postponed until the expiry, and callers then waited out the store read, the lease probe and the write: 3 s with the default store timeout)', async () => {
  const redis = await startRedis();
  const { connection, admin } = await storeAndAdmin(redis.url);
  const clock = manualClock();
  const store = new RedisTokenStore({ client: connection, pubsub: false });
  const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, tokenStore: store, tokenStoreTimeout: 300, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const watch = watchRefreshes(client, (error) => String((error as { code?: string }).code));
  try {
    const first = await client.clientCredentialsAuthManager.getToken();
    await admin.sendCommand(['CLIENT', 'PAUSE', '60000', 'ALL']);
    const expiryMs = first.expiry! * 1000;
    const outcomes = await watch.walkStaleWindow(clock, first);
    assert.ok(outcomes.includes('refreshed'), `no background refresh succeeded before the expiry: ${outcomes.join(', ')}`);
    assert.ok(outcomes.some((o) => o === 'failed: ERR_TOKEN_STORE'), 'early in the stale window the refresh waits for the store (postponed)');
    const waits = client.stats().waits;
    clock.set(expiryMs);
    assert.notEqual((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    assert.equal(client.stats().waits, waits, 'nobody waited at the expiry');
  } finally {
    await client.close();
    connection.destroy();
    admin.destroy();
    await redis.close();
  }
});

describe('a corrupt store entry with a far expiry is overwritten by the next token (the compare-and-set kept it, as a "newer" token, so the fleet never shared a token again)', () => {
  /** The store key of the test credentials (from a throwaway Client's event). */
  async function keyHash(): Promise<string> {
    const probe = new Client({ tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    let hash = '';
    probe.on('tokenFetched', (e) => (hash = e.key));
    await probe.clientCredentialsAuthManager.getToken();
    await probe.close();
    return hash;
  }
  const corrupt = { expiry: 4_102_444_800, tokenType: 'Bearer' }; // year 2100, and no access token

  async function shared(store: TokenStore): Promise<void> {
    const a = new Client({ tokenUrl: stack.op.tokenUrl, tokenStore: store, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const b = new Client({ tokenUrl: stack.op.tokenUrl, tokenStore: store, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    try {
      const token = await a.clientCredentialsAuthManager.getToken();
      assert.equal(a.stats().tokenRequests, 1);
      const other = await b.clientCredentialsAuthManager.getToken();
      assert.equal(b.stats().tokenRequests, 0, 'the second Client took the token from the store');
      assert.equal(other.accessToken === token.accessToken, true);
    } finally {
      await a.close();
      await b.close();
    }
  }

  test('MemoryTokenStore', async () => {
    const store = new MemoryTokenStore();
    await store.set(await keyHash(), corrupt as never, 60_000);
    await shared(store);
  });

  test('FileTokenStore', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'r25a-'));
    try {
      const file = path.join(dir, 'tokens.json');
      await writeFile(file, JSON.stringify({ version: 1, entries: { [await keyHash()]: { token: corrupt, expiresAt: Date.now() + 60_000 } } }), { mode: 0o600 });
      await shared(new FileTokenStore({ path: file }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('RedisTokenStore', async () => {
    const redis = await startRedis();
    const connection = createClient({ url: redis.url });
    connection.on('error', () => undefined);
    await connection.connect();
    try {
      const store = new RedisTokenStore({ client: connection, pubsub: false });
      await connection.set(store.tokenKey(await keyHash()), JSON.stringify(corrupt), { PX: 60_000 });
      await shared(store);
    } finally {
      connection.destroy();
      await redis.close();
    }
  });
});

test('a token store whose writes take 1.5 s (reads 0.1 s): the first background refresh installs its token though the store write outlasted the attempt bound (the token, fetched in time, was dropped and fetched again)', async () => {
  const memory = new MemoryTokenStore();
  const later = <T>(ms: number, value: () => Promise<T>): Promise<T> => new Promise((resolve, reject) => setTimeout(() => value().then(resolve, reject), ms));
  // A real store behind latency, as a distant or busy Redis: reads and leases 0.1 s, writes 1.5 s.
  const distant: TokenStore = {
    get: (key) => later(100, () => memory.get(key)),
    set: (key, token, ttl) => later(1_500, () => memory.set(key, token, ttl)),
    setIfNotNewer: (key, token, ttl) => later(1_500, () => memory.setIfNotNewer(key, token, ttl)),
    delete: (key, accessToken) => later(100, () => memory.delete(key, accessToken)),
    acquireLease: (key, ttl) => later(100, () => memory.acquireLease(key, ttl)),
  };
  const clock = manualClock();
  const client = new Client({ tokenUrl: stack.op.tokenUrl, clock, tokenStore: distant, tokenStoreTimeout: 3_000, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    const first = await client.clientCredentialsAuthManager.getToken(); // a fast answer: the background attempt bound is 1 s
    clock.set(first.expiry! * 1000 - 30_000); // stale
    const requests = client.stats().tokenRequests;
    const outcome = new Promise<string>((resolve) => {
      client.on('tokenRefreshed', () => resolve('refreshed'));
      client.on('refreshFailed', (e) => resolve(`failed: ${e.error.name}: ${e.error.message}`));
    });
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
    assert.equal(await outcome, 'refreshed');
    assert.equal(client.stats().tokenRequests - requests, 1);
    assert.notEqual((await client.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
  } finally {
    await client.close();
  }
});

test('a lease holder whose token request failed does not keep the lease object forever: 200 selections refused by the endpoint leave no lease behind in the Client (each one stayed in the store guard, a leak per failing selection)', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const memory = new MemoryTokenStore({ maxEntries: 10 });
  const leases: WeakRef<object>[] = [];
  // A real store; the test keeps a weak reference to every lease it hands out.
  const store: TokenStore = {
    get: (key) => memory.get(key),
    set: (key, token, ttl) => memory.set(key, token, ttl),
    delete: (key, accessToken) => memory.delete(key, accessToken),
    acquireLease: async (key, ttl) => {
      const lease = await memory.acquireLease(key, ttl);
      if (lease) leases.push(new WeakRef(lease));
      return lease;
    },
  };
  const client = new Client({ tokenUrl: stack.op.tokenUrl, tokenStore: store, maxCachedTokens: 10, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    for (let i = 0; i < 200; i++) {
      await assert.rejects(client.clientCredentialsAuthManager.getToken({ scopes: `api:admin x${i}` }), (error: { error?: string }) => error.error === 'invalid_scope');
    }
    assert.equal(leases.length, 200);
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    const alive = leases.filter((ref) => ref.deref() !== undefined).length;
    assert.ok(alive <= 10, `${alive} of 200 leases are still referenced`);
  } finally {
    await client.close();
  }
});
