/**
 * The token's life in a Client, against oidc-provider and a protected API: the first fetch, reuse until expiry,
 * clock skew (and its clamp), expiry anchored at the moment the request was sent, preset tokens,
 * `oAuthTokenProvider`, `oAuthOnTokenUpdate`, JSON-safe tokens, and one real expiry with a 2 s TTL.
 * Expiry arithmetic runs on an injected clock; `refreshAhead: 0` keeps background refreshes out of the way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, ClientCredentialsAuthManager, ErrorCode, TokenExpiredError, type ClientConfiguration, type OAuthToken } from '../src/index.js';
import { bearerTokens, directToken, manualClock, startStack, tokenRequestCounter, waitUntil, type ManualClock, type Stack } from './helpers/fixtures.js';

const TTL = 60;
let stack: Stack;
const clients: Client[] = [];

before(async () => {
  stack = await startStack({ ttl: TTL });
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stack.close();
});

function makeClient(clock: ManualClock, credentials: Partial<NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>> = {}, config: Partial<ClientConfiguration> = {}): Client {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clock,
    refreshAhead: 0,
    ...config,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', ...credentials },
  });
  clients.push(client);
  return client;
}

/** The expiry (unix seconds) of every token the client obtained, from its `tokenFetched` events. */
function fetchedExpiries(client: Client): (number | undefined)[] {
  const expiries: (number | undefined)[] = [];
  client.on('tokenFetched', (e) => expiries.push(Math.floor(e.expiresAtMs / 1000)));
  return expiries;
}

describe('fetching and reusing the token', () => {
  test('the first authenticated call POSTs grant_type=client_credentials with the scopes and client authentication', async () => {
    const clock = manualClock();
    const client = makeClient(clock, { oAuthScopes: ['api:read', 'api:write'] });
    const count = tokenRequestCounter(stack.op);
    assert.equal(count(), 0, 'constructing a Client fetches nothing');

    const res = await client.get<{ client_id: string; scope: string }>('/things');
    assert.equal(res.statusCode, 200);
    assert.equal(res.result.client_id, 'svc');
    assert.equal(res.result.scope, 'api:read api:write', 'the API saw a token carrying the requested scopes');

    assert.equal(count(), 1);
    const sent = stack.op.tokenRequests.at(-1)!;
    assert.equal(sent.method, 'POST');
    assert.match(String(sent.headers['content-type']), /^application\/x-www-form-urlencoded/);
    const form = new URLSearchParams(sent.body);
    assert.equal(form.get('grant_type'), 'client_credentials');
    assert.equal(form.get('scope'), 'api:read api:write');
    assert.match(String(sent.headers.authorization), /^Basic /);

    await client.get('/things');
    await client.get('/things');
    assert.equal(count(), 1, 'the token is reused');
  });

  test('scopes given as a space-separated string are sent too', async () => {
    const client = makeClient(manualClock(), { oAuthScopes: 'api:write' });
    const res = await client.get<{ scope: string }>('/things');
    assert.equal(new URLSearchParams(stack.op.tokenRequests.at(-1)!.body).get('scope'), 'api:write');
    assert.equal(res.result.scope, 'api:write');
  });

  test('the token is reused until it expires, then fetched again', async () => {
    const clock = manualClock();
    const t0 = clock.now();
    const client = makeClient(clock);
    const expiries = fetchedExpiries(client);
    const count = tokenRequestCounter(stack.op);

    await client.get('/things');
    assert.equal(count(), 1);
    assert.deepEqual(expiries, [t0 / 1000 + TTL]);
    const first = bearerTokens(stack.api).at(-1);

    clock.set(t0 + TTL * 1000 - 1);
    await client.get('/things');
    assert.equal(count(), 1, 'one millisecond before expiry the token is still used');
    assert.equal(bearerTokens(stack.api).at(-1), first);

    clock.set(t0 + TTL * 1000);
    await client.get('/things');
    assert.equal(count(), 2, 'at expiry a new token is fetched');
    const second = bearerTokens(stack.api).at(-1);
    assert.notEqual(second, first);
    assert.deepEqual(expiries, [t0 / 1000 + TTL, t0 / 1000 + 2 * TTL]);

    await client.get('/things');
    assert.equal(count(), 2);
  });
});

