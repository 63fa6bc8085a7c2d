/**
 * Security hardening (issue 10), one test per finding, each against real servers on 127.0.0.1: token requests never
 * follow redirects; credentials are scrubbed from every error and event, with a rule for short secrets; token
 * fields are validated from every source; caller mistakes fail before any I/O; tokens go only where allowed; the
 * whole request is bounded in time and size; close() has a grace period.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Agent, interceptors } from 'undici';
import {
  AbortError,
  ApiError,
  Client,
  ClientCredentialsError,
  FileTokenStore,
  InvalidOptionError,
  InvalidTokenError,
  MalformedTokenResponseError,
  MemoryTokenStore,
  ResponseTooLargeError,
  TimeoutError,
  TokenEndpointRedirectError,
  type ClientConfiguration,
  type ClientEventName,
  type OAuthToken,
} from '../src/index.js';
import { Redactor, REDACTED, basicCredentials, formEncode } from '../src/redaction.js';
import { sendJson, startScripted, tokenScript, type ScriptedServer } from './helpers/scripted.js';

/** A secret with characters that every encoding changes, so each form is a different string. */
const SECRET = 'Sec+Sentinel/5b1e"0f2a9c:x y';
const CLIENT_ID = 'app';
const EVENTS: ClientEventName[] = [
  'tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'requestRetried', 'unauthorizedRetried',
  'circuitOpen', 'circuitClosed', 'tokenWait', 'callbackError', 'storeError',
];

const servers: ScriptedServer[] = [];
const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(script: Parameters<typeof startScripted>[0]): Promise<ScriptedServer> {
  const server = await startScripted(script);
  servers.push(server);
  return server;
}

function makeClient(config: ClientConfiguration): Client {
  const client = new Client(config);
  clients.push(client);
  return client;
}

function credentials(extra: Record<string, unknown> = {}): ClientConfiguration['clientCredentialsAuthCredentials'] {
  return { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, ...extra };
}

/** Every form of the secret a server could echo. */
const SECRET_FORMS = [
  SECRET,
  formEncode(SECRET),
  encodeURIComponent(SECRET),
  JSON.stringify(SECRET).slice(1, -1),
  basicCredentials(CLIENT_ID, SECRET),
  Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64'),
];

