// client.request with careless options, against oidc-provider and a recording API on 127.0.0.1: every mistake is an
// InvalidOptionError naming the option, thrown before any I/O (no token request, nothing sent), and the Client goes on
// working; what is accepted reaches the API exactly as given.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Client, ClientCredentialsError, InvalidOptionError, type RequestOptions } from '../src/index.js';
import { SVC_CREDENTIALS, startStack, tokenRequestCounter, type Stack } from './helpers/fixtures.js';

let stack: Stack;
let warm: Client;
before(async () => {
  stack = await startStack({ ttl: 600 });
  warm = newClient();
  assert.equal((await warm.get('/things')).statusCode, 200);
});
after(async () => {
  await warm.close();
  await stack.close();
});

function newClient(): Client {
  return new Client({ baseUrl: stack.api.url, tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
}

/**
 * Asserts that `options` is refused with an InvalidOptionError naming `option`, by a cold Client (no token request)
 * and by a warm one (nothing sent to the API), and that the warm one still works afterwards.
 */
async function assertRefused(label: string, options: unknown, option: string | RegExp): Promise<void> {
  const tokens = tokenRequestCounter(stack.op);
  const sent = stack.api.requests.length;
  const cold = newClient();
  try {
    for (const client of [cold, warm]) {
      await assert.rejects(client.request(options as RequestOptions), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError, `${label}: ${inspect(error)}`);
        assert.equal(error.code, 'ERR_INVALID_OPTION');
        if (typeof option === 'string') assert.equal(error.option, option, `${label}: ${error.message}`);
        else assert.match(error.option, option, `${label}: ${error.message}`);
        return true;
      });
    }
  } finally {
    await cold.close();
  }
  assert.equal(tokens(), 0, `${label}: a token was requested`);
  assert.equal(stack.api.requests.length, sent, `${label}: the API was called`);
  assert.equal((await warm.get('/things')).statusCode, 200, `${label}: the Client no longer works`);
}

/** The query the API received for `query`. */
async function echoedQuery(query: Record<string, unknown>): Promise<Record<string, string>> {
  const response = await warm.request<{ query: Record<string, string> }>({ path: '/echo', query: query as RequestOptions['query'] });
  return response.result.query;
}

test('client.request: a query value that is not a string, number or boolean (or an array of them) is an InvalidOptionError naming it, before any I/O (it was sent as "[object Object]", "Symbol(s)", "null", or thrown as a TypeError)', async () => {
  const cases: [string, unknown][] = [
    ['an object', { filter: { a: 1 } }],
    ['a symbol', { filter: Symbol('s') }],
    ['a function', { filter: () => 1 }],
    ['an object without prototype', { filter: Object.create(null) as object }],
    ['a nested array', { ids: [[1, 2]] }],
    ['an object in an array', { ids: [{ id: 1 }] }],
    ['null in an array', { ids: [1, null] }],
    ['undefined in an array', { ids: [1, undefined] }],
    ['a Date', { since: new Date(0) }],
  ];
  for (const [label, query] of cases) await assertRefused(`query with ${label}`, { path: '/echo', query }, /^query/);
  // What is accepted goes as given: arrays repeat the name, null and undefined leave the parameter out.
  assert.deepEqual(await echoedQuery({ s: 'x y', n: 1.5, b: false, skip: undefined, none: null }), { s: 'x y', n: '1.5', b: 'false' });
  const response = await warm.request<{ path: string }>({ path: '/echo', query: { ids: [1, 'two', true] } });
  assert.equal(stack.api.requests.at(-1)!.url, '/echo?ids=1&ids=two&ids=true');
  assert.equal(response.statusCode, 200);
});

