// client.fetch: WHATWG fetch with the Client's token, plain and under openapi-fetch and ky (the real packages).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import createOpenApiClient from 'openapi-fetch';
import ky from 'ky';
import { Client, InvalidOptionError, MissingCredentialsError } from '../src/index.js';
import { adapterCases, adapterClient, adapterServers, type AdapterResponse, type AdapterUnderTest } from './helpers/adapterCases.js';
import { SVC_CREDENTIALS, manualClock, tokenRequestCounter } from './helpers/fixtures.js';
import { startRedirectOrigins } from './helpers/redirectOrigins.js';

const servers = adapterServers();

async function read(response: Response): Promise<AdapterResponse> {
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

type Get = (path: string) => Promise<{ response: Response; data?: unknown; error?: unknown }>;

const adapters: AdapterUnderTest[] = [
  {
    name: 'client.fetch',
    attach: (client) => {
      const fetch = client.fetch;
      return { get: async (url) => read(await fetch(url)) };
    },
  },
  {
    name: 'openapi-fetch over client.fetch',
    attach: (client) => {
      const apis = new Map<string, Get>();
      return {
        get: async (url) => {
          const { origin, pathname } = new URL(url);
          let get = apis.get(origin);
          if (!get) {
            const api = createOpenApiClient({ baseUrl: origin, fetch: client.fetch });
            get = (api.GET as unknown as Get).bind(api);
            apis.set(origin, get);
          }
          const { response, data, error } = await get(pathname);
          return { status: response.status, body: data ?? error };
        },
      };
    },
  },
  {
    name: 'ky over client.fetch',
    attach: (client) => {
      const api = ky.create({ fetch: client.fetch, retry: 0, throwHttpErrors: false });
      return { get: async (url) => read(await api.get(url)) };
    },
  },
];

adapterCases(servers, adapters);

test('client.fetch is a standard fetch: a Response, bound, Request input with its body, headers of every kind', async () => {
  const client = adapterClient(servers);
  try {
    const { fetch } = client;
    const url = `${servers.stack.api.url}/echo`;
    const plain = await fetch(url, { method: 'POST', body: 'one', headers: { 'x-one': '1' } });
    assert.ok(plain instanceof Response);
    const echoed = (await plain.json()) as { body: string; headers: Record<string, string> };
    assert.equal(echoed.body, 'one');
    assert.equal(echoed.headers['x-one'], '1');
    assert.match(echoed.headers.authorization!, /^Bearer /);
    const fromRequest = (await (await fetch(new Request(url, { method: 'POST', body: 'two', headers: { 'x-two': '2' } }))).json()) as typeof echoed;
    assert.equal(fromRequest.body, 'two');
    assert.equal(fromRequest.headers['x-two'], '2');
    const withHeaders = (await (await fetch(new URL(url), { method: 'POST', body: 'three', headers: new Headers({ 'x-three': '3' }) })).json()) as typeof echoed;
    assert.equal(withHeaders.headers['x-three'], '3');
    const withPairs = (await (await fetch(url, { method: 'POST', body: 'four', headers: [['x-four', '4']] })).json()) as typeof echoed;
    assert.equal(withPairs.headers['x-four'], '4');
    assert.match(withPairs.headers.authorization!, /^Bearer /);
  } finally {
    await client.close();
  }
});

test('client.fetch replays a Request body and a string body after a 401, and not a stream body', async () => {
  const clock = manualClock();
  const client = adapterClient(servers, clock);
  try {
    const url = `${servers.stack.api.url}/echo`;
    const revokeCurrent = async (): Promise<void> => {
      clock.advance(5_000); // one refusal per key per 5 s re-fetches
      servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    };
    await revokeCurrent();
    const request = await client.fetch(new Request(url, { method: 'POST', body: 'replayed' }));
    assert.equal(request.status, 200);
    assert.equal(((await request.json()) as { body: string }).body, 'replayed');
    await revokeCurrent();
    const string = await client.fetch(url, { method: 'PUT', body: 'again' });
    assert.equal(string.status, 200);
    assert.equal(((await string.json()) as { body: string }).body, 'again');
    assert.equal(client.stats().unauthorizedRetries, 2);
    await revokeCurrent();
    const stream = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('once')), c.close()) });
    const streamed = await client.fetch(url, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(streamed.status, 401, 'a stream cannot be sent twice: the 401 is the answer');
    await streamed.body?.cancel();
    assert.equal(client.stats().unauthorizedRetries, 2);
    const noRetry = await client.fetch(url, { method: 'POST', body: 'x', oauth: { retryOnUnauthorized: false } });
    assert.equal(noRetry.status, 401, 'the stream request left the revoked token in place; no retry asked');
    await noRetry.body?.cancel();
  } finally {
    await client.close();
  }
});