/** All the text an error or payload exposes: message, stack, toJSON, causes, inspect, JSON. */
function exposedText(value: unknown): string {
  const parts: string[] = [inspect(value, { depth: 12, showHidden: false }), safeStringify(value)];
  let current: unknown = value;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    parts.push(current.message, current.stack ?? '');
    const toJSON = (current as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') parts.push(safeStringify(toJSON.call(current)));
    for (const key of Object.keys(current)) parts.push(safeStringify((current as unknown as Record<string, unknown>)[key]));
    current = current.cause;
  }
  return parts.join('\n');
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

function assertClean(label: string, value: unknown, tokens: Iterable<string> = []): void {
  const text = exposedText(value);
  for (const form of SECRET_FORMS) assert.ok(!text.includes(form), `${label} exposes the client secret (${form}):\n${text.slice(0, 2000)}`);
  for (const token of tokens) assert.ok(!text.includes(token), `${label} exposes an access token:\n${text.slice(0, 2000)}`);
}

// Finding 1 ---------------------------------------------------------------------------------------------------------

test('a token request never follows a redirect, even through a dispatcher composed with interceptors.redirect', async () => {
  const evil = await serve((_req, res) => sendJson(res, 200, { access_token: 'evil-token-0123456789', token_type: 'Bearer', expires_in: 3600 }));
  const auth = await serve((_req, res) => {
    res.writeHead(307, { location: `${evil.url}/token` });
    res.end();
  });
  const api = await serve((_req, res) => sendJson(res, 200, { ok: true }));
  const dispatcher = new Agent().compose(interceptors.redirect({ maxRedirections: 3 }));
  try {
    const client = makeClient({
      baseUrl: api.url,
      tokenUrl: `${auth.url}/token`,
      dispatcher,
      retry: false,
      clientCredentialsAuthCredentials: credentials({ clientAuthMethod: 'client_secret_post' }),
    });
    await assert.rejects(client.get('/things'), (error: unknown) => {
      assert.ok(error instanceof TokenEndpointRedirectError, String(error));
      assert.equal(error.code, 'ERR_TOKEN_ENDPOINT_REDIRECT');
      assert.equal(error.statusCode, 307);
      assert.equal(error.location, evil.origin);
      assert.match(error.message, new RegExp(evil.origin.replace(/[.:/]/g, '\\$&')));
      assertClean('redirect error', error);
      return true;
    });
    assert.equal(auth.requests.length, 1);
    assert.equal(evil.requests.length, 0, 'the form body with the secret reached the redirect target');
    assert.equal(api.requests.length, 0);
    // Nothing was installed: the next call asks the token endpoint again.
    await assert.rejects(client.get('/things'), TokenEndpointRedirectError);
    assert.equal(auth.requests.length, 2);
    assert.equal(evil.requests.length, 0);
  } finally {
    await dispatcher.close();
  }
});

test('a plain-http token endpoint off loopback is refused unless allowInsecureHttp is set', () => {
  const config = { tokenUrl: 'http://auth.example.test/token', clientCredentialsAuthCredentials: credentials() };
  assert.throws(() => new Client(config), (error: unknown) => error instanceof InvalidOptionError && error.option === 'tokenUrl' && /allowInsecureHttp/.test(error.message));
  assert.throws(() => new Client({ ...config, baseUrl: 'http://auth.example.test', tokenUrl: '/token' }), (error: unknown) => error instanceof InvalidOptionError && error.option === 'tokenUrl');
  assert.throws(() => new Client({ ...config, allowInsecureHttp: 'yes' as never }), (error: unknown) => error instanceof InvalidOptionError && error.option === 'allowInsecureHttp');
  makeClient({ ...config, allowInsecureHttp: true });
  for (const url of ['http://localhost:8080/token', 'http://127.0.0.9/token', 'http://[::1]:9/token', 'https://auth.example.test/token']) {
    makeClient({ tokenUrl: url, clientCredentialsAuthCredentials: credentials() });
  }
});

// Finding 2 ---------------------------------------------------------------------------------------------------------

test('a secret echoed by the token endpoint, in every form, is scrubbed from errors, their causes, stacks, toJSON and events', async () => {
  const echo = `raw ${SECRET} form ${formEncode(SECRET)} pct ${encodeURIComponent(SECRET)} json ${JSON.stringify(SECRET).slice(1, -1)} basic ${basicCredentials(CLIENT_ID, SECRET)}`;
  let status = 400;
  const auth = await serve((req, res, recorded) => sendJson(res, status, { error: status === 400 ? 'invalid_client' : 'temporarily_unavailable', error_description: `${echo} header ${String(req.headers.authorization)} body ${recorded.body}` }, { 'x-echo': String(req.headers.authorization) }));
  const api = await serve((_req, res) => sendJson(res, 200, {}));
  const events: { name: string; event: unknown }[] = [];
  const client = makeClient({
    baseUrl: api.url,
    tokenUrl: `${auth.url}/token`,
    retry: { maxAttempts: 2, baseDelay: 1, maxDelay: 2 },
    circuitBreaker: { failureThreshold: 3, cooldown: 60_000 },
    clientCredentialsAuthCredentials: credentials(),
  });
  for (const name of EVENTS) client.on(name, (event) => events.push({ name, event }));

  const failures: unknown[] = [];
  for (const call of [() => client.get('/a'), () => client.clientCredentialsAuthManager.fetchToken(), () => client.clientCredentialsAuthManager.getToken()]) {
    await call().then(() => assert.fail('expected a failure'), (error: unknown) => failures.push(error));
  }
  status = 503; // retried, then RetriesExhaustedError, then the circuit opens
  for (let i = 0; i < 3; i++) await client.get('/b').then(() => assert.fail('expected a failure'), (error: unknown) => failures.push(error));

  assert.ok(failures.some((e) => (e as ClientCredentialsError).code === 'ERR_OAUTH_PROVIDER'));
  assert.ok(failures.some((e) => (e as ClientCredentialsError).code === 'ERR_RETRIES_EXHAUSTED'));
  assert.ok(failures.some((e) => (e as ClientCredentialsError).code === 'ERR_CIRCUIT_OPEN'));
  assert.ok(events.some((e) => e.name === 'requestRetried') && events.some((e) => e.name === 'circuitOpen'));
  for (const [i, error] of failures.entries()) {
    assert.ok(error instanceof ClientCredentialsError);
    assert.ok((error.message + exposedText(error)).includes(REDACTED), `failure ${i} should show that something was redacted`);
    assertClean(`failure ${i} (${error.code})`, error);
  }
  for (const { name, event } of events) assertClean(`event ${name}`, event);
});

test('an access token echoed by the API (Authorization in the body and a header) is scrubbed from the ApiError', async () => {
  const auth = await serve(tokenScript());
  const api = await serve((req, res) => sendJson(res, 500, { seen: req.headers.authorization, token: String(req.headers.authorization).slice(7) }, { 'x-seen': String(req.headers.authorization) }));
  const tokens = new Set<string>();
  const client = makeClient({
    baseUrl: api.url,
    tokenUrl: `${auth.url}/token`,
    clientCredentialsAuthCredentials: credentials({ oAuthOnTokenUpdate: (t: { accessToken: string }) => tokens.add(t.accessToken) }),
  });
  const events: unknown[] = [];
  for (const name of EVENTS) client.on(name, (event) => events.push(event));
  const error = await client.get('/echo').then(() => assert.fail('expected a 500'), (e: unknown) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(tokens.size, 1);
  assert.equal(api.requests.length, 1);
  assert.ok(error.body.includes(REDACTED));
  assert.deepEqual(error.result, { seen: `Bearer ${REDACTED}`, token: REDACTED });
  assertClean('ApiError', error, tokens);
  for (const event of events) assertClean('event', event, tokens);
});

test('short secrets (< 8 characters) are redacted only as whole values, and a warning says so once', async () => {
  const redactor = new Redactor();
  redactor.add('items');
  assert.equal(redactor.redact('{"items":[1,2],"echo":"items"}'), `{"items":[1,2],"echo":"${REDACTED}"}`);
  assert.equal(redactor.redact('items'), REDACTED);
  assert.equal(redactor.redact('client_secret=items&x=1'), `client_secret=${REDACTED}&x=1`);
  assert.equal(redactor.redact('the items are here'), 'the items are here');
  assert.equal(redactor.scrub({ items: 'items', list: ['items', 'other items'] }).items, REDACTED);
  assert.deepEqual(Object.keys(redactor.scrub({ items: 1 })), ['items']);
  // Long values: everywhere, in keys too.
  redactor.add('LongSecretValue1');
  assert.equal(redactor.redact('xLongSecretValue1y'), `x${REDACTED}y`);

  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    makeClient({ tokenUrl: 'https://auth.example.test/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: 'items' } });
    makeClient({ tokenUrl: 'https://auth.example.test/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: 'abc' } });
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  const short = warnings.filter((w) => (w as { code?: string }).code === 'OAUTH_CC_SHORT_SECRET');
  assert.equal(short.length, 1);
  assert.match(short[0]!.message, /5 characters long/);
  assert.ok(!short[0]!.message.includes('items'));
});

test('the CLI `call` with the secret `items` keeps {"items": …} intact and redacts only whole values', async () => {
  const { run } = await import('../src/cli/run.js');
  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => sendJson(res, 200, { items: [1, 2], echo: 'items', note: 'the items' }));
  const home = await mkdtemp(join(tmpdir(), 'sec-cli-'));
  try {
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: { write: (t: string) => (stdout += t), isTTY: false },
      stderr: { write: (t: string) => (stderr += t), isTTY: false },
      readStdin: async () => '',
      stdinIsTTY: true,
      env: { HOME: home, XDG_CACHE_HOME: home, CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET: 'items' },
      cwd: home,
    };
    const code = await run(['call', 'GET', `${api.url}/list`], io);
    assert.equal(code, 0, stderr);
    assert.equal(JSON.parse(stdout).items.length, 2, stdout);
    assert.deepEqual(JSON.parse(stdout), { items: [1, 2], echo: REDACTED, note: 'the items' });
  } finally {
    await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
});

// Finding 3 (field validation) -------------------------------------------------------------------------------------

const BAD_TOKENS: { label: string; body: Record<string, unknown> }[] = [
  { label: 'CR/LF in access_token', body: { access_token: 'abc\r\nX-Injected: 1', token_type: 'Bearer', expires_in: 3600 } },
  { label: 'NUL in access_token', body: { access_token: 'abc\u0000def', token_type: 'Bearer', expires_in: 3600 } },
  { label: 'U+00FF in access_token', body: { access_token: 'abc\u00ffdef', token_type: 'Bearer', expires_in: 3600 } },
  { label: 'U+FFFD in access_token', body: { access_token: 'abc\ufffddef', token_type: 'Bearer', expires_in: 3600 } },
  { label: 'space in access_token', body: { access_token: 'abc def', token_type: 'Bearer', expires_in: 3600 } },
  { label: 'CR/LF in token_type', body: { access_token: 'abcdef', token_type: 'Bearer\r\nX: 1', expires_in: 3600 } },
  { label: 'space in token_type', body: { access_token: 'abcdef', token_type: 'Be arer', expires_in: 3600 } },
];

test('a token endpoint answer with an unusable access_token or token_type is ERR_MALFORMED_TOKEN_RESPONSE and never cached or stored', async () => {
  let current = BAD_TOKENS[0]!.body;
  const auth = await serve((_req, res) => sendJson(res, 200, current));
  const api = await serve((_req, res) => sendJson(res, 200, {}));
  for (const { label, body } of BAD_TOKENS) {
    current = body;
    const store = new MemoryTokenStore();
    const client = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, tokenStore: store, retry: false, clientCredentialsAuthCredentials: credentials() });
    const before = auth.requests.length;
    await assert.rejects(client.get('/x'), (error: unknown) => error instanceof MalformedTokenResponseError && error.code === 'ERR_MALFORMED_TOKEN_RESPONSE' && !error.message.includes(String(body['access_token'])), label);
    assert.equal(store.size, 0, `${label}: stored`);
    await assert.rejects(client.get('/x'), MalformedTokenResponseError, label);
    assert.equal(auth.requests.length - before, 2, `${label}: the second call asks again (nothing cached)`);
  }
  assert.equal(api.requests.length, 0);
});

test('unusable tokens from a provider, a preset, updateToken or a store are refused with ERR_INVALID_TOKEN or ignored', async () => {
  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => sendJson(res, 200, {}));
  const bad = 'abc\r\ndef';
  // provider
  const provided = makeClient({ baseUrl: api.url, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthTokenProvider: () => ({ accessToken: bad, tokenType: 'Bearer', expiresIn: 3600 }) } });
  await assert.rejects(provided.get('/x'), (error: unknown) => error instanceof InvalidTokenError && error.code === 'ERR_INVALID_TOKEN' && error.field === 'accessToken' && !error.message.includes(bad));
  await assert.rejects(provided.get('/x'), InvalidTokenError);
  assert.equal(api.requests.length, 0);
  // preset
  assert.throws(
    () => new Client({ baseUrl: api.url, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, oAuthToken: { accessToken: 'ok-token', tokenType: 'Bear er', expiresIn: 60 } } }),
    (error: unknown) => error instanceof InvalidTokenError && error.field === 'tokenType',
  );
  // updateToken
  const updated = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: credentials() });
  await assert.rejects(updated.clientCredentialsAuthManager.updateToken({ accessToken: 'x\u00ffy', tokenType: 'Bearer' }), InvalidTokenError);
  const fetchedBefore = auth.requests.length;
  await updated.get('/after-update');
  assert.equal(auth.requests.length - fetchedBefore, 1, 'the refused token was not installed');
  assert.match(String(api.requests.at(-1)!.headers.authorization), /^Bearer tok-/);
  // a planted store entry (real FileTokenStore): ignored, a fresh token fetched and stored over it
  const dir = await mkdtemp(join(tmpdir(), 'sec-store-'));
  try {
    const path = join(dir, 'tokens.json');
    const seeding = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, tokenStore: new FileTokenStore({ path }), clientCredentialsAuthCredentials: credentials() });
    await seeding.get('/seed');
    await seeding.close();
    const file = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path, 'utf8'))) as Record<string, unknown>;
    const text = JSON.stringify(file).replace(/tok-\d+-x+/g, 'planted\\r\\nX: 1');
    await writeFile(path, text);
    const reader = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, tokenStore: new FileTokenStore({ path }), clientCredentialsAuthCredentials: credentials() });
    const before = auth.requests.length;
    await reader.get('/after');
    assert.equal(auth.requests.length - before, 1, 'the planted token was ignored and a new one fetched');
    assert.match(String(api.requests.at(-1)!.headers.authorization), /^Bearer tok-\d+-x+$/);
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
});