describe('clock skew', () => {
  for (const name of ['clockSkew', 'oAuthClockSkew'] as const) {
    test(`${name} (seconds) is subtracted from the expiry`, async () => {
      const clock = manualClock();
      const t0 = clock.now();
      const client = makeClient(clock, { [name]: 10 });
      const count = tokenRequestCounter(stack.op);
      await client.get('/things');

      clock.set(t0 + (TTL - 10) * 1000 - 1);
      await client.get('/things');
      assert.equal(count(), 1, 'still valid just before expiry − skew');
      clock.set(t0 + (TTL - 10) * 1000);
      await client.get('/things');
      assert.equal(count(), 2, 'expired at expiry − skew');

      const manager = client.clientCredentialsAuthManager;
      const token: OAuthToken = { accessToken: 'x', tokenType: 'Bearer', expiresIn: TTL, expiry: t0 / 1000 + 100 };
      clock.set(t0 + 90_000 - 1);
      assert.equal(manager.isExpired(token), false);
      clock.set(t0 + 90_000);
      assert.equal(manager.isExpired(token), true, 'isExpired applies the same skew');
    });
  }

  test('a clock skew longer than the token lifetime is clamped to half the lifetime: calls succeed with one fetch', async () => {
    const clock = manualClock();
    const t0 = clock.now();
    const client = makeClient(clock, { clockSkew: 3600 });
    const count = tokenRequestCounter(stack.op);
    for (let i = 0; i < 5; i++) assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(count(), 1, 'the skew does not make every fetched token look expired');

    clock.set(t0 + (TTL / 2) * 1000 - 1);
    await client.get('/things');
    assert.equal(count(), 1);
    clock.set(t0 + (TTL / 2) * 1000);
    await client.get('/things');
    assert.equal(count(), 2, 'the clamped skew is half the 60 s lifetime');
  });
});

test('expiry is anchored at the moment the token request was sent, not when the answer arrived', async () => {
  const clock = manualClock();
  const t0 = clock.now();
  const client = makeClient(clock, {}, { tokenUrl: stack.proxiedTokenUrl });
  const expiries = fetchedExpiries(client);
  const count = tokenRequestCounter(stack.op);
  const proxied = stack.proxy.requests;

  stack.proxy.inject({ kind: 'delay', ms: 300 });
  const call = client.get('/things');
  await waitUntil(() => stack.proxy.requests > proxied);
  clock.advance(30_000); // 30 s pass on the client's clock while the token endpoint is slow
  assert.equal((await call).statusCode, 200);
  assert.equal(count(), 1);
  assert.deepEqual(expiries, [t0 / 1000 + TTL], 'expiry = sent at + expires_in (not received at + expires_in = t0 + 90 s)');

  clock.set(t0 + TTL * 1000 - 1);
  await client.get('/things');
  assert.equal(count(), 1);
  clock.set(t0 + TTL * 1000);
  await client.get('/things');
  assert.equal(count(), 2);
});