test('client.fetch: init.oauth selects the token (scopes); a caller Authorization header is left alone', async () => {
  const client = adapterClient(servers);
  try {
    const url = `${servers.stack.api.url}/things`;
    const read = async (init?: Parameters<typeof client.fetch>[1]) => (await (await client.fetch(url, init)).json()) as { scope: string };
    assert.equal((await read()).scope, 'api:read');
    assert.equal((await read({ oauth: { scopes: 'api:write' } })).scope, 'api:write');
    assert.equal((await read({ oauth: { scopes: ['api:read', 'api:write'] } })).scope, 'api:read api:write');
    const tokenRequests = tokenRequestCounter(servers.stack.op);
    assert.equal((await read({ oauth: { scopes: 'api:write' } })).scope, 'api:write');
    assert.equal(tokenRequests(), 0, 'cached per scope set');
    const seen = servers.stack.api.requests.length;
    const own = await client.fetch(url, { headers: { Authorization: 'Bearer mine' } });
    assert.equal(own.status, 401);
    await own.body?.cancel();
    assert.equal(servers.stack.api.requests.length - seen, 1, 'no retry of a request the caller authenticated');
    assert.equal(servers.stack.api.requests[seen]!.headers.authorization, 'Bearer mine');
    await assert.rejects(client.fetch(url, { oauth: { audience: '' } }), InvalidOptionError);
  } finally {
    await client.close();
  }
});