// Finding 5 ---------------------------------------------------------------------------------------------------------

test('caller mistakes fail at once with InvalidOptionError naming the field: no I/O, no retry, no breaker count, no credential', async () => {
  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => sendJson(res, 200, {}));
  const client = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: credentials(), circuitBreaker: { failureThreshold: 1 } });
  const cases: [string, () => Promise<unknown>][] = [
    ['headers', () => client.get('/x', { headers: { 'x-a': 'one\r\nx-b: two' } })],
    ['headers', () => client.get('/x', { headers: { 'bad name': 'v' } })],
    ['headers', () => client.get('/x', { headers: { 'x-n': 1 as never } })],
    ['method', () => client.request({ method: 'GET\r\nX: 1', path: '/x' })],
    ['method', () => client.request({ method: 1 as never, path: '/x' })],
    ['path', () => client.get(42 as never)],
    ['signal', () => client.get('/x', { signal: {} as never })],
    ['body', () => client.request({ method: 'POST', path: '/x', body: 5 as never })],
    ['json', () => client.post('/x', { n: 1n })],
    ['auth', () => client.get('/x', { auth: 'no' as never })],
    ['path', () => client.get(`http://user:${SECRET}@[::1`)],
    ['path', () => client.get(`http://user:${encodeURIComponent(SECRET)}@exa mple.com/`, { auth: false })],
    ['options', () => client.request(null as never)],
  ];
  for (const [field, call] of cases) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError, `${field}: ${String(error)}`);
      assert.equal(error.option, field);
      assert.equal(error.cause, undefined);
      assertClean(`${field} error`, error);
      return true;
    });
  }
  assert.equal(auth.requests.length, 0);
  assert.equal(api.requests.length, 0);
  const stats = client.stats();
  assert.equal(stats.tokenRequests, 0);
  assert.equal(stats.failures, 0);
  assert.equal(stats.circuitOpen, false);

  const base = { baseUrl: api.url, tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: credentials() };
  for (const [option, config] of [
    ['userAgent', { userAgent: 'agent\r\nX-Evil: 1' }],
    ['headers', { headers: { 'x-a': 'v\n' } }],
    ['allowedOrigins', { allowedOrigins: 'https://api.example.test' }],
    ['tls', { tls: 'x' }],
  ] as const) {
    assert.throws(() => new Client({ ...base, ...(config as object) }), (error: unknown) => error instanceof InvalidOptionError && error.option === option, option);
  }
  assert.equal(auth.requests.length, 0);
});

