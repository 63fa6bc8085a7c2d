// client.interceptor(): an undici interceptor, under Node's global fetch and undici.request through
// setGlobalDispatcher (restored after each test), and on a dispatcher of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, getGlobalDispatcher, interceptors, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { Client, InvalidOptionError, OAuthProviderError } from '../src/index.js';
import { adapterCases, adapterClient, adapterServers, type AdapterUnderTest } from './helpers/adapterCases.js';
import { SVC_CREDENTIALS, manualClock } from './helpers/fixtures.js';
import { startRedirectOrigins } from './helpers/redirectOrigins.js';

const servers = adapterServers();

/** Installs `client.interceptor()` on a new global Agent; `close` restores the previous global dispatcher. */
function globally(client: Client): { close(): Promise<void> } {
  const previous = getGlobalDispatcher();
  const agent = new Agent();
  setGlobalDispatcher(agent.compose(client.interceptor()));
  return {
    close: async () => {
      setGlobalDispatcher(previous);
      await agent.close();
    },
  };
}

const parse = (text: string): unknown => (text ? (JSON.parse(text) as unknown) : undefined);

const adapters: AdapterUnderTest[] = [
  {
    name: 'global fetch with client.interceptor()',
    attach: (client) => {
      const installed = globally(client);
      return {
        get: async (url) => {
          const response = await fetch(url);
          return { status: response.status, body: parse(await response.text()) };
        },
        close: installed.close,
      };
    },
  },
  {
    name: 'undici.request with client.interceptor()',
    attach: (client) => {
      const installed = globally(client);
      return {
        get: async (url) => {
          const response = await request(url);
          return { status: response.statusCode, body: parse(await response.body.text()) };
        },
        close: installed.close,
      };
    },
  },
];

adapterCases(servers, adapters);

test('interceptor: a string body is replayed after a 401; the caller Authorization is left alone; scopes select the token', async () => {
  const client = adapterClient(servers);
  const agent = new Agent();
  const dispatcher = agent.compose(client.interceptor());
  const write = new Agent().compose(client.interceptor({ scopes: 'api:write' }));
  try {
    const url = `${servers.stack.api.url}/echo`;
    assert.equal((await request(`${servers.stack.api.url}/things`, { dispatcher })).statusCode, 200);
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    const replayed = await request(url, { dispatcher, method: 'POST', body: 'payload', headers: ['x-array', 'yes'] });
    assert.equal(replayed.statusCode, 200);
    const echoed = (await replayed.body.json()) as { body: string; headers: Record<string, string> };
    assert.equal(echoed.body, 'payload');
    assert.equal(echoed.headers['x-array'], 'yes');
    assert.equal(client.stats().unauthorizedRetries, 1);

    const seen = servers.stack.api.requests.length;
    const own = await request(`${servers.stack.api.url}/things`, { dispatcher, headers: { authorization: 'Bearer mine' } });
    assert.equal(own.statusCode, 401);
    await own.body.dump();
    assert.equal(servers.stack.api.requests.length - seen, 1);
    assert.equal(servers.stack.api.requests[seen]!.headers.authorization, 'Bearer mine');

    const scoped = (await (await request(`${servers.stack.api.url}/things`, { dispatcher: write })).body.json()) as { scope: string };
    assert.equal(scoped.scope, 'api:write');
  } finally {
    await agent.close();
    await write.close();
    await client.close();
  }
});