test('client.request: headers undici refuses (as forwarded from an incoming request: transfer-encoding, keep-alive, upgrade, expect, connection other than close/keep-alive, a content-length that is not the body\'s) and the CONNECT method are an InvalidOptionError, before any I/O (they failed as a NetworkError after a token request)', async () => {
  const cases: [string, Record<string, unknown>, string | RegExp][] = [
    ['transfer-encoding', { method: 'POST', body: 'abc', headers: { 'Transfer-Encoding': 'chunked' } }, 'headers'],
    ['keep-alive', { headers: { 'keep-alive': 'timeout=5' } }, 'headers'],
    ['upgrade', { headers: { Upgrade: 'websocket' } }, 'headers'],
    ['expect', { method: 'PUT', body: 'abc', headers: { expect: '100-continue' } }, 'headers'],
    ['connection: upgrade', { headers: { Connection: 'Upgrade' } }, 'headers'],
    ['a content-length larger than the body', { method: 'POST', body: 'abc', headers: { 'content-length': '10' } }, 'headers'],
    ['a content-length of a JSON body', { method: 'POST', json: { a: 1 }, headers: { 'Content-Length': '3' } }, 'headers'],
    ['a content-length without a body', { headers: { 'content-length': '1' } }, 'headers'],
    ['a content-length that is not a number', { method: 'POST', body: 'abc', headers: { 'content-length': 'three' } }, 'headers'],
    ['the CONNECT method', { method: 'CONNECT' }, 'method'],
    ['the connect method', { method: 'connect' }, 'method'],
    ['a Headers object (its entries are not own properties: they were dropped)', { headers: new Headers({ 'x-a': '1' }) }, 'headers'],
    ['a Map', { headers: new Map([['x-a', '1']]) }, 'headers'],
  ];
  for (const [label, options, option] of cases) await assertRefused(label, { path: '/echo', ...options }, option);
  // The forms undici accepts still go through.
  for (const headers of [{ connection: 'close' }, { Connection: 'keep-alive' }, { 'content-length': '3' }] as Record<string, string>[]) {
    const response = await warm.request({ method: 'POST', path: '/echo', body: 'abc', headers });
    assert.equal(response.statusCode, 200, inspect(headers));
  }
  assert.equal((await warm.request({ method: 'POST', path: '/echo', json: { a: 1 }, headers: { 'content-length': '7' } })).statusCode, 200);
  assert.equal((await warm.request({ method: 'POST', path: '/echo', body: new TextEncoder().encode('é'), headers: { 'content-length': '2' } })).statusCode, 200);
});

/** Query values a careless caller passes: most of JavaScript's values. */
const carelessValue = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc.boolean(),
  fc.constantFrom(null, undefined, Number.NaN, Symbol('s'), () => 0, new Date(0), {}, Object.create(null) as object, 10n),
  fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.constant(null), fc.constant({}), fc.array(fc.integer(), { maxLength: 2 })), { maxLength: 3 }),
);
/** Header names of a forwarded incoming request, in any case, with values undici may or may not accept. */
const forwardedHeaders = fc.dictionary(
  fc.constantFrom('Transfer-Encoding', 'connection', 'Keep-Alive', 'upgrade', 'Expect', 'content-length', 'x-request-id', 'Accept'),
  fc.constantFrom('chunked', 'close', 'keep-alive', 'Upgrade', '100-continue', '0', '3', '12', 'text/plain'),
  { maxKeys: 3 },
);

test('client.request (fast-check): careless queries and forwarded headers give a response carrying exactly the query given, or an InvalidOptionError before any I/O; never another error, and the Client goes on working', async () => {
  const cold = newClient();
  const tokens = tokenRequestCounter(stack.op);
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), carelessValue, { maxKeys: 3 }), forwardedHeaders, fc.constantFrom(undefined, 'abc'), async (query, headers, body) => {
        runs++;
        const options = { method: body === undefined ? 'GET' : 'POST', path: '/echo', query, headers, body } as RequestOptions;
        const sent = stack.api.requests.length;
        let response: Awaited<ReturnType<Client['request']>>;
        try {
          response = await warm.request(options);
        } catch (error) {
          assert.ok(error instanceof ClientCredentialsError, `untyped failure for ${inspect(options)}: ${inspect(error)}`);
          assert.equal(error.code, 'ERR_INVALID_OPTION', `${inspect(options)}: ${inspect(error)}`);
          assert.equal(stack.api.requests.length, sent, `${inspect(options)} reached the API`);
          await assert.rejects(cold.request(options), InvalidOptionError);
          assert.equal(tokens(), 0, `${inspect(options)} made a token request`);
          return;
        }
        assert.equal(response.statusCode, 200);
        // Sent exactly as given: each scalar as its String(), arrays repeated, null and undefined left out.
        const expected = new URLSearchParams();
        for (const [name, value] of Object.entries(query)) {
          if (value === null || value === undefined) continue;
          for (const item of Array.isArray(value) ? value : [value]) {
            assert.ok(['string', 'number', 'boolean'].includes(typeof item), `${inspect(query)} was sent`);
            expected.append(name, String(item));
          }
        }
        const received = new URL(stack.api.requests.at(-1)!.url, 'http://x').searchParams;
        assert.equal(received.toString(), expected.toString());
      }),
      { seed: 2024, numRuns: 150, interruptAfterTimeLimit: 8_000 },
    );
  } finally {
    await cold.close();
  }
  assert.ok(runs >= 10, `only ${runs} runs`);
  assert.equal((await warm.get('/things')).statusCode, 200);
});