describe('preset oAuthToken', () => {
  test('is used while valid with no fetch and no oAuthOnTokenUpdate; a new token is fetched once it expires', async () => {
    const clock = manualClock();
    const t0 = clock.now();
    const wire = await directToken(stack.op.tokenUrl);
    const updates: OAuthToken[] = [];
    const count = tokenRequestCounter(stack.op);
    const client = makeClient(clock, {
      oAuthToken: { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: TTL, expiry: t0 / 1000 + TTL },
      oAuthOnTokenUpdate: (token) => updates.push(token),
    });

    await client.get('/things');
    await client.get('/things');
    assert.equal(count(), 0, 'the preset token is used with no fetch');
    assert.deepEqual(bearerTokens(stack.api).slice(-2), [wire.access_token, wire.access_token]);
    assert.equal(updates.length, 0, 'oAuthOnTokenUpdate is not called for the token the application gave');

    clock.set(t0 + TTL * 1000);
    await client.get('/things');
    assert.equal(count(), 1);
    assert.equal(updates.length, 1, 'the fetched replacement is reported');
    assert.notEqual(updates[0]!.accessToken, wire.access_token);
  });

  test('regression: on a Client without tokenUrl, an expired preset token fails with ERR_TOKEN_EXPIRED naming tokenUrl', async () => {
    const clock = manualClock();
    const t0 = clock.now();
    const wire = await directToken(stack.op.tokenUrl);
    const client = new Client({
      baseUrl: stack.api.url,
      clock,
      clientCredentialsAuthCredentials: {
        oAuthClientId: 'svc',
        oAuthClientSecret: 'svc-secret',
        oAuthToken: { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: TTL, expiry: t0 / 1000 + TTL },
      },
    });
    clients.push(client);
    assert.equal((await client.get('/things')).statusCode, 200);
    clock.set(t0 + TTL * 1000);
    const error = await client.get('/things').catch((e: unknown) => e);
    assert.ok(error instanceof TokenExpiredError, `not "set your credentials" when they are set: ${String(error)}`);
    assert.equal(error.code, ErrorCode.TokenExpired);
    assert.match(error.message, /tokenUrl/);
  });

  test('accepts bigint and numeric-string numbers, and hands back JSON-safe numbers', async () => {
    const wire = await directToken(stack.op.tokenUrl);
    for (const [label, expiresIn, expiry] of [
      ['bigint', BigInt(TTL), (t0: number) => BigInt(t0 / 1000 + 20)],
      ['numeric string', String(TTL), (t0: number) => String(t0 / 1000 + 20)],
    ] as const) {
      const clock = manualClock();
      const t0 = clock.now();
      const count = tokenRequestCounter(stack.op);
      const client = makeClient(clock, {
        oAuthToken: { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn, expiry: expiry(t0) },
      });
      assert.equal((await client.get('/things')).statusCode, 200, label);
      assert.equal(count(), 0, `${label}: the preset token is used`);

      const held = await client.clientCredentialsAuthManager.getToken();
      assert.equal(typeof held.expiresIn, 'number', label);
      assert.equal(typeof held.expiry, 'number', label);
      assert.deepEqual(JSON.parse(JSON.stringify(held)), held);
      assert.equal(held.expiry, t0 / 1000 + 20);
      const manager = client.clientCredentialsAuthManager;
      assert.equal(manager.isExpired({ accessToken: 'x', tokenType: 'Bearer', expiry: expiry(t0) }), false, `${label}: isExpired reads it`);
      assert.equal(manager.isExpired({ accessToken: 'x', tokenType: 'Bearer', expiry: typeof expiresIn === 'bigint' ? BigInt(t0 / 1000 - 1) : String(t0 / 1000 - 1) }), true, label);

      clock.set(t0 + 20_000 - 1);
      await client.get('/things');
      assert.equal(count(), 0, `${label}: the expiry given was honoured`);
      clock.set(t0 + 20_000);
      await client.get('/things');
      assert.equal(count(), 1, `${label}: and it expires then`);
    }
  });
});

describe('oAuthTokenProvider', () => {
  test('is called with (lastOAuthToken, authManager) only when there is no token or it has expired', async () => {
    const clock = manualClock();
    const t0 = clock.now();
    const calls: { last: OAuthToken | undefined; manager: ClientCredentialsAuthManager }[] = [];
    const updates: OAuthToken[] = [];
    const count = tokenRequestCounter(stack.op);
    const client = makeClient(clock, {
      oAuthTokenProvider: (lastOAuthToken, authManager) => {
        calls.push({ last: lastOAuthToken, manager: authManager });
        return authManager.fetchToken();
      },
      oAuthOnTokenUpdate: (token) => updates.push(token),
    });

    await client.get('/things');
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.last, undefined, 'no token yet');
    assert.equal(calls[0]!.manager, client.clientCredentialsAuthManager);
    assert.ok(calls[0]!.manager instanceof ClientCredentialsAuthManager);
    assert.equal(count(), 1, 'authManager.fetchToken() went to the token endpoint');
    assert.equal(updates.length, 1, 'oAuthOnTokenUpdate fires for the provided token');

    clock.set(t0 + TTL * 1000 - 1);
    await client.get('/things');
    await client.get('/things');
    assert.equal(calls.length, 1, 'not called while the token is valid');

    clock.set(t0 + TTL * 1000);
    await client.get('/things');
    assert.equal(calls.length, 2, 'called once the token expired');
    assert.equal(calls[1]!.last?.accessToken, updates[0]!.accessToken, 'with the last token');
    assert.equal(count(), 2);
    assert.equal(updates.length, 2);
    assert.equal(bearerTokens(stack.api).at(-1), updates[1]!.accessToken);
  });

  test('can return a stored token: no fetch, and oAuthOnTokenUpdate receives it', async () => {
    const clock = manualClock();
    const wire = await directToken(stack.op.tokenUrl);
    const stored: OAuthToken = { accessToken: wire.access_token, tokenType: wire.token_type, expiresIn: wire.expires_in, expiry: clock.now() / 1000 + wire.expires_in };
    const updates: OAuthToken[] = [];
    const count = tokenRequestCounter(stack.op);
    const client = makeClient(clock, {
      oAuthTokenProvider: async () => stored,
      oAuthOnTokenUpdate: (token) => updates.push(token),
    });
    await client.get('/things');
    await client.get('/things');
    assert.equal(count(), 0);
    assert.deepEqual(bearerTokens(stack.api).slice(-2), [stored.accessToken, stored.accessToken]);
    assert.deepEqual(updates, [stored]);
  });

  test('works without a client secret when it never fetches', async () => {
    const clock = manualClock();
    const wire = await directToken(stack.op.tokenUrl);
    const client = new Client({
      baseUrl: stack.api.url,
      clock,
      clientCredentialsAuthCredentials: {
        oAuthClientId: 'svc',
        oAuthTokenProvider: () => ({ accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: wire.expires_in }),
      },
    });
    clients.push(client);
    assert.equal((await client.get('/things')).statusCode, 200);
  });
});