// Finding 6 ---------------------------------------------------------------------------------------------------------

test('without baseUrl or allowedOrigins an authenticated absolute URL is refused (naming allowedOrigins); http only to loopback', async () => {
  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => sendJson(res, 200, { ok: true }));
  const bare = makeClient({ tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: credentials() });
  await assert.rejects(bare.get(`${api.url}/x`), (error: unknown) => error instanceof InvalidOptionError && error.option === 'allowedOrigins' && error.message.includes(api.origin));
  assert.equal(auth.requests.length + api.requests.length, 0);
  assert.equal((await bare.get(`${api.url}/open`, { auth: false })).statusCode, 200);

  const allowed = makeClient({ tokenUrl: `${auth.url}/token`, allowedOrigins: [api.url], clientCredentialsAuthCredentials: credentials() });
  assert.equal((await allowed.get(`${api.url}/x`)).statusCode, 200);
  assert.match(String(api.requests.at(-1)!.headers.authorization), /^Bearer /);

  // Plain http to another machine: refused before any I/O (no DNS lookup of the made-up name happens either).
  const remote = makeClient({ tokenUrl: `${auth.url}/token`, allowedOrigins: ['http://api.example.test'], clientCredentialsAuthCredentials: credentials() });
  const before = auth.requests.length;
  await assert.rejects(remote.get('http://api.example.test/x'), (error: unknown) => error instanceof InvalidOptionError && error.option === 'allowInsecureHttp');
  const remoteBase = makeClient({ baseUrl: 'http://api.example.test', tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: credentials() });
  await assert.rejects(remoteBase.get('/x'), (error: unknown) => error instanceof InvalidOptionError && error.option === 'allowInsecureHttp');
  assert.equal(auth.requests.length, before);
});