test('client.fetch needs an allowed origin, and credentials for an allowed one', async () => {
  const bare = new Client({ tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    assert.throws(() => bare.fetch, (e: unknown) => e instanceof InvalidOptionError && e.message.includes('allowedOrigins'));
  } finally {
    await bare.close();
  }
  const anonymous = new Client({ baseUrl: servers.stack.api.url });
  try {
    await assert.rejects(anonymous.fetch(`${servers.stack.api.url}/things`), MissingCredentialsError);
    assert.equal((await anonymous.fetch(`${servers.other.url}/public`)).status, 200, 'other origins need no token');
  } finally {
    await anonymous.close();
  }
});

test('client.fetch: an abort while waiting for the token rejects at once and sends nothing', async () => {
  servers.stack.proxy.inject({ kind: 'hang' });
  const client = adapterClient(servers, undefined, { tokenUrl: servers.stack.proxiedTokenUrl });
  try {
    const seen = servers.stack.api.requests.length;
    const controller = new AbortController();
    const pending = client.fetch(`${servers.stack.api.url}/things`, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await assert.rejects(pending);
    assert.equal(servers.stack.api.requests.length, seen);
  } finally {
    servers.stack.proxy.clear();
    await client.close();
  }
});

test('client.fetch goes through the dispatcher the Client was given', async () => {
  const { Agent } = await import('undici');
  const seen: string[] = [];
  const agent = new Agent();
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    seen.push(`${String(opts.origin)}${opts.path}`);
    return dispatch(opts, handler);
  });
  const client = adapterClient(servers, undefined, { dispatcher });
  try {
    const response = await client.fetch(`${servers.stack.api.url}/things`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.ok(seen.includes(`${servers.stack.api.url}/things`), seen.join(', '));
  } finally {
    await client.close();
    await agent.close();
  }
});

test('client.fetch resolves a relative URL against baseUrl as client.request does, and the origin rules apply to the result', async () => {
  const client = adapterClient(servers);
  const nested = client.withConfiguration({ baseUrl: `${servers.stack.api.url}/status` });
  const bare = new Client({ allowedOrigins: [servers.stack.api.url], tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    const seen = servers.stack.api.requests.length;
    assert.equal((await client.fetch('/things?x=1')).status, 200);
    assert.equal((await client.fetch('things')).status, 200);
    assert.equal((await client.fetch(`${servers.stack.api.url}/things`)).status, 200);
    // A baseUrl with a path: the relative URL goes under it (not URL resolution, which would drop `/status`).
    assert.equal((await nested.fetch('/204')).status, 204);
    const received = servers.stack.api.requests.slice(seen);
    assert.deepEqual(received.map((r) => r.url), ['/things?x=1', '/things', '/things', '/status/204']);
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    assert.ok(received.every((r) => r.headers.authorization === `Bearer ${token}`));
    // Without baseUrl a relative URL is fetch's own error, and no token request is made.
    await assert.rejects(bare.fetch('/things'), TypeError);
    assert.equal(bare.stats().tokenRequests, 0);
  } finally {
    await nested.close();
    await bare.close();
    await client.close();
  }
});

test('client.fetch: a 401 from another origin after a redirect keeps the token (fetch sent it no Authorization)', async () => {
  // The allowed origin redirects to another origin, which answers 401 to everything. Fetch drops Authorization on a
  // cross-origin redirect, so that 401 says nothing about our token: it must not be refused, nor a new one fetched.
  const origins = await startRedirectOrigins();
  const client = new Client({ baseUrl: origins.homeUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    const response = await client.fetch('/away');
    assert.equal(response.status, 401);
    assert.equal(response.url, `${origins.otherUrl}/x`);
    assert.deepEqual(origins.seenByOther, [undefined]);
    assert.equal(client.stats().tokenRequests, 1);
    assert.equal(client.stats().unauthorizedRetries, 0);
    const first = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    assert.equal(client.stats().tokenRequests, 1, 'the token was not refused');
    // A redirect within the origin keeps Authorization: that 401 is about our token, which is refused and replaced once.
    assert.equal((await client.fetch('/here')).status, 401);
    assert.equal(origins.deniedAtHome[0], `Bearer ${first}`);
    assert.equal(client.stats().unauthorizedRetries, 1);
    assert.equal(client.stats().tokenRequests, 2);
  } finally {
    await client.close();
    await origins.close();
  }
});

test('client.fetch: headers given as any iterable of pairs (a Map, a generator), as fetch takes them, are all sent; an Authorization among them is left alone', async () => {
  const client = adapterClient(servers);
  try {
    const url = `${servers.stack.api.url}/echo`;
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    const echoed = async (headers: Iterable<[string, string]>) => {
      const response = await client.fetch(url, { headers: headers as unknown as RequestInit["headers"] });
      assert.equal(response.status, 200);
      return ((await response.json()) as { headers: Record<string, string> }).headers;
    };
    const fromMap = await echoed(new Map([['X-Map', 'm']]));
    assert.equal(fromMap['x-map'], 'm');
    assert.equal(fromMap.authorization, `Bearer ${token}`);
    const fromGenerator = await echoed((function* () {
      yield ['x-generated', 'g'] as [string, string];
    })());
    assert.equal(fromGenerator['x-generated'], 'g');
    assert.equal(fromGenerator.authorization, `Bearer ${token}`);
    // The caller's own Authorization in a Map: sent as given, and its 401 is the answer (no retry, no token refused).
    const seen = servers.stack.api.requests.length;
    const own = await client.fetch(url, { headers: new Map([['Authorization', 'Bearer mine']]) as unknown as RequestInit["headers"] });
    assert.equal(own.status, 401);
    await own.body?.cancel();
    assert.deepEqual(servers.stack.api.requests.slice(seen).map((r) => r.headers.authorization), ['Bearer mine']);
    assert.equal(client.stats().unauthorizedRetries, 0);
  } finally {
    await client.close();
  }
});
