// Token stores: one contract for MemoryTokenStore, FileTokenStore and RedisTokenStore (node-redis and ioredis, against
// a real redis-server), then the Client with a store: shared tokens, callbacks, corrupt entries, clocks and outages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import {
  Client,
  ErrorCode,
  FileTokenStore,
  InvalidOptionError,
  MemoryTokenStore,
  TokenStoreError,
  defaultTokenFilePath,
  type ClientConfiguration,
  type ClientEvents,
  type OAuthToken,
  type TokenStore,
} from '../src/index.js';
import { RedisTokenStore } from '../src/stores/redis.js';
import { SVC_CREDENTIALS, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';

let redis: RedisHandle;
let stack: Stack;
let dir: string;
let nodeRedis: ReturnType<typeof createClient>;
let ioredis: Redis;

before(async () => {
  redis = await startRedis();
  stack = await startStack({ ttl: 60 });
  dir = await mkdtemp(path.join(tmpdir(), 'cc-stores-'));
  nodeRedis = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
  nodeRedis.on('error', () => undefined);
  await nodeRedis.connect();
  ioredis = new Redis(redis.url, { retryStrategy: () => 100, maxRetriesPerRequest: 1 });
  ioredis.on('error', () => undefined);
});

after(async () => {
  nodeRedis?.destroy();
  ioredis?.disconnect();
  await stack?.close();
  await redis?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

function token(accessToken: string, lifetimeSeconds = 60): OAuthToken {
  return { accessToken, tokenType: 'Bearer', expiresIn: lifetimeSeconds, expiry: Math.floor(Date.now() / 1000) + lifetimeSeconds, scope: 'api:read' };
}

/** A store under test, plus a way to corrupt and to read its raw entry from outside. */
interface StoreFixture {
  store: TokenStore & { close?(): Promise<void> };
  corrupt(key: string): Promise<void>;
  close(): Promise<void>;
}

const fixtures: Record<string, () => Promise<StoreFixture>> = {
  memory: async () => {
    const store = new MemoryTokenStore();
    return {
      store,
      corrupt: async (key) => store.set(key, { accessToken: 42 } as unknown as OAuthToken, 60_000),
      close: async () => {},
    };
  },
  file: async () => {
    const file = path.join(dir, unique('contract'), 'tokens.json');
    const store = new FileTokenStore({ path: file });
    return {
      store,
      corrupt: async () => {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, '{"version":1,"entries":', { mode: 0o600 });
      },
      close: async () => {},
    };
  },
  'redis (node-redis)': async () => {
    const store = new RedisTokenStore({ client: nodeRedis, prefix: `${unique('nr')}:` });
    return {
      store,
      corrupt: async (key) => {
        await nodeRedis.set(store.tokenKey(key), '{"accessToken":', { PX: 60_000 });
      },
      close: () => store.close(),
    };
  },
  'redis (ioredis)': async () => {
    const store = new RedisTokenStore({ client: ioredis, prefix: `${unique('io')}:` });
    return {
      store,
      corrupt: async (key) => {
        await ioredis.set(store.tokenKey(key), 'not json at all', 'PX', 60_000);
      },
      close: () => store.close(),
    };
  },
};

for (const [kind, make] of Object.entries(fixtures)) {
  describe(`TokenStore contract: ${kind}`, () => {
    let f: StoreFixture;
    before(async () => {
      f = await make();
    });
    after(() => f.close());

    test('get of a missing key is undefined; set then get gives the token back with its absolute expiry', async () => {
      assert.equal(await f.store.get('missing'), undefined);
      const t = token('at-1');
      await f.store.set('k1', t, 60_000);
      assert.deepEqual(await f.store.get('k1'), t);
      assert.equal((await f.store.get('k1'))!.expiry, t.expiry);
    });

    test('an entry is gone after its TTL', async () => {
      await f.store.set('short', token('at-short'), 80);
      assert.ok(await f.store.get('short'));
      await sleep(200);
      assert.equal(await f.store.get('short'), undefined);
    });

    test('delete removes; delete with an access token removes only that token (compare-and-delete)', async () => {
      await f.store.set('d', token('at-d1'), 60_000);
      await f.store.delete('d');
      assert.equal(await f.store.get('d'), undefined);
      await f.store.set('d', token('at-d2'), 60_000);
      await f.store.delete('d', 'at-other');
      assert.equal((await f.store.get('d'))?.accessToken, 'at-d2', 'a newer token is kept');
      await f.store.delete('d', 'at-d2');
      assert.equal(await f.store.get('d'), undefined);
      await f.store.delete('never-there', 'x');
    });

    test('a corrupt entry reads as undefined and is overwritten by the next set', async () => {
      await f.corrupt('c');
      assert.equal(await f.store.get('c'), undefined);
      await f.store.set('c', token('at-c'), 60_000);
      assert.equal((await f.store.get('c'))?.accessToken, 'at-c');
    });

    test('a stored value without a numeric expiry is not a token', async () => {
      await f.store.set('noexp', { accessToken: 'at-noexp', tokenType: 'Bearer' }, 60_000);
      assert.equal(await f.store.get('noexp'), undefined);
    });

    test('a lease is exclusive until released', async () => {
      const first = await f.store.acquireLease!('lease-1', 5_000);
      assert.ok(first);
      assert.equal(await f.store.acquireLease!('lease-1', 5_000), undefined);
      assert.ok(await f.store.acquireLease!('lease-other', 5_000), 'leases are per key');
      await first.release();
      const again = await f.store.acquireLease!('lease-1', 5_000);
      assert.ok(again);
      await again.release();
    });

    test('an expired lease is taken over; the old holder can neither release nor extend the new one', async () => {
      const slow = await f.store.acquireLease!('lease-2', 100);
      assert.ok(slow);
      await sleep(250);
      const next = await f.store.acquireLease!('lease-2', 5_000);
      assert.ok(next, 'taken over after expiry');
      await slow.release();
      assert.equal(await f.store.acquireLease!('lease-2', 5_000), undefined, "the slow holder did not release the new holder's lease");
      assert.equal(await slow.extend!(5_000), false);
      assert.equal(await next.extend!(5_000), true);
      await next.release();
      assert.ok(await f.store.acquireLease!('lease-2', 5_000));
    });

    test('extend keeps a lease past its first TTL', async () => {
      const lease = await f.store.acquireLease!('lease-3', 200);
      assert.ok(lease);
      await sleep(100);
      assert.equal(await lease.extend!(2_000), true);
      await sleep(250);
      assert.equal(await f.store.acquireLease!('lease-3', 5_000), undefined);
      await lease.release();
    });

    if (kind !== 'file') {
      test('waitForToken wakes as soon as the token is stored, and otherwise returns after its timeout', async () => {
        const t0 = Date.now();
        await f.store.waitForToken!('w-none', 150);
        const waited = Date.now() - t0;
        assert.ok(waited >= 60 && waited < 1_000, `timed out after ${waited} ms`);
        const t1 = Date.now();
        const waiting = f.store.waitForToken!('w', 5_000);
        setTimeout(() => void f.store.set('w', token('at-w'), 60_000), 300);
        await waiting;
        const woke = Date.now() - t1;
        assert.ok(woke >= 250 && woke < 1_500, `woke after ${woke} ms`);
      });
    }
  });
}

describe('MemoryTokenStore', () => {
  test('is bounded: the least recently used entry goes first', async () => {
    const store = new MemoryTokenStore({ maxEntries: 2 });
    await store.set('a', token('at-a'), 60_000);
    await store.set('b', token('at-b'), 60_000);
    await store.get('a');
    await store.set('c', token('at-c'), 60_000);
    assert.equal(store.size, 2);
    assert.equal(await store.get('b'), undefined);
    assert.ok(await store.get('a'));
    assert.ok(await store.get('c'));
  });

  test('TTLs run on the injected clock; returned tokens are copies; inspect shows no token', async () => {
    let now = 1_000_000;
    const store = new MemoryTokenStore({ now: () => now });
    await store.set('k', token('at-secret-value'), 10_000);
    const got = await store.get('k');
    got!.accessToken = 'changed';
    assert.equal((await store.get('k'))!.accessToken, 'at-secret-value');
    assert.ok(!inspect(store, { depth: 5, showHidden: true }).includes('at-secret-value'));
    assert.ok(!JSON.stringify(store).includes('at-secret-value'));
    now += 10_000;
    assert.equal(await store.get('k'), undefined);
  });

  test('rejects invalid options by name', () => {
    assert.throws(() => new MemoryTokenStore({ maxEntries: 0 }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'MemoryTokenStore.maxEntries');
    assert.throws(() => new MemoryTokenStore({ leaseTtl: -1 }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'MemoryTokenStore.leaseTtl');
  });
});

describe('FileTokenStore', () => {
  test('writes the file with mode 0600 in a directory it creates with mode 0700, atomically (no temp files left)', async () => {
    const base = path.join(dir, unique('modes'));
    const file = path.join(base, 'nested', 'tokens.json');
    const store = new FileTokenStore({ path: file });
    await store.set('k', token('at-file'), 60_000);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    const data = JSON.parse(await readFile(file, 'utf8')) as { version: number; entries: Record<string, { token: OAuthToken; expiresAt: number }> };
    assert.equal(data.version, 1);
    assert.equal(data.entries['k']!.token.accessToken, 'at-file');
    const { readdir } = await import('node:fs/promises');
    assert.deepEqual(await readdir(path.dirname(file)), ['tokens.json']);
  });

  test('concurrent writers from one process lose no entry (write lock)', async () => {
    const file = path.join(dir, unique('concurrent'), 'tokens.json');
    const stores = Array.from({ length: 4 }, () => new FileTokenStore({ path: file }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 4]!.set(`k${i}`, token(`at-${i}`), 60_000)));
    for (let i = 0; i < 20; i++) assert.equal((await stores[0]!.get(`k${i}`))?.accessToken, `at-${i}`);
  });

  test('a lease file left by a dead holder is taken over once expired; a live one is respected', async () => {
    const file = path.join(dir, unique('stale'), 'tokens.json');
    await mkdir(path.dirname(file), { recursive: true });
    const store = new FileTokenStore({ path: file });
    const leaseFile = `${file}.key.lease`;
    await writeFile(leaseFile, JSON.stringify({ owner: 'dead:1:x', pid: 1, host: 'h', expiresAt: Date.now() + 60_000 }));
    assert.equal(await store.acquireLease('key', 1_000), undefined, 'a live lease is respected');
    await writeFile(leaseFile, JSON.stringify({ owner: 'dead:1:x', pid: 1, host: 'h', expiresAt: Date.now() - 1 }));
    const lease = await store.acquireLease('key', 1_000);
    assert.ok(lease, 'an expired lease is taken over');
    assert.match(await readFile(leaseFile, 'utf8'), new RegExp(`:${process.pid}:`));
    await lease.release();
    await assert.rejects(stat(leaseFile), { code: 'ENOENT' });
  });

  test('a write lock left by a dead writer is taken over', async () => {
    const file = path.join(dir, unique('stalelock'), 'tokens.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.lock`, JSON.stringify({ owner: 'dead:1:y', pid: 1, host: 'h', expiresAt: Date.now() - 1 }));
    const store = new FileTokenStore({ path: file, lockTimeout: 500 });
    await store.set('k', token('at-after-stale-lock'), 60_000);
    assert.equal((await store.get('k'))?.accessToken, 'at-after-stale-lock');
  });

  test('a write lock held by a live writer makes a write fail after lockTimeout (the Client then goes on without the store)', async () => {
    const file = path.join(dir, unique('busylock'), 'tokens.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.lock`, JSON.stringify({ owner: 'live:1:z', pid: 1, host: 'h', expiresAt: Date.now() + 60_000 }));
    const store = new FileTokenStore({ path: file, lockTimeout: 100 });
    await assert.rejects(store.set('k', token('at-x'), 60_000), (e: unknown) => e instanceof TokenStoreError && e.code === ErrorCode.TokenStore);
  });

  test('defaultTokenFilePath: $XDG_CACHE_HOME, else ~/.cache', () => {
    assert.equal(defaultTokenFilePath({ XDG_CACHE_HOME: '/x/cache' }, '/home/u'), '/x/cache/client-credentials/tokens.json');
    assert.equal(defaultTokenFilePath({}, '/home/u'), '/home/u/.cache/client-credentials/tokens.json');
    assert.equal(defaultTokenFilePath({ XDG_CACHE_HOME: 'relative' }, '/home/u'), '/home/u/.cache/client-credentials/tokens.json', 'a relative XDG path is ignored, as the spec says');
    assert.equal(new FileTokenStore().path, defaultTokenFilePath());
  });
});

/** Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, mod 16384. */
function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

function makeClient(extra: Partial<ClientConfiguration> = {}): Client {
  return new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clientCredentialsAuthCredentials: SVC_CREDENTIALS,
    ...extra,
  });
}

async function getAll(client: Client, n: number): Promise<void> {
  const responses = await Promise.all(Array.from({ length: n }, () => client.get('/things')));
  for (const r of responses) assert.equal(r.statusCode, 200);
}

/** The bearer tokens the API received from request index `from` on. */
function tokensSeen(from: number): Set<string> {
  return new Set(stack.api.requests.slice(from).map((r) => String(r.headers.authorization).replace(/^Bearer /, '')));
}

describe('RedisTokenStore', () => {
  test('detects node-redis and ioredis by shape and rejects anything else by name', async () => {
    assert.equal(new RedisTokenStore({ client: nodeRedis }).library, 'node-redis');
    assert.equal(new RedisTokenStore({ client: ioredis }).library, 'ioredis');
    assert.throws(() => new RedisTokenStore({ client: {} as never }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'RedisTokenStore.client');
    assert.throws(() => new RedisTokenStore({ client: nodeRedis, prefix: 'a{b}:' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'RedisTokenStore.prefix');
  });

  test('the pub/sub subscriber it opens is closed by close(), or when the caller closes its own client', async () => {
    const numsub = async (channel: string): Promise<number> => Number(((await nodeRedis.sendCommand(['PUBSUB', 'NUMSUB', channel])) as unknown[])[1]);
    for (const library of ['node-redis', 'ioredis'] as const) {
      const own = library === 'node-redis' ? createClient({ url: redis.url }) : new Redis(redis.url);
      own.on('error', () => undefined);
      if (library === 'node-redis') await (own as ReturnType<typeof createClient>).connect();
      const store = new RedisTokenStore({ client: own, prefix: `${unique('sub')}:` });
      await store.waitForToken('k', 500);
      assert.equal(await numsub(store.channel), 1, `${library}: one subscriber`);
      if (library === 'node-redis') (own as ReturnType<typeof createClient>).destroy();
      else (own as Redis).disconnect();
      const deadline = Date.now() + 3_000;
      while ((await numsub(store.channel)) !== 0 && Date.now() < deadline) await sleep(20);
      assert.equal(await numsub(store.channel), 0, `${library}: the subscriber closed with the client`);

      const again = new RedisTokenStore({ client: nodeRedis, prefix: `${unique('sub')}:` });
      await again.waitForToken('k', 500);
      assert.equal(await numsub(again.channel), 1);
      await again.close();
      const until = Date.now() + 3_000;
      while ((await numsub(again.channel)) !== 0 && Date.now() < until) await sleep(20);
      assert.equal(await numsub(again.channel), 0, 'close() closes it');
    }
  });

  test('is the `client-credentials/redis` subpath export', async () => {
    const specifier = 'oauth-client-credentials/redis';
    const module = (await import(specifier)) as { RedisTokenStore: unknown };
    assert.equal(module.RedisTokenStore, RedisTokenStore);
  });

  test('keys: prefix + {hash} with the lease in the same cluster slot, no secret in any key, PX TTL and absolute expiry in the value', async () => {
    assert.equal(keySlot('foo'), 12182, 'CRC16 sanity check against the Redis Cluster specification');
    const prefix = `${unique('keys')}:`;
    const store = new RedisTokenStore({ client: nodeRedis, prefix });
    const client = makeClient({ tokenStore: store });
    try {
      await getAll(client, 5);
      const keys = await nodeRedis.keys(`${prefix}*`);
      assert.equal(keys.length, 1);
      const key = keys[0]!;
      assert.match(key, new RegExp(`^${prefix}\\{[A-Za-z0-9_-]{43}\\}$`));
      const hash = key.slice(prefix.length + 1, -1);
      assert.equal(store.tokenKey(hash), key);
      assert.equal(keySlot(store.leaseKey(hash)), keySlot(key));
      for (const k of keys) for (const secret of ['svc-secret', 'svc', 'api:read']) assert.ok(!k.includes(secret));
      const stored = JSON.parse((await nodeRedis.get(key))!) as OAuthToken;
      assert.equal(typeof stored.expiry, 'number');
      assert.ok(Math.abs(stored.expiry! - (Date.now() / 1000 + 60)) < 5, 'absolute unix-seconds expiry');
      const pttl = await nodeRedis.pTTL(key);
      assert.ok(pttl > 50_000 && pttl <= 60_000, `PX TTL ${pttl}`);
      assert.equal(await nodeRedis.exists(store.leaseKey(hash)), 0, 'the lease was released');
    } finally {
      await client.close();
      await store.close();
    }
  });
});

describe('Client with a token store', () => {
  test('checks the store by shape at construction and names what is missing or wrong', () => {
    const get = async () => undefined;
    const set = async () => undefined;
    const cases: [unknown, string, RegExp][] = [
      ['redis://localhost', 'tokenStore', /must be a TokenStore object/],
      [{ get, set }, 'tokenStore', /must have a `delete` method/],
      [{ get, delete: set }, 'tokenStore', /must have a `set` method/],
      [{ get, set, delete: set, acquireLease: true }, 'tokenStore', /`acquireLease` that is not a function/],
      [{ get, set, delete: set, waitForToken: 'pubsub' }, 'tokenStore', /`waitForToken` that is not a function/],
      [{ get, set, delete: set, leaseTtl: 0 }, 'tokenStore.leaseTtl', /positive number of milliseconds/],
      [{ get, set, delete: set, leaseWait: Number.NaN }, 'tokenStore.leaseWait', /positive number of milliseconds/],
      // Past Node's timer limit a wait would end after 1 ms.
      [{ get, set, delete: set, leaseWait: 2 ** 31 }, 'tokenStore.leaseWait', /at most 2147483647/],
      [{ get, set, delete: set, leaseTtl: 2 ** 31 }, 'tokenStore.leaseTtl', /at most 2147483647/],
    ];
    for (const [tokenStore, option, message] of cases) {
      assert.throws(
        () => makeClient({ tokenStore: tokenStore as TokenStore }),
        (e: unknown) => e instanceof InvalidOptionError && e.option === option && message.test(e.message),
        `${option}: ${inspect(tokenStore)}`,
      );
    }
    for (const name of ['leaseTtl', 'leaseWait', 'lockTimeout'] as const) {
      assert.throws(() => new FileTokenStore({ path: path.join(tmpdir(), 'never-written.json'), [name]: 2 ** 31 }), (e: unknown) => e instanceof InvalidOptionError && e.option === `FileTokenStore.${name}`);
    }
    for (const name of ['leaseTtl', 'leaseWait'] as const) {
      assert.throws(() => new MemoryTokenStore({ [name]: 2 ** 31 }), (e: unknown) => e instanceof InvalidOptionError && e.option === `MemoryTokenStore.${name}`);
    }
    assert.equal(new MemoryTokenStore({ leaseWait: 2_147_483_647 }).leaseWait, 2_147_483_647);
    // A store with only the three required methods is enough.
    const plain = makeClient({ tokenStore: { get, set, delete: set } });
    void plain.close();
  });

  test('two Clients sharing one MemoryTokenStore make one token request between them', async () => {
    const tokenStore = new MemoryTokenStore();
    const a = makeClient({ tokenStore });
    const b = makeClient({ tokenStore });
    const tokenRequests = tokenRequestCounter(stack.op);
    const seen = stack.api.requests.length;
    await Promise.all([getAll(a, 50), getAll(b, 50)]);
    assert.equal(tokenRequests(), 1);
    assert.equal(tokensSeen(seen).size, 1);
    assert.equal(a.stats().tokenRequests + b.stats().tokenRequests, 1);
    assert.equal(a.stats().storeHits + b.stats().storeHits, 1);
    await a.close();
    await b.close();
  });

  test('oAuthOnTokenUpdate fires for a token taken from the store; oAuthTokenProvider still decides', async () => {
    const tokenStore = new MemoryTokenStore();
    const first = makeClient({ tokenStore });
    await getAll(first, 1);
    const updates: OAuthToken[] = [];
    const fetched: ClientEvents['tokenFetched'][] = [];
    const second = makeClient({
      tokenStore,
      clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, oAuthOnTokenUpdate: (t) => updates.push(t) },
    });
    second.on('tokenFetched', (e) => fetched.push(e));
    const tokenRequests = tokenRequestCounter(stack.op);
    await getAll(second, 3);
    assert.equal(tokenRequests(), 0, 'no token request: the store had it');
    assert.equal(updates.length, 1);
    assert.equal(updates[0]!.accessToken, (await first.clientCredentialsAuthManager.getToken()).accessToken);
    assert.equal(fetched[0]!.source, 'store');

    // With a provider, the provider supplies what the store lacks (the endpoint is reached only through it), and
    // its token is stored for the others: a Client sharing the store finds it there and asks its own provider nothing.
    const providerStore = new MemoryTokenStore();
    let seenByProvider: OAuthToken | undefined | 'not called' = 'not called';
    const provided = makeClient({
      tokenStore: providerStore,
      clientCredentialsAuthCredentials: {
        ...SVC_CREDENTIALS,
        oAuthTokenProvider: async (current, manager) => {
          seenByProvider = current;
          return manager.fetchToken();
        },
      },
    });
    await getAll(provided, 2);
    assert.equal(seenByProvider, undefined, 'the provider was asked, with no current token');
    assert.equal(provided.stats().tokenRequests, 1);
    let asked = 0;
    const sharing = makeClient({
      tokenStore: providerStore,
      clientCredentialsAuthCredentials: {
        ...SVC_CREDENTIALS,
        oAuthTokenProvider: async (_current, manager) => {
          asked++;
          return manager.fetchToken();
        },
      },
    });
    await getAll(sharing, 2);
    assert.equal(asked, 0);
    assert.equal((await sharing.clientCredentialsAuthManager.getToken()).accessToken, (await provided.clientCredentialsAuthManager.getToken()).accessToken);
    await Promise.all([first.close(), second.close(), provided.close(), sharing.close()]);
  });

  test('a corrupt Redis entry is ignored and overwritten with the new token', async () => {
    const prefix = `${unique('corrupt')}:`;
    const store = new RedisTokenStore({ client: ioredis, prefix });
    const client = makeClient({ tokenStore: store });
    const events: ClientEvents['storeError'][] = [];
    client.on('storeError', (e) => events.push(e));
    const key = store.tokenKey(await keyHashOf(makeClient));
    await ioredis.set(key, '{"accessToken": tru', 'PX', 60_000);
    const tokenRequests = tokenRequestCounter(stack.op);
    await getAll(client, 3);
    assert.equal(tokenRequests(), 1);
    const stored = JSON.parse((await ioredis.get(key))!) as OAuthToken;
    assert.equal(typeof stored.accessToken, 'string');
    assert.equal(events.length, 0, 'a corrupt entry is not a store failure');
    await client.close();
    await store.close();
  });

  test('clocks: a stored token carries its absolute expiry; no Client uses it past expiry − clockSkew by its own clock', async () => {
    const tokenStore = new MemoryTokenStore();
    const writer = makeClient({ tokenStore });
    await getAll(writer, 1);
    const stored = (await writer.clientCredentialsAuthManager.getToken()).expiry!;
    const SKEW = 10;

    // A machine whose clock is 51 s ahead: for it the token is inside its last 10 s (expiry − skew has passed).
    const ahead = makeClient({
      tokenStore,
      clock: { now: () => stored * 1000 - (SKEW - 1) * 1000 },
      clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, clockSkew: SKEW },
    });
    // A machine whose clock is 40 s ahead: expiry − skew is still 10 s away.
    const behind = makeClient({
      tokenStore,
      clock: { now: () => stored * 1000 - (SKEW + 10) * 1000 },
      clientCredentialsAuthCredentials: { ...SVC_CREDENTIALS, clockSkew: SKEW },
    });
    const writerToken = (await writer.clientCredentialsAuthManager.getToken()).accessToken;
    const tokenRequests = tokenRequestCounter(stack.op);
    assert.equal((await behind.clientCredentialsAuthManager.getToken()).accessToken, writerToken, 'usable before expiry − skew');
    assert.equal(tokenRequests(), 0);
    const aheadToken = await ahead.clientCredentialsAuthManager.getToken();
    assert.notEqual(aheadToken.accessToken, writerToken, 'not used past expiry − skew');
    assert.equal(tokenRequests(), 1);
    assert.ok(aheadToken.expiry! * 1000 - SKEW * 1000 > stored * 1000 - (SKEW - 1) * 1000, 'the new token is usable on the fast clock');
    await Promise.all([writer.close(), ahead.close(), behind.close()]);
  });

  test('a 401 drops the stored token only if it is still that token (compare-and-delete), then the fleet shares the new one', async () => {
    const prefix = `${unique('revoke')}:`;
    const a = makeClient({ tokenStore: new RedisTokenStore({ client: nodeRedis, prefix }) });
    const b = makeClient({ tokenStore: new RedisTokenStore({ client: ioredis, prefix }) });
    await getAll(a, 1);
    await getAll(b, 1);
    const old = (await a.clientCredentialsAuthManager.getToken()).accessToken;
    assert.equal((await b.clientCredentialsAuthManager.getToken()).accessToken, old);
    stack.api.revoke(old);
    const tokenRequests = tokenRequestCounter(stack.op);
    await getAll(a, 1); // 401 → drops `old` here and in Redis → fetches and stores a new one
    await getAll(b, 1); // 401 → Redis already holds the new token: no token request
    assert.equal(tokenRequests(), 1);
    assert.equal((await b.clientCredentialsAuthManager.getToken()).accessToken, (await a.clientCredentialsAuthManager.getToken()).accessToken);
    await Promise.all([a.close(), b.close()]);
  });

  test('Redis down: requests keep succeeding on the in-process cache and storeError carries no secret; Redis back: it is used again', async () => {
    const prefix = `${unique('outage')}:`;
    const store = new RedisTokenStore({ client: nodeRedis, prefix });
    const client = makeClient({ tokenStore: store, tokenStoreTimeout: 300 });
    const errors: ClientEvents['storeError'][] = [];
    client.on('storeError', (e) => errors.push(e));
    try {
      await redis.stop({ hard: true });
      await getAll(client, 20);
      assert.ok(errors.length >= 1);
      for (const e of errors) {
        assert.equal(e.error.name, 'TokenStoreError');
        assert.equal((e.error as TokenStoreError).code, ErrorCode.TokenStore);
        for (const text of [e.error.message, inspect(e, { depth: 10 }), JSON.stringify(e)]) assert.ok(!text.includes('svc-secret'));
      }
      await redis.start();
      const deadline = Date.now() + 10_000;
      while (!nodeRedis.isReady && Date.now() < deadline) await sleep(20);
      assert.ok(nodeRedis.isReady, 'node-redis reconnected');
      await sleep(1_100); // the store's back-off after the last failure
      client.clientCredentialsAuthManager.invalidate();
      await getAll(client, 1);
      const keys = await nodeRedis.keys(`${prefix}*`);
      assert.equal(keys.length, 1, 'the new token went to Redis again');
      const other = makeClient({ tokenStore: new RedisTokenStore({ client: ioredis, prefix }) });
      const tokenRequests = tokenRequestCounter(stack.op);
      await getAll(other, 5);
      assert.equal(tokenRequests(), 0, 'another Client shares it again');
      await other.close();
    } finally {
      if (!redis.running) await redis.start();
      await client.close();
      await store.close();
    }
  });

  test('Redis hanging (CLIENT PAUSE) mid-fetch: the lease holder\'s callers wait for at most one tokenStoreTimeout, and no request fails', async () => {
    const prefix = `${unique('hang')}:`;
    const store = new RedisTokenStore({ client: nodeRedis, prefix });
    // Without Redis a token takes ~300 ms here, far inside the 2 s request timeout: Redis hanging must not change that
    // outcome. The holder's store write may cost one tokenStoreTimeout (1 s); waiting out its lease release as well
    // would cost a second one, and the requests would time out.
    const client = makeClient({ tokenUrl: stack.proxiedTokenUrl, tokenStore: store, tokenStoreTimeout: 1_000, timeout: 2_000 });
    const admin = createClient({ url: redis.url });
    admin.on('error', () => undefined);
    await admin.connect();
    const errors: ClientEvents['storeError'][] = [];
    client.on('storeError', (e) => errors.push(e));
    const PAUSE = 3_000;
    let pausedAt = 0;
    try {
      const sent = stack.proxy.requests;
      stack.proxy.inject({ kind: 'delay', ms: 300 }, 1);
      const started = Date.now();
      const pending = Promise.allSettled(Array.from({ length: 5 }, () => client.get('/things')));
      while (stack.proxy.requests === sent && Date.now() - started < 5_000) await sleep(5);
      assert.equal(stack.proxy.requests, sent + 1, 'the lease holder sent its token request');
      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE), 'ALL']);
      pausedAt = Date.now();
      const results = await pending;
      const elapsed = Date.now() - started;
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
      assert.deepEqual(failed, [], `requests failed after ${elapsed} ms`);
      assert.ok(errors.some((e) => e.operation === 'set'), 'the holder\'s write timed out; the Client went on');
      for (const e of errors) assert.ok(['set', 'release'].includes(e.operation), e.operation);
    } finally {
      stack.proxy.clear();
      if (pausedAt) await sleep(Math.max(0, pausedAt + PAUSE + 50 - Date.now()));
      admin.destroy();
      await client.close();
      await store.close();
    }
  });
});

/** The store key (cache key hash) a Client with the default test credentials uses, from its `tokenFetched` event. */
async function keyHashOf(make: typeof makeClient): Promise<string> {
  const client = make();
  let hash: string | undefined;
  client.on('tokenFetched', (e) => {
    hash = e.key;
  });
  await client.clientCredentialsAuthManager.getToken();
  await client.close();
  assert.ok(hash);
  return hash;
}
