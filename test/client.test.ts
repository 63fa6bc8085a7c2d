/**
 * The Client as a whole, against oidc-provider (behind a fault proxy) and a protected API: requests and responses,
 * a Client without credentials, single flight, failures that are not cached, callbacks that cannot break requests,
 * cancellation and timeouts reaching the token fetch, `withConfiguration`, and `OAuthAuthorizationController`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { Agent } from 'undici';
import {
  AbortError,
  ApiError,
  CallbackError,
  Client,
  ErrorCode,
  InvalidOptionError,
  MissingCredentialsError,
  NetworkError,
  OAuthAuthorizationController,
  OAuthProviderError,
  TimeoutError,
  type ClientConfiguration,
  type OAuthToken,
} from '../src/index.js';
import { resolveConfiguration } from '../src/configuration.js';
import { basicCredentials, bearerTokens, directToken, manualClock, startStack, tokenRequestCounter, waitUntil, type ManualClock, type Stack } from './helpers/fixtures.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { startScripted } from './helpers/scripted.js';

const TTL = 60;
let stack: Stack;
const clients: Client[] = [];

before(async () => {
  stack = await startStack({ ttl: TTL });
});
after(async () => {
  await stack.close(); // first: frees any request still hanging in the proxy
  await Promise.all(clients.map((c) => c.close()));
});

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;

/** A Client on the proxied token URL, with an injected clock. */
function makeClient(options: { clock?: ManualClock; credentials?: Partial<Credentials> } & Partial<ClientConfiguration> = {}): Client {
  const { credentials, clock = manualClock(), ...config } = options;
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    clock,
    refreshAhead: 0,
    ...config,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', ...credentials },
  });
  clients.push(client);
  return client;
}