// Finding 7 ---------------------------------------------------------------------------------------------------------

/** A server that sends headers at once, then one byte every `everyMs` for `bytes` bytes. */
async function dripping(bytes: number, everyMs: number): Promise<ScriptedServer> {
  return serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.destroyed || sent >= bytes) {
        clearInterval(timer);
        res.end();
        return;
      }
      sent++;
      res.write('x');
    }, everyMs);
    res.on('close', () => clearInterval(timer));
  });
}

test('`timeout` bounds the whole request, body included, per Client and per request', async () => {
  const server = await dripping(40, 100); // 4 s in all, a byte every 100 ms
  const client = makeClient({ baseUrl: server.url, timeout: 600 });
  let started = Date.now();
  await assert.rejects(client.get('/drip', { auth: false }), (error: unknown) => error instanceof TimeoutError && error.timeout === 600);
  assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);

  const perRequest = makeClient({ baseUrl: server.url });
  started = Date.now();
  await assert.rejects(perRequest.get('/drip', { auth: false, timeout: 600 }), TimeoutError);
  assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
});

test('`maxResponseBytes` caps an API response with ResponseTooLargeError; the default is 10 MiB', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 'a');
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(big);
  });
  const capped = makeClient({ baseUrl: server.url, maxResponseBytes: 1024 * 1024 });
  await assert.rejects(capped.get('/big', { auth: false }), (error: unknown) => error instanceof ResponseTooLargeError && error.code === 'ERR_RESPONSE_TOO_LARGE' && error.limit === 1024 * 1024 && error.statusCode === 200);
  const byDefault = makeClient({ baseUrl: server.url });
  assert.equal((await byDefault.get('/big', { auth: false })).body.length, big.length);
  assert.throws(() => new Client({ maxResponseBytes: 0 }), (error: unknown) => error instanceof InvalidOptionError && error.option === 'maxResponseBytes');
});