test('a token selection of the wrong type (scopes: 5, resource: {}) is an InvalidOptionError before any I/O, in client.request, client.fetch, the interceptor and axios (it was a bare TypeError: "scopes?.join is not a function")', async () => {
  for (const [label, selection, option] of [
    ['scopes: 5', { scopes: 5 }, 'scopes'],
    ['scopes: {}', { scopes: {} }, 'scopes'],
    ['resource: 5', { resource: 5 }, 'resource'],
    ['resource: { a: 1 } with scopes', { scopes: 'api:read', resource: { a: 1 } }, 'resource'],
    ['scopes: true', { scopes: true }, 'scopes'],
    ['audience: a Symbol', { audience: Symbol('a') }, 'audience'],
  ] as const) {
    await assertRefused(`client.request ${label}`, { path: '/things', ...selection }, option);
    const tokens = tokenRequestCounter(stack.op);
    const cold = newClient();
    try {
      const isRefusal = (error: unknown) => error instanceof InvalidOptionError && error.option === option;
      await assert.rejects(cold.fetch(`${stack.api.url}/things`, { oauth: selection as never }), isRefusal, `client.fetch ${label}`);
      assert.throws(() => cold.interceptor(selection as never), isRefusal, `client.interceptor ${label}`);
      const { default: axios } = await import('axios');
      const { attachClientCredentials } = await import('../src/adapters/axios.js');
      assert.throws(() => attachClientCredentials(axios.create(), cold, selection as never), isRefusal, `attachClientCredentials ${label}`);
      const instance = axios.create({ baseURL: stack.api.url });
      attachClientCredentials(instance, cold);
      await assert.rejects(instance.get('/things', { oauth: selection as never }), isRefusal, `axios config.oauth ${label}`);
    } finally {
      await cold.close();
    }
    assert.equal(tokens(), 0, `${label}: a token was requested`);
  }
});

test('client.fetch takes what fetch takes: a String object or another object with a toString is the URL (as fetch stringifies it), and a number or undefined is fetch\'s own TypeError with no token request (they crashed inside client.fetch: "reading \'startsWith\'")', async () => {
  const url = `${stack.api.url}/things`;
  const token = (await warm.clientCredentialsAuthManager.getToken()).accessToken;
  for (const input of [new String(url), { toString: () => url }]) {
    const response = await warm.fetch(input as unknown as string);
    assert.equal(response.status, 200, inspect(input));
    await response.body?.cancel();
    assert.equal(stack.api.requests.at(-1)!.headers.authorization, `Bearer ${token}`);
  }
  // What fetch refuses (it does not resolve relative URLs, nor take a Request of another fetch implementation, such as
  // the undici package's): its own TypeError, no token request, nothing sent (not the relative "[object Request]").
  const { Request: UndiciRequest } = await import('undici');
  const tokens = tokenRequestCounter(stack.op);
  const sent = stack.api.requests.length;
  const cold = newClient();
  try {
    for (const input of [123, undefined, null, new String('/things'), new UndiciRequest(url)]) {
      await assert.rejects(cold.fetch(input as unknown as string), (error: unknown) => error instanceof TypeError && /Failed to parse URL/.test(error.message), inspect(input));
    }
  } finally {
    await cold.close();
  }
  assert.equal(tokens(), 0);
  assert.equal(stack.api.requests.length, sent);
});

test('retryOnUnauthorized that is not a boolean (\'false\', 0, a Symbol) is an InvalidOptionError in client.fetch, the interceptor and axios, as in client.request (a truthy string turned retries on)', async () => {
  const { default: axios } = await import('axios');
  const { attachClientCredentials } = await import('../src/adapters/axios.js');
  const isRefusal = (error: unknown) => error instanceof InvalidOptionError && /retryOnUnauthorized$/.test(error.option);
  for (const value of ['false', 0, Symbol('r'), null]) {
    const label = inspect(value);
    await assertRefused(`client.request ${label}`, { path: '/things', retryOnUnauthorized: value }, 'retryOnUnauthorized');
    const tokens = tokenRequestCounter(stack.op);
    const sent = stack.api.requests.length;
    const cold = newClient();
    try {
      await assert.rejects(cold.fetch(`${stack.api.url}/things`, { oauth: { retryOnUnauthorized: value as never } }), isRefusal, `client.fetch ${label}`);
      assert.throws(() => cold.interceptor({ retryOnUnauthorized: value as never }), isRefusal, `client.interceptor ${label}`);
      assert.throws(() => attachClientCredentials(axios.create(), cold, { retryOnUnauthorized: value as never }), isRefusal, `attachClientCredentials ${label}`);
      const instance = axios.create({ baseURL: stack.api.url });
      attachClientCredentials(instance, cold);
      await assert.rejects(instance.get('/things', { oauth: { retryOnUnauthorized: value as never } }), isRefusal, `axios config.oauth ${label}`);
    } finally {
      await cold.close();
    }
    assert.equal(tokens(), 0, `${label}: a token was requested`);
    assert.equal(stack.api.requests.length, sent, `${label}: the API was called`);
  }
});
