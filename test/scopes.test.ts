// Tokens per scope set: a per-request `scopes` option selects a token; the cache key; the bounded LRU.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Client, type OAuthToken, type TokenStore } from '../src/index.js';
import { tokenKey } from '../src/auth/tokenKey.js';
import type { TokenRequestParameters } from '../src/auth/tokenEndpoint.js';
import { startStack, type Stack } from './helpers/fixtures.js';

let stack: Stack;

before(async () => {
  stack = await startStack();
});
after(() => stack.close());

const SECRET = 'svc-secret';

function makeClient(extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  return new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, oAuthScopes: 'api:read' },
    ...extra,
  });
}

const scopeOf = async (client: Client, scopes?: string | string[]): Promise<string> =>
  ((await client.get('/things', scopes === undefined ? {} : { scopes })).result as { scope: string }).scope;

const requestedScopes = (from: number): (string | null)[] => stack.op.tokenRequests.slice(from).map((r) => new URLSearchParams(r.body).get('scope'));

test('a per-request `scopes` selects its own token; the default scopes keep theirs', async () => {
  const client = makeClient();
  try {
    const base = stack.op.tokenRequests.length;
    assert.equal(await scopeOf(client), 'api:read');
    assert.equal(await scopeOf(client, 'api:write'), 'api:write');
    assert.equal(await scopeOf(client, 'api:read api:write'), 'api:read api:write');
    assert.deepEqual(requestedScopes(base), ['api:read', 'api:write', 'api:read api:write']);

    // the same sets again, in other spellings and orders: all cache hits
    assert.equal(await scopeOf(client), 'api:read');
    assert.equal(await scopeOf(client, ['api:write']), 'api:write');
    assert.equal(await scopeOf(client, 'api:write  api:read'), 'api:read api:write');
    assert.equal(await scopeOf(client, ['api:write', 'api:read']), 'api:read api:write');
    assert.equal(await scopeOf(client, 'api:read'), 'api:read', 'explicit default scopes share the default token');
    assert.equal(stack.op.tokenRequests.length - base, 3);
    assert.equal(client.stats().cachedTokens, 3);

    // the manager takes the same option
    const write = await client.clientCredentialsAuthManager.getToken({ scopes: 'api:write' });
    assert.equal(write.scope, 'api:write');
    assert.equal(stack.op.tokenRequests.length - base, 3);
  } finally {
    await client.close();
  }
});

test('a per-request `resource` or `audience` selects its own token, sent as RFC 8707 `resource` / `audience`', async () => {
  const client = makeClient();
  try {
    const base = stack.op.tokenRequests.length;
    const bodies = () => stack.op.tokenRequests.slice(base).map((r) => new URLSearchParams(r.body));
    await client.get('/things');
    const resource = stack.op.resource;
    const [a, b] = await Promise.all([client.get('/things', { resource }), client.get('/things', { resource: [resource] })]);
    assert.equal(a.statusCode, 200);
    assert.equal(b.statusCode, 200);
    assert.equal(stack.op.tokenRequests.length - base, 2, 'one token for the default, one shared by both spellings of the resource');
    assert.deepEqual(bodies().map((f) => f.getAll('resource')), [[], [resource]]);
    await client.get('/things', { audience: 'reports' });
    assert.equal(stack.op.tokenRequests.length - base, 3, 'an audience is a token of its own');
    assert.equal(bodies()[2]!.get('audience'), 'reports');
    await client.get('/things', { resource });
    await client.get('/things', { audience: 'reports' });
    assert.equal(stack.op.tokenRequests.length - base, 3, 'each is cached');
    assert.equal(client.stats().cachedTokens, 3);
    const viaManager = await client.clientCredentialsAuthManager.getToken({ resource });
    assert.equal(viaManager.accessToken, (await client.clientCredentialsAuthManager.getToken({ resource: [resource] })).accessToken);
    assert.throws(() => client.clientCredentialsAuthManager.invalidate({ resource: [''] }), { code: 'ERR_INVALID_OPTION' });
  } finally {
    await client.close();
  }
});

test('concurrent requests for several scope sets: one token request per set', async () => {
  const client = makeClient();
  try {
    const base = stack.op.tokenRequests.length;
    const sets = [undefined, 'api:write', 'api:read api:write'];
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => scopeOf(client, sets[i % 3])));
    assert.deepEqual(new Set(results), new Set(['api:read', 'api:write', 'api:read api:write']));
    assert.equal(stack.op.tokenRequests.length - base, 3);
  } finally {
    await client.close();
  }
});