test('`maxResponseBytes`: a body declared larger is refused before it is read; a chunked one is counted as it arrives', async () => {
  const server = await serve((req, res) => {
    if (req.url === '/declared') {
      // Declares 3 MiB, sends one byte, then stalls: the refusal must not wait for the rest.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(3 * 1024 * 1024) });
      res.write('a');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    for (let i = 0; i < 3; i++) res.write(Buffer.alloc(512 * 1024, 'a'));
    res.end();
  });
  const client = makeClient({ baseUrl: server.url, maxResponseBytes: 1024 * 1024, closeTimeout: 100 });
  const started = Date.now();
  await assert.rejects(client.get('/declared', { auth: false }), (error: unknown) => error instanceof ResponseTooLargeError && error.limit === 1024 * 1024);
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  await assert.rejects(client.get('/chunked', { auth: false }), ResponseTooLargeError);
  await assert.rejects(client.get('/declared', { auth: false, responseType: 'bytes' }), ResponseTooLargeError);
  await assert.rejects(client.get('/chunked', { auth: false, responseType: 'bytes' }), ResponseTooLargeError);
});

test('a UTF-8 byte order mark is dropped from a text body, with or without content-length (as fetch drops it)', async () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const json = Buffer.concat([bom, Buffer.from('{"ok":true}')]);
  const server = await serve((req, res) => {
    if (req.url === '/chunked') res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    else res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(json.length) });
    res.end(json);
  });
  const client = makeClient({ baseUrl: server.url });
  for (const path of ['/sized', '/chunked']) {
    const response = await client.get<{ ok: boolean }>(path, { auth: false });
    assert.deepEqual(response.result, { ok: true }, path);
    assert.equal(response.body, '{"ok":true}', path);
    const bytes = await client.get(path, { auth: false, responseType: 'bytes' });
    assert.deepEqual([...bytes.body.subarray(0, 3)], [...bom], `${path}: bytes are byte for byte`);
  }
});

// Finding 8 ---------------------------------------------------------------------------------------------------------

test('close() waits `closeTimeout` for requests in flight, then destroys them (AbortError), even against a hanging server', { timeout: 30_000 }, async () => {
  const hanging = await serve(() => {
    // never answers
  });
  const client = new Client({ baseUrl: hanging.url, closeTimeout: 300 });
  const inFlight = client.get('/hang', { auth: false }).then(() => assert.fail('expected a failure'), (error: unknown) => error);
  while (hanging.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const started = Date.now();
  await client.close();
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 5_000, `close took ${took} ms`);
  const error = await inFlight;
  assert.ok(error instanceof AbortError, String(error));
  assert.throws(() => new Client({ closeTimeout: -1 }), InvalidOptionError);
});

// Finding 9 ---------------------------------------------------------------------------------------------------------