/** Runs `fn` and returns its rejection, failing when it resolves. */
async function rejection(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

describe('requests and responses', () => {
  test('request() sends method, path, query, headers and a JSON body, and parses a JSON response', async () => {
    const client = makeClient();
    const res = await client.request<{ method: string; path: string; query: Record<string, string>; headers: Record<string, string>; body: string }>({
      method: 'put',
      path: '/echo',
      query: { a: 1, b: ['x', 'y'], skipped: undefined },
      headers: { 'X-Custom': 'yes' },
      json: { hello: 'world' },
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type']!, /^application\/json/);
    assert.equal(typeof res.body, 'string');
    assert.equal(res.result.method, 'PUT');
    assert.equal(res.result.path, '/echo');
    assert.deepEqual(res.result.query, { a: '1', b: 'y' });
    assert.equal(res.result.headers['x-custom'], 'yes');
    assert.equal(res.result.headers['content-type'], 'application/json');
    assert.match(res.result.headers.authorization!, /^Bearer /);
    assert.deepEqual(JSON.parse(res.result.body), { hello: 'world' });
    assert.equal(stack.api.requests.at(-1)!.url, '/echo?a=1&b=x&b=y');
  });

  test('a non-JSON body comes back as text with result undefined; a non-2xx status rejects with ApiError', async () => {
    const client = makeClient();
    const text = await client.get('/text');
    assert.deepEqual([text.statusCode, text.body, text.result], [200, 'hello', undefined]);
    const error = await rejection(() => client.get('/status/503'));
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 503);
    assert.deepEqual(error.result, { status: 503 });
  });

  test('a raw body (string or bytes) is sent as given; post, put, patch and delete send their method and JSON', async () => {
    type Echo = { method: string; body: string; headers: Record<string, string> };
    const client = makeClient();
    const form = await client.request<Echo>({ method: 'POST', path: '/echo', body: 'a=1&b=2', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual([form.result.method, form.result.body, form.result.headers['content-type']], ['POST', 'a=1&b=2', 'application/x-www-form-urlencoded']);
    const bytes = await client.request<Echo>({ method: 'PUT', path: '/echo', body: new TextEncoder().encode('bytes \u00e9') });
    assert.equal(bytes.result.body, 'bytes \u00e9');

    const calls: [string, () => Promise<{ result: Echo }>][] = [
      ['POST', () => client.post<Echo>('/echo', { n: 1 })],
      ['PUT', () => client.put<Echo>('/echo', { n: 2 })],
      ['PATCH', () => client.patch<Echo>('/echo', { n: 3 })],
      ['DELETE', () => client.delete<Echo>('/echo')],
    ];
    for (const [i, [method, call]] of calls.entries()) {
      const { result } = await call();
      assert.equal(result.method, method);
      assert.match(result.headers.authorization!, /^Bearer /);
      if (method === 'DELETE') assert.equal(result.body, '');
      else assert.deepEqual([JSON.parse(result.body), result.headers['content-type']], [{ n: i + 1 }, 'application/json']);
    }
  });

  test('regression: a bad per-request timeout, or an absolute URL that does not parse, is an InvalidOptionError naming it; nothing is sent', async () => {
    const client = makeClient();
    const count = tokenRequestCounter(stack.op);
    const apiRequests = stack.api.requests.length;
    for (const timeout of [-1, Number.NaN, 2 ** 31, '100']) {
      const error = await rejection(() => client.get('/things', { timeout: timeout as number }));
      assert.ok(error instanceof InvalidOptionError, `${String(timeout)}: ${String(error)}`);
      assert.equal(error.option, 'timeout');
    }
    const error = await rejection(() => client.get('http://exa mple.com/things'));
    assert.ok(error instanceof InvalidOptionError, String(error));
    assert.equal(error.option, 'path');
    assert.equal(count(), 0);
    assert.equal(stack.api.requests.length, apiRequests);
  });
});

describe('a Client without credentials', () => {
  test('calls auth: false endpoints; an authenticated call rejects with MissingCredentialsError and no token request', async () => {
    const count = tokenRequestCounter(stack.op);
    const proxied = stack.proxy.requests;
    const client = new Client({ baseUrl: stack.api.url, tokenUrl: stack.proxiedTokenUrl });
    clients.push(client);

    const pub = await client.request({ path: '/public', auth: false });
    assert.deepEqual([pub.statusCode, pub.result], [200, { public: true }]);
    assert.equal(stack.api.requests.at(-1)!.headers.authorization, undefined, 'no Authorization header on auth: false');

    const apiRequests = stack.api.requests.length;
    const error = await rejection(() => client.get('/things'));
    assert.ok(error instanceof MissingCredentialsError);
    assert.equal((error as MissingCredentialsError).code, ErrorCode.MissingCredentials);
    assert.equal(count(), 0);
    assert.equal(stack.proxy.requests, proxied, 'the token endpoint was never contacted');
    assert.equal(stack.api.requests.length, apiRequests, 'nor the API');
  });

  test('a Client with credentials sends no token on auth: false calls either', async () => {
    const count = tokenRequestCounter(stack.op);
    const client = makeClient();
    await client.get('/public', { auth: false });
    assert.equal(count(), 0);
    assert.equal(stack.api.requests.at(-1)!.headers.authorization, undefined);
  });
});

describe('single flight', () => {
  const N = 25;

  test(`${N} concurrent calls on a cold client make one token request and one oAuthOnTokenUpdate, and share the token`, async () => {
    const updates: OAuthToken[] = [];
    const count = tokenRequestCounter(stack.op);
    const client = makeClient({ credentials: { oAuthOnTokenUpdate: (t) => updates.push(t) } });
    const seen = stack.api.requests.length;
    const results = await Promise.all(Array.from({ length: N }, () => client.get('/things')));
    assert.ok(results.every((r) => r.statusCode === 200));
    assert.equal(count(), 1);
    assert.equal(updates.length, 1);
    const tokens = bearerTokens(stack.api).slice(seen);
    assert.equal(tokens.length, N);
    assert.deepEqual(new Set(tokens), new Set([updates[0]!.accessToken]));
  });

  test(`${N} concurrent calls on an expired client make one token request and share the new token`, async () => {
    const clock = manualClock();
    const updates: OAuthToken[] = [];
    const count = tokenRequestCounter(stack.op);
    const client = makeClient({ clock, credentials: { oAuthOnTokenUpdate: (t) => updates.push(t) } });
    await client.get('/things');
    assert.equal(count(), 1);

    clock.advance(TTL * 1000);
    const seen = stack.api.requests.length;
    await Promise.all(Array.from({ length: N }, () => client.get('/things')));
    assert.equal(count(), 2);
    assert.equal(updates.length, 2);
    const tokens = bearerTokens(stack.api).slice(seen);
    assert.deepEqual(new Set(tokens), new Set([updates[1]!.accessToken]));
    assert.notEqual(updates[1]!.accessToken, updates[0]!.accessToken);
  });
});

describe('failures are not cached', () => {
  test('after a 500 from the token endpoint the next call fetches again and succeeds', async () => {
    const count = tokenRequestCounter(stack.op);
    const client = makeClient({ retry: false });
    stack.proxy.inject({ kind: 'status', status: 500, body: 'boom' });
    const error = await rejection(() => client.get('/things'));
    assert.ok(error instanceof ApiError);
    assert.equal(error.statusCode, 500);
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(count(), 1, 'only the second token request reached the server');
  });

  test('after a network error the next call fetches again and succeeds', async () => {
    const client = makeClient({ retry: false });
    stack.proxy.inject({ kind: 'reset' });
    assert.ok((await rejection(() => client.get('/things'))) instanceof NetworkError);
    assert.equal((await client.get('/things')).statusCode, 200);
  });

  test('after a throwing oAuthTokenProvider the next call asks it again and succeeds', async () => {
    let calls = 0;
    const client = makeClient({
      credentials: {
        oAuthTokenProvider: (_last, manager) => {
          calls++;
          if (calls === 1) throw new Error('database unavailable');
          return manager.fetchToken();
        },
      },
    });
    const error = await rejection(() => client.get('/things'));
    assert.ok(error instanceof CallbackError);
    assert.equal(error.code, ErrorCode.Callback);
    assert.match(error.message, /database unavailable/);
    assert.equal((error.cause as Error).message, 'database unavailable');
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(calls, 2);
  });

  test('a provider returning a non-token is an error, and the next call asks again', async () => {
    let calls = 0;
    const client = makeClient({ credentials: { oAuthTokenProvider: (_l, m) => (++calls === 1 ? (undefined as unknown as OAuthToken) : m.fetchToken()) } });
    assert.ok((await rejection(() => client.get('/things'))) instanceof CallbackError);
    assert.equal((await client.get('/things')).statusCode, 200);
  });
});

describe('callbacks cannot break requests', () => {
  test('a throwing oAuthOnTokenUpdate is reported as callbackError; the request succeeds and the callback keeps being called', async () => {
    const clock = manualClock();
    const count = tokenRequestCounter(stack.op);
    const thrown = new Error('disk full');
    const calls: OAuthToken[] = [];
    const client = makeClient({
      clock,
      credentials: {
        oAuthOnTokenUpdate: (t) => {
          calls.push(t);
          throw thrown;
        },
      },
    });
    const reported: { callback: string; error: unknown }[] = [];
    client.on('callbackError', (e) => reported.push(e));

    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(count(), 1, 'the token fetched before the callback threw is kept');
    assert.deepEqual(reported, [{ callback: 'oAuthOnTokenUpdate', error: thrown }]);

    clock.advance(TTL * 1000);
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.equal(count(), 2);
    assert.equal(calls.length, 2);
    assert.equal(reported.length, 2);
  });

  test('without a callbackError listener the throw becomes a process warning, never an exception', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const client = makeClient({
        credentials: {
          oAuthOnTokenUpdate: () => {
            throw new Error('nope');
          },
        },
      });
      assert.equal((await client.get('/things')).statusCode, 200);
      await waitUntil(() => warnings.length > 0);
      assert.match(warnings[0]!.message, /oAuthOnTokenUpdate threw/);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('async callbacks cannot break requests either', () => {
  test('regression: an async oAuthOnTokenUpdate or event listener that rejects is reported as callbackError, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const saveFailed = new Error('database down');
      const logFailed = new Error('log shipper down');
      const client = makeClient({
        credentials: {
          oAuthOnTokenUpdate: async () => {
            await new Promise((r) => setTimeout(r, 5));
            throw saveFailed;
          },
        },
      });
      client.on('tokenFetched', async () => {
        throw logFailed;
      });
      const reported: { callback: string; error: unknown }[] = [];
      client.on('callbackError', (e) => reported.push(e));
      assert.equal((await client.get('/things')).statusCode, 200);
      await waitUntil(() => reported.length === 2);
      assert.deepEqual(
        reported.sort((a, b) => a.callback.localeCompare(b.callback)),
        [
          { callback: 'listener of tokenFetched', error: logFailed },
          { callback: 'oAuthOnTokenUpdate', error: saveFailed },
        ],
      );
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('cancellation and timeouts reach the token fetch', () => {
  test('an AbortSignal aborting while the token endpoint hangs rejects promptly with ERR_ABORTED; the next call works', async () => {
    const client = makeClient();
    stack.proxy.inject({ kind: 'hang' });
    const controller = new AbortController();
    const started = Date.now();
    const call = rejection(() => client.get('/things', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    const error = await call;
    assert.ok(error instanceof AbortError, String(error));
    assert.equal((error as AbortError).code, ErrorCode.Aborted);
    assert.ok(Date.now() - started < 1_000, `aborted after ${Date.now() - started} ms`);
    assert.equal((await client.get('/things')).statusCode, 200);
  });

  test('an already aborted signal rejects with ERR_ABORTED and sends no token request', async () => {
    const client = makeClient();
    const proxied = stack.proxy.requests;
    const error = await rejection(() => client.get('/things', { signal: AbortSignal.abort() }));
    assert.equal((error as AbortError).code, ErrorCode.Aborted);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stack.proxy.requests, proxied);
  });

  test('one caller aborting does not cancel the fetch other callers wait on', async () => {
    const count = tokenRequestCounter(stack.op);
    const client = makeClient();
    stack.proxy.inject({ kind: 'delay', ms: 300 });
    const controller = new AbortController();
    const aborted = rejection(() => client.get('/things', { signal: controller.signal }));
    const patient = client.get('/things');
    setTimeout(() => controller.abort(), 50);
    assert.equal((await aborted as AbortError).code, ErrorCode.Aborted);
    assert.equal((await patient).statusCode, 200);
    assert.equal(count(), 1);
  });

  test('a call made right after the only waiter aborted starts a new fetch instead of inheriting the abort', async () => {
    const client = makeClient();
    const proxied = stack.proxy.requests;
    stack.proxy.inject({ kind: 'delay', ms: 300 });
    const controller = new AbortController();
    const aborted = rejection(() => client.get('/things', { signal: controller.signal }));
    await waitUntil(() => stack.proxy.requests > proxied);
    controller.abort();
    const next = client.get('/things');
    assert.equal((await aborted as AbortError).code, ErrorCode.Aborted);
    assert.equal((await next).statusCode, 200);
  });

  for (const option of ['timeout', 'tokenRequestTimeout'] as const) {
    test(`the Client's \`${option}\` bounds a hanging token request: ERR_TIMEOUT`, async () => {
      const client = makeClient({ [option]: 300, retry: false });
      stack.proxy.inject({ kind: 'hang' });
      const started = Date.now();
      const error = await rejection(() => client.get('/things'));
      const elapsed = Date.now() - started;
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(error.code, ErrorCode.Timeout);
      assert.equal(error.timeout, 300);
      assert.ok(elapsed >= 250 && elapsed < 2_000, `timed out after ${elapsed} ms`);
      // The shared fetch ends at its own timeout (a caller leaving does not cancel it); then the next call fetches anew.
      await waitUntil(() => client.stats().failures === 1);
      assert.equal((await client.get('/things')).statusCode, 200);
    });
  }

  test("a request's own `timeout` bounds its wait for a hanging token request: ERR_TIMEOUT; the fetch ends at tokenRequestTimeout", async () => {
    const client = makeClient({ retry: false, tokenRequestTimeout: 1_500 });
    stack.proxy.inject({ kind: 'hang' });
    const started = Date.now();
    const error = await rejection(() => client.get('/things', { timeout: 300 }));
    const elapsed = Date.now() - started;
    assert.ok(error instanceof TimeoutError, String(error));
    assert.equal(error.code, ErrorCode.Timeout);
    assert.equal((error as TimeoutError).timeout, 300, "the caller's own timeout");
    assert.ok(elapsed < 1_400, `timed out after ${elapsed} ms`);
    await waitUntil(() => client.stats().failures === 1, 5_000);
    assert.equal((await client.get('/things')).statusCode, 200);
  });

  test("a request's `timeout` bounds the whole call: its token wait, the exchange and a retry after a 401 share it", async () => {
    // An API that answers each request after 1.5 s: 401 to the first of each pair, 200 to the second.
    let served = 0;
    const server = http.createServer((req, res) => {
      const status = served++ % 2 === 0 ? 401 : 200;
      req.resume();
      setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end('{}'), 1_500);
    });
    const url = await listenLocal(server);
    try {
      // A token request that takes 1.5 s, then an API answer that takes 1.5 s: 3 s in all, for a 2.5 s timeout.
      const slowToken = makeClient({ baseUrl: url, retry: false });
      stack.proxy.inject({ kind: 'delay', ms: 1_500 });
      served = 1; // a 200 first
      let started = Date.now();
      let error = await rejection(() => slowToken.get('/things', { timeout: 2_500 }));
      assert.ok(error instanceof TimeoutError, String(error));
      assert.ok(Date.now() - started < 2_900 + 1_000, `ended after ${Date.now() - started} ms`);
      await slowToken.close();
      // A first attempt answered 401 after 1.5 s, and its retry another 1.5 s later: the retry gets what is left.
      const refused = makeClient({ baseUrl: url, retry: false });
      assert.ok((await refused.clientCredentialsAuthManager.getToken()).accessToken);
      served = 0;
      started = Date.now();
      error = await rejection(() => refused.get('/things', { timeout: 2_500 }));
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(served, 2, 'the retry was sent, with the time that was left');
      await refused.close();
      // With time enough for all of it, the same call succeeds (on a new Client: the last one just had a token refused).
      const patient = makeClient({ baseUrl: url, retry: false });
      served = 0;
      assert.equal((await patient.get('/things', { timeout: 6_000 })).statusCode, 200);
      assert.equal(served, 2);
      await patient.close();
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('a caller giving up (signal or timeout) does not cancel the shared token request; close() does, at once', async () => {
    // A token endpoint that never answers and records when the client hangs up.
    let received = 0;
    const hungUp: string[] = [];
    const server = http.createServer((req) => {
      received++;
      req.resume();
      req.socket.once('close', () => hungUp.push('closed'));
    });
    const url = await listenLocal(server);
    try {
      for (const how of ['signal', 'timeout'] as const) {
        const client = makeClient({ tokenUrl: `${url}/token`, retry: false, headers: {} });
        const before = received;
        const closedBefore = hungUp.length;
        const controller = new AbortController();
        const call = rejection(() => client.get('/things', how === 'signal' ? { signal: controller.signal } : { timeout: 200 }));
        await waitUntil(() => received > before);
        controller.abort();
        const error = await call;
        assert.equal((error as AbortError).code, how === 'signal' ? ErrorCode.Aborted : ErrorCode.Timeout, String(error));
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(hungUp.length, closedBefore, 'the shared token request is still open after its only caller left');
        const closing = Date.now();
        await client.close();
        await waitUntil(() => hungUp.length > closedBefore, 2_000);
        assert.ok(Date.now() - closing < 2_000);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });


  test('the token request timeout defaults to 30 s, or to the Client timeout when one is set', () => {
    const credentials = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };
    assert.equal(resolveConfiguration({ tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: credentials }).tokenRequestTimeout, 30_000);
    assert.equal(resolveConfiguration({ tokenUrl: stack.op.tokenUrl, timeout: 0, clientCredentialsAuthCredentials: credentials }).tokenRequestTimeout, 30_000);
    assert.equal(resolveConfiguration({ tokenUrl: stack.op.tokenUrl, timeout: 5_000, clientCredentialsAuthCredentials: credentials }).tokenRequestTimeout, 5_000);
    assert.equal(resolveConfiguration({ tokenUrl: stack.op.tokenUrl, timeout: 5_000, tokenRequestTimeout: 700, clientCredentialsAuthCredentials: credentials }).tokenRequestTimeout, 700);
  });
});

describe('withConfiguration', () => {
  test('returns a new Client with merged configuration, leaves the original unchanged, and shares its token', async () => {
    const count = tokenRequestCounter(stack.op);
    const original = makeClient({ headers: { 'x-origin': 'original' }, credentials: { oAuthScopes: 'api:read' } });
    await original.get('/things');
    assert.equal(count(), 1);
    const before = JSON.stringify(original);

    const clone = original.withConfiguration({ headers: { 'x-origin': 'clone', 'x-extra': '1' } });
    assert.ok(clone instanceof Client);
    assert.notEqual(clone, original);
    const echoed = await clone.get<{ headers: Record<string, string> }>('/echo');
    assert.equal(echoed.result.headers['x-origin'], 'clone');
    assert.equal(echoed.result.headers['x-extra'], '1');
    assert.equal(count(), 1, 'the clone uses the token the original fetched');
    assert.equal(bearerTokens(stack.api).at(-1), bearerTokens(stack.api).at(-2));

    const fromOriginal = await original.get<{ headers: Record<string, string> }>('/echo');
    assert.equal(fromOriginal.result.headers['x-origin'], 'original');
    assert.equal(fromOriginal.result.headers['x-extra'], undefined);
    assert.equal(JSON.stringify(original), before);

    await clone.close();
    assert.equal((await original.get('/things')).statusCode, 200, 'closing a clone leaves the original working');
  });

  test('credentials are merged field by field; other credentials get their own token', async () => {
    const count = tokenRequestCounter(stack.op);
    const original = makeClient({ credentials: { oAuthScopes: 'api:read' } });
    await original.get('/things');
    const writer = original.withConfiguration({ clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthScopes: 'api:write' } });
    clients.push(writer);
    const res = await writer.get<{ scope: string; client_id: string }>('/things');
    assert.equal(res.result.scope, 'api:write');
    assert.equal(res.result.client_id, 'svc');
    assert.equal(count(), 2);
    assert.equal(stack.op.tokenRequests.at(-1)!.headers.authorization, basicCredentials('svc', 'svc-secret'), 'the secret was kept from the original');
    assert.equal(((await original.get('/things')).result as { scope: string }).scope, 'api:read');
    assert.equal(count(), 2);
  });
});

describe('withConfiguration and a relative tokenUrl', () => {
  test('regression: a clone whose relative tokenUrl moved with baseUrl gets its tokens from the new endpoint, not the old cache', async () => {
    const count = tokenRequestCounter(stack.op);
    const original = makeClient({ baseUrl: stack.op.issuer, tokenUrl: '/token' });
    const first = await original.clientCredentialsAuthManager.getToken();
    assert.equal(count(), 1);

    const proxied = stack.proxy.requests;
    const moved = original.withConfiguration({ baseUrl: stack.proxy.url });
    clients.push(moved);
    assert.equal((moved.toJSON() as { tokenUrl: string }).tokenUrl, stack.proxiedTokenUrl);
    const second = await moved.clientCredentialsAuthManager.getToken();
    assert.notEqual(second.accessToken, first.accessToken, 'not the token of the other endpoint');
    assert.equal(stack.proxy.requests - proxied, 1, 'fetched through its own token URL');
    assert.equal(count(), 2);
    assert.equal((await original.clientCredentialsAuthManager.getToken()).accessToken, first.accessToken);
  });
});

describe('close()', () => {
  test('a call that needs a new token after close() rejects with ERR_ABORTED and sends nothing; a clone closing leaves the original open; closing twice is fine', async () => {
    const original = makeClient();
    await original.get('/things');
    const clone = original.withConfiguration({ headers: { 'x-clone': '1' } });
    await clone.close();
    await clone.close();
    original.clientCredentialsAuthManager.invalidate();
    assert.equal((await original.get('/things')).statusCode, 200, 'the shared token cache still fetches');

    await original.close();
    await original.close();
    original.clientCredentialsAuthManager.invalidate();
    const proxied = stack.proxy.requests;
    const error = await rejection(() => original.get('/things'));
    assert.ok(error instanceof AbortError, String(error));
    assert.match(error.message, /closed/);
    assert.equal(stack.proxy.requests, proxied, 'no token request');
  });

  test('after close(), a call with a cached token rejects with ERR_ABORTED ("closed"), not a network error, in the original and in a clone sharing its connections', async () => {
    const original = makeClient();
    await original.get('/things');
    const clone = original.withConfiguration({ headers: { 'x-clone': '1' } });
    await original.close();
    for (const client of [original, clone]) {
      const started = Date.now();
      const error = await rejection(() => client.get('/things'));
      assert.ok(error instanceof AbortError, String(error));
      assert.match(error.message, /closed/);
      assert.ok(Date.now() - started < 1_000, 'not retried');
    }
  });

  test('regression: a failed background refresh leaves no timer behind: a script that never calls close() exits at once', async () => {
    // The child's cold fetch gets a real token (60 s); its background refresh gets a 503 asking to retry in 20 s.
    const wire = await directToken(stack.op.tokenUrl, 'svc', 'svc-secret');
    stack.proxy.inject({ kind: 'json', status: 200, body: { access_token: wire.access_token, token_type: 'Bearer', expires_in: 60 } });
    stack.proxy.inject({ kind: 'status', status: 503, headers: { 'retry-after': '20' } });
    const script = `
      import { Client } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
      const clock = { t: Date.now(), now() { return this.t; } };
      const client = new Client({ tokenUrl: process.env.TOKEN_URL, clock,
        clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' } });
      const token = await client.clientCredentialsAuthManager.getToken();
      clock.t = token.expiry * 1000 - 10_000; // stale
      const failed = new Promise((resolve) => client.on('refreshFailed', resolve));
      await client.clientCredentialsAuthManager.getToken(); // served; starts the background refresh
      const { error } = await failed;
      console.log('failed ' + error.statusCode);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TOKEN_URL: stack.proxiedTokenUrl }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let failedAt = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!failedAt && out.includes('failed')) failedAt = Date.now();
    });
    const killer = setTimeout(() => child.kill(), 15_000);
    try {
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      const exitedAt = Date.now();
      assert.equal(code, 0, `the child exited with ${code}: ${out}`);
      assert.match(out, /failed 503/);
      assert.ok(exitedAt - failedAt < 3_000, `exited ${exitedAt - failedAt} ms after the refresh failed`);
    } finally {
      clearTimeout(killer);
      stack.proxy.clear();
    }
  });

});

describe('OAuthAuthorizationController', () => {
  test('requestToken({ authorization, scope }, fieldParameters) calls the token endpoint', async () => {
    const client = makeClient({ tokenUrl: stack.op.tokenUrl });
    const controller = new OAuthAuthorizationController(client);
    const res = await controller.requestToken({ authorization: basicCredentials('svc', 'svc-secret'), scope: 'api:read' }, { resource: stack.op.resource });
    assert.equal(res.statusCode, 200);
    assert.equal(res.result.tokenType, 'Bearer');
    assert.equal(res.result.scope, 'api:read');
    assert.equal(res.result.expiresIn, TTL);
    const form = new URLSearchParams(stack.op.tokenRequests.at(-1)!.body);
    assert.deepEqual(Object.fromEntries(form), { grant_type: 'client_credentials', scope: 'api:read', resource: stack.op.resource });

    const api = await fetch(`${stack.api.url}/things`, { headers: { authorization: `Bearer ${res.result.accessToken}` } });
    assert.equal(api.status, 200);
    await api.arrayBuffer();

    const error = await rejection(() => controller.requestToken({ authorization: basicCredentials('svc', 'wrong'), scope: 'api:read' }));
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.error, 'invalid_client');
  });
});

test('request paths reach the server exactly as a URL parser makes them, whether the Client splits them itself or not', async () => {
  const server = await startScripted((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  const paths = ['/things', '//twice/slash', '/a/../things', '/a/./b', '/%2e%2e/things', '/%2E/x', '/things?', '/things?x=1&y', '/sp ace', '/ünï', '/a/b/', '/q?a=%2e'];
  try {
    for (const base of [server.url, `${server.url}/v1`, server.url.replace('127.0.0.1', '127.000.000.001'), `${server.url}/v1/../v2`]) {
      const client = new Client({ baseUrl: base });
      clients.push(client);
      for (const path of paths) {
        const seen = server.requests.length;
        await client.get(path, { auth: false });
        const expected = new URL(base.replace(/\/+$/, '') + path);
        assert.equal(server.requests[seen]!.url, expected.pathname + expected.search, `${base} + ${path}`);
      }
    }
  } finally {
    await server.close();
  }
});

test('response headers: repeated ones joined, prototype-named ones (constructor, __proto__) kept as headers, each response its own object, on the Client\'s Agent and on a caller\'s', async () => {
  const server = await startScripted((_req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('constructor', 'c');
    res.setHeader('__proto__', 'p');
    res.setHeader('x-one', '1');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const dispatcher = new Agent();
  try {
    for (const options of [{}, { dispatcher }]) {
      const client = new Client({ baseUrl: server.url, ...options });
      clients.push(client);
      const first = await client.get<{ ok: boolean }>('/h', { auth: false });
      assert.deepEqual(first.result, { ok: true });
      assert.equal(first.headers['set-cookie'], 'a=1, b=2');
      assert.equal(first.headers['constructor'], 'c');
      assert.ok(Object.hasOwn(first.headers, '__proto__') && Object.getOwnPropertyDescriptor(first.headers, '__proto__')!.value === 'p', 'a header named __proto__ is a header');
      assert.equal(Object.getPrototypeOf(first.headers), Object.prototype);
      assert.equal(first.headers['x-one'], '1');
      first.headers['x-one'] = 'changed by the caller';
      const second = await client.get('/h', { auth: false });
      assert.notEqual(second.headers, first.headers);
      assert.equal(second.headers['x-one'], '1');
      assert.equal(Object.getPrototypeOf(second.headers), Object.prototype);
    }
  } finally {
    await dispatcher.close();
    await server.close();
  }
});
