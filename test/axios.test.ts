// oauth-client-credentials/axios: attachClientCredentials on a real axios instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import axios, { type AxiosError } from 'axios';
import axios17 from 'axios-1-7';
import { attachClientCredentials } from '../src/adapters/axios.js';
import { Client, InvalidOptionError } from '../src/index.js';
import { adapterCases, adapterClient, adapterServers, type AdapterUnderTest } from './helpers/adapterCases.js';
import { SVC_CREDENTIALS, manualClock } from './helpers/fixtures.js';
import { startRedirectOrigins } from './helpers/redirectOrigins.js';

const servers = adapterServers();

const adapters: AdapterUnderTest[] = [
  {
    name: 'axios with attachClientCredentials',
    attach: (client) => {
      const instance = axios.create();
      const detach = attachClientCredentials(instance, client);
      return {
        get: async (url) => {
          try {
            const response = await instance.get(url);
            return { status: response.status, body: response.data as unknown };
          } catch (error) {
            const response = (error as AxiosError).response;
            if (!response) throw error;
            return { status: response.status, body: response.data as unknown };
          }
        },
        close: detach,
      };
    },
  },
];

adapterCases(servers, adapters);

test('axios: baseURL-relative paths, a JSON body replayed after a 401 (also when validateStatus accepts it), config.oauth, detach', async () => {
  const clock = manualClock();
  const client = adapterClient(servers, clock);
  const instance = axios.create({ baseURL: servers.stack.api.url });
  const detach = attachClientCredentials(instance, client);
  try {
    assert.equal((await instance.get('/things')).status, 200);
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    const posted = await instance.post<{ body: string }>('/echo', { hello: 'world' });
    assert.equal(posted.status, 200);
    assert.deepEqual(JSON.parse(posted.data.body), { hello: 'world' });
    assert.equal(client.stats().unauthorizedRetries, 1);

    clock.advance(5_000); // one refusal per key per 5 s re-fetches
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    const lenient = await instance.get('/things', { validateStatus: () => true });
    assert.equal(lenient.status, 200);
    assert.equal(client.stats().unauthorizedRetries, 2);

    const scoped = await instance.get<{ scope: string }>('/things', { oauth: { scopes: 'api:write' } });
    assert.equal(scoped.data.scope, 'api:write');

    const seen = servers.stack.api.requests.length;
    await assert.rejects(instance.get('/things', { oauth: { retryOnUnauthorized: false }, headers: { Authorization: 'Bearer mine' } }), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.length - seen, 1);
    assert.equal(servers.stack.api.requests[seen]!.headers.authorization, 'Bearer mine');

    detach();
    await assert.rejects(instance.get('/things'), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.at(-1)!.headers.authorization, undefined);
  } finally {
    await client.close();
  }
});