test('interceptor: the Client\'s own token requests do not loop through it, even on an allowed token origin', async () => {
  for (const credentials of [SVC_CREDENTIALS, { oAuthClientId: 'postclient', oAuthClientSecret: 'post-secret', oAuthScopes: 'api:read' }]) {
    // The Client's own dispatcher is the composed one, and the token endpoint's origin is allowed.
    let inner: Dispatcher.DispatcherComposeInterceptor | undefined;
    const agent = new Agent();
    const dispatcher = agent.compose((dispatch) => (opts, handler) => inner!(dispatch)(opts, handler));
    const client = new Client({
      baseUrl: servers.stack.api.url,
      allowedOrigins: [servers.stack.op.issuer],
      tokenUrl: servers.stack.op.tokenUrl,
      dispatcher,
      clientCredentialsAuthCredentials: credentials,
    });
    inner = client.interceptor();
    try {
      const response = await request(`${servers.stack.api.url}/things`, { dispatcher });
      assert.equal(response.statusCode, 200);
      assert.equal(((await response.body.json()) as { client_id: string }).client_id, credentials.oAuthClientId);
      const tokenRequest = servers.stack.op.tokenRequests.at(-1)!;
      assert.doesNotMatch(String(tokenRequest.headers.authorization), /^Bearer/);
    } finally {
      await client.close();
      await agent.close();
    }
  }
});