/** Runs the CLI in process with its streams captured; `tty` makes stdout a terminal. */
async function runCli(args: string[], env: Record<string, string>, tty = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const { run } = await import('../src/cli/run.js');
  const home = await mkdtemp(join(tmpdir(), 'sec-cli-'));
  let stdout = '';
  let stderr = '';
  try {
    const io = {
      stdout: { write: (t: string) => (stdout += t), isTTY: tty },
      stderr: { write: (t: string) => (stderr += t), isTTY: false },
      readStdin: async () => '',
      stdinIsTTY: true,
      env: { HOME: home, XDG_CACHE_HOME: home, NO_COLOR: '1', ...env },
      cwd: home,
    };
    const code = await run(args, io);
    return { code, stdout, stderr };
  } finally {
    await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
}

const HOSTILE = '\u001b]0;pwned\u0007\u001b[2J\u009b31m\u007f\r\noauth-client-credentials: error: forged line';

function assertNoControl(label: string, text: string, allowNewlines: boolean): void {
  const bad = allowNewlines ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/ : /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]|\n(?!$)(?!oauth-client-credentials: |  \w[\w ]*: )/;
  assert.ok(!bad.test(text), `${label} holds a raw control character:\n${JSON.stringify(text)}`);
}

test('CLI: server-controlled text (error, error_description) reaches the terminal escaped, and cannot forge a line', async () => {
  const auth = await serve((_req, res) => sendJson(res, 400, { error: `invalid_client${HOSTILE}`, error_description: `bad ${HOSTILE}` }));
  const run = await runCli(['token', '--no-cache'], { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET });
  assert.equal(run.code, 3, run.stderr);
  assertNoControl('stderr', run.stderr, false);
  assert.ok(run.stderr.includes('\\x1b]0;pwned\\x07'), run.stderr);
  assert.equal(run.stderr.split('\n').filter((line) => line.startsWith('oauth-client-credentials: error: forged')).length, 0, run.stderr);
});

test('CLI: inspect escapes a JWT header and claims; call escapes a body on a terminal and keeps it exact in a pipe', async () => {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const jwt = `${part({ alg: `HS256${HOSTILE}`, typ: 'JWT' })}.${part({ sub: `user${HOSTILE}`, [`k${HOSTILE}`]: 1, exp: 4_000_000_000 })}.c2lnbmF0dXJl`;
  for (const json of [false, true]) {
    const run = await runCli(['inspect', jwt, ...(json ? ['--json'] : [])], {}, true);
    assert.equal(run.code, 0, run.stderr);
    assertNoControl(`inspect${json ? ' --json' : ''}`, run.stdout, true);
    if (json) assert.equal(JSON.parse(run.stdout).claims.sub, `user${HOSTILE}`, 'the JSON keeps its meaning');
  }

  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-note': 'a\u009bb' });
    res.end(`body ${HOSTILE}\n`);
  });
  const env = { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET };
  const onTerminal = await runCli(['call', '-i', 'GET', `${api.url}/x`], env, true);
  assert.equal(onTerminal.code, 0, onTerminal.stderr);
  assertNoControl('call on a terminal', onTerminal.stdout, true);
  assert.ok(onTerminal.stdout.includes('\\x1b[2J'));
  const piped = await runCli(['call', 'GET', `${api.url}/x`], env, false);
  assert.equal(piped.stdout, `body ${HOSTILE}\n`);
});

test('terminal escaping: C0 (ESC included), DEL and C1 are escaped; tab kept; newline only where it belongs', async () => {
  const { escapeControl, hasControl, safeJson } = await import('../src/cli/terminal.js');
  assert.equal(escapeControl('a\u001b[2Jb\u0007c\u007fd\u009be\tf\ng'), 'a\\x1b[2Jb\\x07c\\x7fd\\x9be\tf\\ng');
  assert.equal(escapeControl('a\nb\r\nc', { multiline: true }), 'a\nb\\r\nc');
  assert.equal(escapeControl('héllo wörld ✓'), 'héllo wörld ✓');
  // `token` refuses to print any of these (a token with control characters never reaches it from the library).
  for (const token of ['a\u001bb', 'a\nb', 'a\u009bb', 'a\u007fb', 'a\u0000b']) assert.equal(hasControl(token), true);
  assert.equal(hasControl('eyJhbGciOi.abc-_~+/='), false);
  const json = safeJson({ v: 'a\u009b\u007f\u001b' });
  assert.equal(json, '{"v":"a\\u009b\\u007f\\u001b"}');
  assert.deepEqual(JSON.parse(json), { v: 'a\u009b\u007f\u001b' });
});