test('the cache key includes token URL, client id, sorted scopes, resource, audience and extra parameters — and no secret', () => {
  const p = (over: Partial<TokenRequestParameters> = {}): TokenRequestParameters => ({ scopes: ['b', 'a'], resource: [], audience: undefined, extra: {}, ...over });
  const base = tokenKey('https://as/token', 'svc', p());
  assert.equal(tokenKey('https://as/token', 'svc', p({ scopes: ['a', 'b'] })).id, base.id, 'scope order does not matter');
  assert.equal(tokenKey('https://as/token', 'svc', p({ extra: { x: '1', y: '2' } })).id, tokenKey('https://as/token', 'svc', p({ extra: { y: '2', x: '1' } })).id);
  assert.equal(tokenKey('https://as/token', 'svc', p({ resource: ['r1', 'r2'] })).id, tokenKey('https://as/token', 'svc', p({ resource: ['r2', 'r1'] })).id);
  const variants = [
    tokenKey('https://other/token', 'svc', p()),
    tokenKey('https://as/token', 'svc2', p()),
    tokenKey('https://as/token', 'svc', p({ scopes: ['a'] })),
    tokenKey('https://as/token', 'svc', p({ scopes: ['a', 'b', 'c'] })),
    tokenKey('https://as/token', 'svc', p({ resource: ['https://api'] })),
    tokenKey('https://as/token', 'svc', p({ audience: 'https://api' })),
    tokenKey('https://as/token', 'svc', p({ extra: { tenant: 'x' } })),
    tokenKey('https://as/token', 'svc', p({ extra: { tenant: 'y' } })),
  ];
  // The full key (what stores see, hashed) changes with every component; the in-process id, scoped to one Client's
  // token URL and client id, changes with every other component.
  const hashes = new Set([base.hash, ...variants.map((k) => k.hash)]);
  assert.equal(hashes.size, variants.length + 1, 'every component changes the key');
  const ids = new Set([base.id, ...variants.slice(2).map((k) => k.id)]);
  assert.equal(ids.size, variants.length - 1, 'every request parameter changes the in-process id');
  // no ambiguity between components that could collide when joined naively
  assert.notEqual(tokenKey('https://as/token', 'a b', p({ scopes: [] })).hash, tokenKey('https://as/token', 'a', p({ scopes: ['b'] })).hash);
  assert.notEqual(tokenKey('https://as/t', 'oken svc', p()).hash, tokenKey('https://as/token', 'svc', p()).hash);
  // the request parameters read back from the key (scopes sorted, duplicates dropped)
  assert.deepEqual(tokenKey('https://as/token', 'svc', p({ scopes: ['b', 'a', 'b'], resource: ['r'], audience: 'x', extra: { t: '1' } })).parameters, { scopes: ['a', 'b'], resource: ['r'], audience: 'x', extra: { t: '1' } });
  assert.deepEqual(tokenKey('https://as/token', 'svc', p({ scopes: [] })).parameters, { scopes: [], resource: [], audience: undefined, extra: {} });
  assert.match(base.hash, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(base.hash, variants[0]!.hash);
});

test('the key a store and events see is a hash that holds no secret', async () => {
  const keys: string[] = [];
  const values = new Map<string, OAuthToken>();
  const store: TokenStore = {
    async get(key) { keys.push(key); return values.get(key); },
    async set(key, token) { keys.push(key); values.set(key, token); },
    async delete(key) { keys.push(key); values.delete(key); },
  };
  const client = makeClient({
    tokenStore: store,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, oAuthScopes: 'api:read', resource: stack.op.resource, tokenParameters: { tenant: 'blue' } },
  });
  const eventKeys: string[] = [];
  client.on('tokenFetched', (e) => eventKeys.push(e.key));
  try {
    await client.get('/things');
    await client.get('/things', { scopes: 'api:write' });
    assert.ok(keys.length >= 4);
    assert.equal(new Set(keys).size, 2);
    assert.deepEqual(new Set(eventKeys), new Set(keys));
    for (const key of [...keys, ...eventKeys]) {
      assert.match(key, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!key.includes(SECRET));
    }
    const everything = JSON.stringify([...values.keys()]) + inspect(client) + JSON.stringify(client) + JSON.stringify(client.stats());
    assert.ok(!everything.includes(SECRET));
  } finally {
    await client.close();
  }
});

test('the cache is an LRU bounded by maxCachedTokens', async () => {
  const client = makeClient({ maxCachedTokens: 2 });
  try {
    const base = stack.op.tokenRequests.length;
    const A = undefined;
    const B = 'api:write';
    const C = 'api:read api:write';
    await scopeOf(client, A);
    await scopeOf(client, B);
    assert.equal(client.stats().cachedTokens, 2);
    await scopeOf(client, A); // A is now the most recently used
    assert.equal(stack.op.tokenRequests.length - base, 2);
    await scopeOf(client, C); // evicts B, the least recently used
    assert.equal(client.stats().cachedTokens, 2);
    assert.equal(stack.op.tokenRequests.length - base, 3);
    await scopeOf(client, A);
    await scopeOf(client, C);
    assert.equal(stack.op.tokenRequests.length - base, 3, 'A and C are still cached');
    await scopeOf(client, B);
    assert.equal(stack.op.tokenRequests.length - base, 4, 'B was evicted and is fetched again');
    assert.deepEqual(requestedScopes(base), ['api:read', 'api:write', 'api:read api:write', 'api:write']);
  } finally {
    await client.close();
  }
});

test('the default bound is 1,000 tokens', async () => {
  let calls = 0;
  const client = new Client({
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'svc',
      oAuthTokenProvider: () => ({ accessToken: `t${++calls}`, tokenType: 'Bearer', expiresIn: 3600 }),
    },
  });
  try {
    for (let i = 0; i < 1_050; i++) await client.clientCredentialsAuthManager.getToken({ scopes: `s${i}` });
    assert.equal(calls, 1_050);
    assert.equal(client.stats().cachedTokens, 1_000);
    await client.clientCredentialsAuthManager.getToken({ scopes: 's1049' });
    assert.equal(calls, 1_050, 'the most recent is cached');
    await client.clientCredentialsAuthManager.getToken({ scopes: 's0' });
    assert.equal(calls, 1_051, 'the oldest was evicted');
  } finally {
    await client.close();
  }
});