test('interceptor: an abort while waiting for the token ends the request at once', async () => {
  servers.stack.proxy.inject({ kind: 'hang' });
  const client = adapterClient(servers, manualClock(), { tokenUrl: servers.stack.proxiedTokenUrl });
  const agent = new Agent();
  const dispatcher = agent.compose(client.interceptor());
  try {
    const seen = servers.stack.api.requests.length;
    const controller = new AbortController();
    const pending = request(`${servers.stack.api.url}/things`, { dispatcher, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await assert.rejects(pending, /stop/);
    assert.equal(servers.stack.api.requests.length, seen);
  } finally {
    servers.stack.proxy.clear();
    await client.close();
    await agent.close();
  }
});

test('interceptor: needs an allowed origin; a token failure fails the request with the typed error', async () => {
  const bare = new Client({ tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  assert.throws(() => bare.interceptor(), InvalidOptionError);
  await bare.close();
  const wrong = adapterClient(servers, manualClock(), { clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'wrong' } });
  const agent = new Agent();
  try {
    await assert.rejects(request(`${servers.stack.api.url}/things`, { dispatcher: agent.compose(wrong.interceptor()) }), (e: unknown) => e instanceof OAuthProviderError && e.code === 'ERR_OAUTH_PROVIDER' && !String(e.stack).includes('wrong'));
  } finally {
    await wrong.close();
    await agent.close();
  }
});

test('interceptor: with undici\'s redirect interceptor inside it, a 401 from another origin keeps the token', async () => {
  const origins = await startRedirectOrigins();
  const client = new Client({ baseUrl: origins.homeUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  // compose() applies its arguments in order, so client.interceptor() wraps the redirect interceptor: it sees only
  // the final answer, and undici dropped Authorization on the way to the other origin.
  const agent = new Agent().compose(interceptors.redirect({ maxRedirections: 3 }), client.interceptor());
  try {
    const away = await request(`${origins.homeUrl}/away`, { dispatcher: agent });
    await away.body.text();
    assert.equal(away.statusCode, 401);
    assert.deepEqual(origins.seenByOther, [undefined]);
    assert.equal(client.stats().unauthorizedRetries, 0);
    await client.clientCredentialsAuthManager.getToken();
    assert.equal(client.stats().tokenRequests, 1, 'the token was not refused');
    // A redirect within the origin keeps Authorization: that 401 is the token's, refused and retried once.
    const here = await request(`${origins.homeUrl}/here`, { dispatcher: agent });
    await here.body.text();
    assert.equal(here.statusCode, 401);
    assert.equal(client.stats().unauthorizedRetries, 1);
    assert.equal(client.stats().tokenRequests, 2);
  } finally {
    await agent.close();
    await client.close();
    await origins.close();
  }
});

test('interceptor: headers given as a generator (undici takes any iterable of pairs) reach the API whole, with the token, or with the caller\'s own Authorization (they were read up to look for Authorization, and sent empty)', async () => {
  const clock = manualClock();
  const client = adapterClient(servers, clock);
  const agent = new Agent();
  const dispatcher = agent.compose(client.interceptor());
  try {
    const url = `${servers.stack.api.url}/echo`;
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    const echoed = async (headers: () => Iterable<[string, string]>, body?: string) => {
      const response = await request(url, { method: body === undefined ? 'GET' : 'POST', body, headers: headers() as unknown as Record<string, string>, dispatcher });
      const text = await response.body.text();
      return { status: response.statusCode, headers: response.statusCode === 200 ? (JSON.parse(text) as { headers: Record<string, string> }).headers : {} };
    };
    const plain = await echoed(function* () {
      yield ['x-generated', 'g'];
    });
    assert.equal(plain.headers['x-generated'], 'g');
    assert.equal(plain.headers.authorization, `Bearer ${token}`);
    const seen = servers.stack.api.requests.length;
    const own = await echoed(function* () {
      yield ['x-generated', 'g'];
      yield ['Authorization', 'Bearer mine'];
    });
    assert.equal(own.status, 401);
    assert.deepEqual(servers.stack.api.requests.slice(seen).map((r) => [r.headers.authorization, r.headers['x-generated']]), [['Bearer mine', 'g']]);
    // A 401 to the token: the retry (a string body) is sent with the caller's headers too.
    servers.stack.api.revoke(token);
    const retried = await echoed(function* () {
      yield ['x-generated', 'again'];
    }, 'body');
    assert.equal(retried.status, 200);
    assert.equal(retried.headers['x-generated'], 'again');
    assert.equal(client.stats().unauthorizedRetries, 1);
  } finally {
    await agent.close();
    await client.close();
  }
});

test('interceptor: a 401 whose body never ends is answered by the retry at once (the caller waited for that body, unseen, until undici\'s 300 s body timeout)', async () => {
  const { createServer } = await import('node:http');
  const { closeServer, listenLocal } = await import('./helpers/http.js');
  const refused = new Set<string>();
  const drips = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    req.resume();
    if (!refused.has(String(req.headers.authorization))) return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
    const drip = setInterval(() => res.write('.'), 100);
    drips.add(drip);
    res.on('close', () => clearInterval(drip));
  });
  const apiUrl = await listenLocal(server);
  const client = new Client({ baseUrl: apiUrl, tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  const agent = new Agent();
  const dispatcher = agent.compose(client.interceptor());
  try {
    const first = await request(`${apiUrl}/things`, { dispatcher });
    assert.equal(first.statusCode, 200);
    await first.body.text();
    refused.add(`Bearer ${(await client.clientCredentialsAuthManager.getToken()).accessToken}`);
    let timer: NodeJS.Timeout | undefined;
    const retried = await Promise.race([
      request(`${apiUrl}/things`, { method: 'PUT', body: 'replayable', dispatcher }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() })),
      new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 5_000))),
    ]);
    clearTimeout(timer);
    assert.deepEqual(retried, { status: 200, body: 'ok' });
    assert.equal(client.stats().unauthorizedRetries, 1);
  } finally {
    for (const drip of drips) clearInterval(drip);
    await agent.destroy();
    await client.close();
    await closeServer(server);
  }
});

test('interceptor: an abort while the retry after a 401 waits for a new token ends the request at once, with the abort reason', async () => {
  const client = adapterClient(servers, manualClock(), { tokenUrl: servers.stack.proxiedTokenUrl });
  const agent = new Agent();
  const dispatcher = agent.compose(client.interceptor());
  try {
    const first = await request(`${servers.stack.api.url}/things`, { dispatcher });
    assert.equal(first.statusCode, 200);
    await first.body.text();
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    servers.stack.proxy.inject({ kind: 'hang' }, 10); // every token request (a hedged one too) hangs
    const seen = servers.stack.api.requests.length;
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const started = Date.now();
    const pending = request(`${servers.stack.api.url}/things`, { dispatcher, signal: controller.signal });
    setTimeout(() => controller.abort(reason), 300);
    const outcome = await pending.then((r) => `resolved ${r.statusCode}`, (e: unknown) => e);
    assert.equal(outcome, reason, String(outcome));
    assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
    assert.equal(servers.stack.api.requests.length - seen, 1, 'only the refused attempt reached the API');
  } finally {
    servers.stack.proxy.clear();
    await agent.close();
    await client.close();
  }
});