test('authManager: updateToken(token) installs a token, updateToken() fetches a new one, isValid checks the shape', async () => {
  const clock = manualClock();
  const wire = await directToken(stack.op.tokenUrl);
  const updates: OAuthToken[] = [];
  const count = tokenRequestCounter(stack.op);
  const client = makeClient(clock, { oAuthOnTokenUpdate: (token) => updates.push(token) });
  const manager = client.clientCredentialsAuthManager;

  const installed = await manager.updateToken({ accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: wire.expires_in });
  assert.equal(installed.expiry, clock.now() / 1000 + wire.expires_in, 'a missing expiry is derived from expiresIn');
  await client.get('/things');
  assert.equal(count(), 0);
  assert.equal(bearerTokens(stack.api).at(-1), wire.access_token);
  assert.deepEqual(updates.map((t) => t.accessToken), [wire.access_token], 'oAuthOnTokenUpdate fires for a token the application installs later');

  const fetched = await manager.updateToken();
  assert.equal(count(), 1);
  assert.notEqual(fetched.accessToken, wire.access_token);
  await client.get('/things');
  assert.equal(bearerTokens(stack.api).at(-1), fetched.accessToken);
  assert.equal(updates.length, 2);

  assert.equal(manager.isValid(fetched), true);
  assert.equal(manager.isValid(undefined), false);
  assert.equal(manager.isValid({ accessToken: '', tokenType: 'Bearer' }), false);
});

describe('JSON-safe tokens', () => {
  test('the token handed to oAuthOnTokenUpdate survives a JSON round trip', async () => {
    const updates: OAuthToken[] = [];
    const client = makeClient(manualClock(), { oAuthScopes: 'api:read', oAuthOnTokenUpdate: (token) => updates.push(token) });
    await client.get('/things');
    assert.equal(updates.length, 1);
    const token = updates[0]!;
    assert.equal(typeof token.accessToken, 'string');
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(token.scope, 'api:read');
    assert.equal(typeof token.expiresIn, 'number');
    assert.equal(typeof token.expiry, 'number');
    assert.deepEqual(JSON.parse(JSON.stringify(token)), token);
  });

  test('a provider returning bigint numbers gives oAuthOnTokenUpdate plain numbers', async () => {
    const clock = manualClock();
    const wire = await directToken(stack.op.tokenUrl);
    const updates: OAuthToken[] = [];
    const client = makeClient(clock, {
      oAuthTokenProvider: () => ({ accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: 60n, expiry: BigInt(clock.now() / 1000 + 60) }),
      oAuthOnTokenUpdate: (token) => updates.push(token),
    });
    await client.get('/things');
    assert.equal(updates.length, 1);
    assert.doesNotThrow(() => JSON.stringify(updates[0]));
    assert.deepEqual(JSON.parse(JSON.stringify(updates[0])), { accessToken: wire.access_token, tokenType: 'Bearer', expiresIn: 60, expiry: clock.now() / 1000 + 60 });
  });
});

test('real expiry end to end: a 2 s token is fetched again after 2.5 s', async () => {
  const { op, api, close: closeServers } = await startStack({ ttl: 2 });
  const client = new Client({ baseUrl: api.url, tokenUrl: op.tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' } });
  try {
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(op.tokenRequests.length, 1);
    await sleep(2_500);
    assert.equal((await client.get('/things')).statusCode, 200, 'the API accepted the new token (the old one has expired there too)');
    assert.equal(op.tokenRequests.length, 2);
    const [first, , third] = bearerTokens(api);
    assert.notEqual(third, first);
  } finally {
    await client.close();
    await closeServers();
  }
});