test('CLI: a plain-http token URL off loopback is a usage error naming --token-url and --allow-insecure-http is accepted', async () => {
  const env = { CLIENT_CREDENTIALS_TOKEN_URL: 'http://auth.example.test/token', O_AUTH_CLIENT_ID: 'cli', CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET };
  const refused = await runCli(['token', '--no-cache'], env);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--token-url is plain http/);
  const parsed = await runCli(['token', '--no-cache', '--allow-insecure-http', '--timeout', '0.001', '--retries', '0'], { ...env, CLIENT_CREDENTIALS_TOKEN_URL: 'http://127.0.0.1:1/token' });
  assert.notEqual(parsed.code, 2, parsed.stderr);
});

test('a token answer whose extra members echo the request (a debug endpoint) hands out no client secret or assertion: not in getToken(), oAuthOnTokenUpdate, nor the token store; an id_token in extra is kept', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { variantsOf } = await import('../src/redaction.js');
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let assertion = '';
  const server = await serve((req, res, recorded) => {
    const form = new URLSearchParams(recorded.body);
    assertion = form.get('client_assertion') ?? '';
    const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    sendJson(res, 200, {
      access_token: 'tok-extra-echo-0001', token_type: 'Bearer', expires_in: 300, id_token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcHAifQ.',
      debug: { body: recorded.body, authorization: req.headers.authorization, basic, form: Object.fromEntries(form) },
    });
  });
  for (const auth of [{ oAuthClientSecret: SECRET }, { oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_post' as const }, { privateKey: key }]) {
    const stored: string[] = [];
    const store = new (class extends MemoryTokenStore {
      override async set(k: string, t: OAuthToken, ttl: number): Promise<void> {
        stored.push(JSON.stringify(t));
        return super.set(k, t, ttl);
      }
      override async setIfNotNewer(k: string, t: OAuthToken, ttl: number): Promise<boolean> {
        stored.push(JSON.stringify(t));
        return super.setIfNotNewer(k, t, ttl);
      }
    })();
    const updates: unknown[] = [];
    const client = makeClient({
      tokenUrl: `${server.url}/token`, retry: false, tokenStore: store, tokenStoreKey: 'k'.repeat(32),
      clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, ...auth, oAuthOnTokenUpdate: (token) => void updates.push(token) },
    });
    const token = await client.clientCredentialsAuthManager.getToken();
    assert.equal(token.accessToken, 'tok-extra-echo-0001');
    assert.equal(token.extra?.['id_token'], 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcHAifQ.');
    const surfaces = `${JSON.stringify(token)}${inspect(token, { depth: 20 })}${JSON.stringify(updates)}${stored.join('')}`;
    assert.ok(stored.length > 0, 'the store was written');
    const values = 'privateKey' in auth ? [assertion] : [SECRET, basicCredentials(CLIENT_ID, SECRET)];
    for (const value of values) {
      for (const form of variantsOf(value)) assert.ok(!surfaces.includes(form), `${Object.keys(auth).join('+')}: handed out as ${form}`);
    }
  }
});

test('a token endpoint\'s HTML error page quoting the POST data HTML-escaped (Django DEBUG=True) has the secret redacted from the ApiError', async () => {
  const escape = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
  const server = await serve((_req, res, recorded) => {
    const rows = [...new URLSearchParams(recorded.body)].map(([k, v]) => `<tr><td>${escape(k)}</td><td class="code"><pre>&#x27;${escape(v)}&#x27;</pre></td></tr>`).join('\n');
    res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' }).end(`<!DOCTYPE html><html><body><h1>KeyError at /o/token/</h1><table>${rows}</table></body></html>`);
  });
  const client = makeClient({ tokenUrl: `${server.url}/o/token/`, retry: false, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_post' } });
  const error = await client.clientCredentialsAuthManager.fetchToken().then(() => assert.fail('expected a rejection'), (e: unknown) => e as ApiError);
  assert.ok(error instanceof ApiError);
  const surfaces = `${error.message}${String(error.body)}${JSON.stringify(error)}${inspect(error, { depth: 10 })}`;
  assert.ok(String(error.body).includes('client_secret'), 'the page is kept');
  assert.ok(!surfaces.includes(escape(SECRET)), `the HTML-escaped secret survived:\n${surfaces.slice(0, 2000)}`);
});