test('axios: attaching needs an allowed origin', async () => {
  const bare = new Client({ tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    assert.throws(() => attachClientCredentials(axios.create(), bare), InvalidOptionError);
  } finally {
    await bare.close();
  }
});

test('axios: a request whose token is cached is dispatched synchronously (no promise hop); a cold one waits, then both carry the token', async () => {
  const client = adapterClient(servers, manualClock());
  const instance = axios.create({ baseURL: servers.stack.api.url });
  const detach = attachClientCredentials(instance, client);
  // An adapter that records when axios calls it, then hands the request to axios's own http adapter.
  const http = axios.getAdapter('http');
  let dispatched = 0;
  const adapter = (config: Parameters<typeof http>[0]) => {
    dispatched++;
    return http(config);
  };
  try {
    const cold = instance.get('/things', { adapter });
    assert.equal(dispatched, 0, 'without a cached token the request waits for one before it is dispatched');
    assert.equal((await cold).status, 200);
    assert.equal(dispatched, 1);
    const warm = instance.get('/things', { adapter });
    assert.equal(dispatched, 2, 'with a cached token axios dispatches within the call');
    assert.equal((await warm).status, 200);
    const hits = client.stats().cacheHits;
    await instance.get('/things');
    assert.equal(client.stats().cacheHits, hits + 1, 'one cache hit per request');
    assert.equal(client.stats().tokenRequests, 1);
    const sent = servers.stack.api.requests.slice(-3).map((r) => r.headers.authorization);
    assert.ok(sent.every((h) => h?.startsWith('Bearer ')), 'every request carried the token');
  } finally {
    detach();
    await client.close();
  }
});

test('axios: the target and Authorization are checked again when the interceptor runs (another interceptor may change them)', async () => {
  const client = adapterClient(servers, manualClock());
  await client.clientCredentialsAuthManager.getToken(); // cached: the synchronous path
  const instance = axios.create();
  // Registered after ours, so it runs before them (axios runs request interceptors last-registered first), but after
  // axios chose which of ours apply: it points a request without a baseURL at the API, and gives others their own
  // Authorization (one whose target was allowed from the start, so ours chose its synchronous path).
  const detach = attachClientCredentials(instance, client);
  const other = instance.interceptors.request.use((config) => {
    if (config.url === '/late-base') {
      config.baseURL = servers.stack.api.url;
      config.url = '/things';
    }
    if (config.url === `${servers.stack.api.url}/things?mine`) config.headers.Authorization = 'Bearer mine';
    if (config.url === '/mine') {
      config.baseURL = servers.stack.api.url;
      config.url = '/things';
      config.headers.Authorization = 'Bearer mine';
    }
    return config;
  });
  try {
    assert.equal((await instance.get('/late-base')).status, 200, 'a baseURL set by an interceptor still gets the token');
    assert.match(servers.stack.api.requests.at(-1)!.headers.authorization ?? '', /^Bearer (?!mine)/);
    await assert.rejects(instance.get('/mine', { oauth: { retryOnUnauthorized: false } }), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.at(-1)!.headers.authorization, 'Bearer mine', 'an Authorization set by an interceptor is left alone');
    await assert.rejects(instance.get(`${servers.stack.api.url}/things?mine`, { oauth: { retryOnUnauthorized: false } }), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.at(-1)!.headers.authorization, 'Bearer mine', 'also on the synchronous path');
    await assert.rejects(instance.get(`${servers.stack.api.url}/things`, { oauth: { scopes: 'bad\u0000scope' } }), InvalidOptionError);
  } finally {
    instance.interceptors.request.eject(other);
    detach();
    await client.close();
  }
});

test('axios: a 401 from another origin after a redirect keeps the token (follow-redirects sent it no Authorization)', async () => {
  const origins = await startRedirectOrigins();
  const client = new Client({ baseUrl: origins.homeUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const api = axios.create({ baseURL: origins.homeUrl, validateStatus: () => true });
  attachClientCredentials(api, client);
  try {
    assert.equal((await api.get('/away')).status, 401);
    assert.deepEqual(origins.seenByOther, [undefined]);
    assert.equal(client.stats().unauthorizedRetries, 0);
    assert.equal(client.stats().tokenRequests, 1);
    await client.clientCredentialsAuthManager.getToken();
    assert.equal(client.stats().tokenRequests, 1, 'the token was not refused');
    // A 401 from the origin itself (here after a redirect within it) is about the token: refused and replaced once.
    assert.equal((await api.get('/here')).status, 401);
    assert.equal(client.stats().unauthorizedRetries, 1);
    assert.equal(client.stats().tokenRequests, 2);
  } finally {
    await client.close();
    await origins.close();
  }
});

// axios from 1.18 strips Authorization on any cross-origin redirect by itself; the versions before it (the peer range
// starts at 1.7) leave that to follow-redirects, which keeps it for a subdomain: both must keep the token home.
for (const [version, axiosOf] of [
  [`${(await import('axios/package.json', { with: { type: 'json' } })).default.version} (installed)`, axios],
  ['1.7.9 (the oldest of the peer range)', axios17 as unknown as typeof axios],
] as const) {
  test(`axios ${version}: a redirect to a subdomain that is not an allowed origin gets no token`, async () => {
    // follow-redirects' rules for Authorization treat subdomains apart (its source keeps the header for a subdomain
    // host): a guard that the token still never reaches one. One server answers for api.test and evil.api.test (by
    // Host), both resolved to 127.0.0.1 through axios's `lookup`.
    const { createServer } = await import('node:http');
    const seen: { host: string | undefined; authorization: string | undefined }[] = [];
    const server = createServer((req, res) => {
      seen.push({ host: req.headers.host, authorization: req.headers.authorization });
      if (req.headers.host?.startsWith('api.test') && req.url === '/away') res.writeHead(302, { location: `http://evil.${req.headers.host}/x` }).end();
      else if (req.headers.host?.startsWith('api.test') && req.url === '/stay') res.writeHead(302, { location: '/landed' }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = new Client({ baseUrl: `http://api.test:${port}`, allowInsecureHttp: true, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const lookup = (_host: string, _options: unknown, callback: (error: Error | null, address: string, family: number) => void): void => callback(null, '127.0.0.1', 4);
    const api = axiosOf.create({ baseURL: `http://api.test:${port}`, lookup } as Parameters<typeof axios.create>[0]);
    attachClientCredentials(api, client);
    try {
      assert.equal((await api.get('/away')).status, 200);
      const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
      assert.deepEqual(seen, [
        { host: `api.test:${port}`, authorization: `Bearer ${token}` },
        { host: `evil.api.test:${port}`, authorization: undefined },
      ]);
      // A redirect within the allowed origin keeps the token.
      assert.equal((await api.get('/stay')).status, 200);
      assert.equal(seen.at(-1)!.authorization, `Bearer ${token}`);
      // A beforeRedirect of the caller's own still runs, after the guard.
      const hops: string[] = [];
      const beforeRedirect = (options: Record<string, unknown>) => {
        hops.push(`${String(options['href'])} ${String((options['headers'] as Record<string, unknown>)['Authorization'])}`);
      };
      assert.equal((await api.get('/away', { beforeRedirect })).status, 200);
      assert.equal((await api.get('/stay', { beforeRedirect })).status, 200);
      assert.deepEqual(hops, [`http://evil.api.test:${port}/x undefined`, `http://api.test:${port}/landed Bearer ${token}`]);
      assert.deepEqual(seen.slice(-4).map((r) => r.authorization), [`Bearer ${token}`, undefined, `Bearer ${token}`, `Bearer ${token}`]);
    } finally {
      await client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}

test('axios: the token is not in util.inspect or JSON.stringify of an error (config headers, the request sent, an echoing body or header), nor of a request config; a resend of error.config gets the token again', async () => {
  // An API that answers 500 echoing the Authorization it got, or resets the connection (a network error from
  // follow-redirects, which keeps its own copy of the headers); a 200 elsewhere.
  const { createServer } = await import('node:http');
  const { inspect } = await import('node:util');
  const { closeServer, listenLocal } = await import('./helpers/http.js');
  const server = createServer((req, res) => {
    if (req.url === '/reset') return req.socket.destroy();
    if (req.url === '/echo-500') return res.writeHead(500, { 'content-type': 'application/json', 'x-echo': String(req.headers.authorization) }).end(JSON.stringify({ got: req.headers.authorization }));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const apiUrl = await listenLocal(server);
  const client = new Client({ baseUrl: apiUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const instance = axios.create({ baseURL: apiUrl });
  const detach = attachClientCredentials(instance, client);
  try {
    const ok = await instance.get('/ok');
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    assert.equal(ok.status, 200);
    // Our own bookkeeping on the config (a symbol property, which util.inspect shows) holds no token. (The
    // config's `Authorization` itself is axios's, as with a header set by hand.)
    const ours = Object.getOwnPropertySymbols(ok.config).map((symbol) => inspect((ok.config as unknown as Record<symbol, unknown>)[symbol], { depth: Infinity }));
    assert.ok(ours.length > 0 && ours.every((text) => !text.includes(token)), `inspect of the adapter's record on the config shows the token: ${ours.join()}`);
    const cases: [string, object][] = [
      ['an HTTP error echoing the token', { url: '/echo-500' }],
      ['an HTTP error without redirects (native http)', { url: '/echo-500', maxRedirects: 0 }],
      ['a network error', { url: '/reset' }],
      ["axios's fetch adapter", { url: '/echo-500', adapter: 'fetch' }],
    ];
    for (const [label, config] of cases) {
      const error = await instance.request(config).then(
        () => assert.fail(`${label}: resolved`),
        (e: unknown) => e as AxiosError,
      );
      assert.ok(error.isAxiosError, label);
      for (const [view, text] of [
        ['inspect', inspect(error)],
        ['inspect depth Infinity', inspect(error, { depth: Infinity })],
        ['JSON.stringify', JSON.stringify(error)],
      ] as const) {
        assert.ok(!text.includes(token), `${label}: ${view} of the error shows the token`);
      }
      // The caller can still resend the failed request's config (as axios-retry does): it gets the token again.
      if (config !== cases[2]![1]) {
        const again = await instance.request({ ...error.config, url: '/ok' });
        assert.equal(again.status, 200, label);
      }
    }
    const sent = await instance.request({ url: '/ok' });
    assert.equal(sent.status, 200);
  } finally {
    detach();
    await client.close();
    await closeServer(server);
  }
});

test('axios: a URL object as `url` (axios takes one) gets the token on an allowed origin and none elsewhere (the adapter threw "url.startsWith is not a function")', async () => {
  const client = adapterClient(servers, manualClock());
  const instance = axios.create();
  const detach = attachClientCredentials(instance, client);
  try {
    const own = await instance.get(new URL(`${servers.stack.api.url}/things`) as unknown as string);
    assert.equal(own.status, 200);
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    assert.equal(servers.stack.api.requests.at(-1)!.headers.authorization, `Bearer ${token}`);
    const elsewhere = await instance.get(new URL(`${servers.other.url}/public`) as unknown as string);
    assert.equal(elsewhere.status, 200);
    assert.equal(servers.other.requests.at(-1)!.headers.authorization, undefined);
  } finally {
    detach();
    await client.close();
  }
});

test("axios: a request authenticated by axios's own `auth` option (Basic) is left alone: no token, and its 401 neither refuses the Client's token nor is retried (the token was thrown away and a new one fetched)", async () => {
  const client = adapterClient(servers, manualClock());
  const instance = axios.create({ baseURL: servers.stack.api.url });
  const detach = attachClientCredentials(instance, client);
  try {
    assert.equal((await instance.get('/things')).status, 200);
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    const seen = servers.stack.api.requests.length;
    await assert.rejects(instance.get('/things', { auth: { username: 'user', password: 'pass' } }), (e: AxiosError) => e.response?.status === 401);
    assert.deepEqual(servers.stack.api.requests.slice(seen).map((r) => r.headers.authorization), [`Basic ${Buffer.from('user:pass').toString('base64')}`]);
    assert.equal(client.stats().unauthorizedRetries, 0);
    assert.equal(client.stats().tokenRequests, 1, 'the token was refused and replaced');
    assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, token);
  } finally {
    detach();
    await client.close();
  }
});

test("axios: responseType 'stream': the 401's body is released before the retry (its socket was held: with maxSockets 1 the retry waited forever)", async () => {
  const { createServer, Agent: HttpAgent } = await import('node:http');
  const { closeServer, listenLocal } = await import('./helpers/http.js');
  const refused = new Set<string>();
  const server = createServer((req, res) => {
    req.resume();
    if (refused.has(String(req.headers.authorization))) res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end('x'.repeat(100_000));
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  server.keepAliveTimeout = 60_000; // the server keeps an idle connection open, as nginx does for 75 s
  const apiUrl = await listenLocal(server);
  const client = new Client({ baseUrl: apiUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  const instance = axios.create({ baseURL: apiUrl, httpAgent, responseType: 'stream' });
  const detach = attachClientCredentials(instance, client);
  try {
    const first = await instance.get('/things');
    first.data.resume();
    refused.add(`Bearer ${(await client.clientCredentialsAuthManager.getToken()).accessToken}`);
    let timer: NodeJS.Timeout | undefined;
    const retried = await Promise.race([instance.get('/things'), new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 5_000)))]);
    clearTimeout(timer);
    assert.notEqual(retried, 'hung', 'the retry waited for the socket the unread 401 holds');
    assert.equal(retried === 'hung' ? 0 : retried.status, 200);
    if (retried !== 'hung') retried.data.resume();
    assert.equal(client.stats().unauthorizedRetries, 1);
  } finally {
    detach();
    httpAgent.destroy();
    await client.close();
    await closeServer(server);
  }
});
