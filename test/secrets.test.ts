/**
 * Secrets never leak: `util.inspect` and `JSON.stringify` of the Client, its auth manager, a clone, every error the
 * foundation throws (bad secret, network, timeout, abort, provider failure, malformed response, retries exhausted,
 * 401 from the API, invalid option), every event, the stats and process warnings never contain the client secret
 * or an access token. Run against oidc-provider behind a fault proxy and a protected API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { MockAgent } from 'undici';
import { ApiError, Client, NetworkError, type ClientConfiguration, type ClientEventName, type OAuthToken } from '../src/index.js';
import { bearerTokens, startStack, type Stack } from './helpers/fixtures.js';
import { DEFAULT_OIDC_CLIENTS } from './helpers/oidc.js';

const SECRET = 'S3cret-Sentinel-7f3a9c-d41d8cd98f';
const WRONG_SECRET = 'Wr0ng-Sentinel-0cc175b9c0f1b6a8';
const EVENTS: ClientEventName[] = [
  'tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'requestRetried', 'unauthorizedRetried',
  'circuitOpen', 'circuitClosed', 'tokenWait', 'callbackError', 'storeError',
];

let stack: Stack;
const clients: Client[] = [];
/** Every access token issued during the test (from oAuthOnTokenUpdate and what the API received). */
const tokens = new Set<string>();
/** Everything the library handed out, to be checked at the end. */
const handedOut: { label: string; value: unknown }[] = [];
const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

before(async () => {
  stack = await startStack({ clients: [...DEFAULT_OIDC_CLIENTS, { client_id: 'sentinel', client_secret: SECRET }] });
  process.on('warning', onWarning);
});
after(async () => {
  process.off('warning', onWarning);
  await stack.close();
  await Promise.all(clients.map((c) => c.close()));
});

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;

/** A Client for the `sentinel` client whose events are all recorded. */
function makeClient(credentials: Partial<Credentials> = {}, config: Partial<ClientConfiguration> = {}): Client {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.proxiedTokenUrl,
    ...config,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'sentinel',
      oAuthClientSecret: SECRET,
      oAuthOnTokenUpdate: (token: OAuthToken) => {
        tokens.add(token.accessToken);
      },
      ...credentials,
    },
  });
  clients.push(client);
  for (const name of EVENTS) client.on(name, (event) => handedOut.push({ label: `event ${name}`, value: event }));
  return client;
}

async function caught(label: string, promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (error) {
    handedOut.push({ label, value: error });
    return;
  }
  assert.fail(`${label}: expected a rejection`);
}

/** Asserts that neither the secret, the wrong secret, nor any access token (nor its signature) appears in `text`. */
function assertClean(label: string, text: string): void {
  for (const secret of [SECRET, WRONG_SECRET, encodeURIComponent(SECRET), Buffer.from(`sentinel:${SECRET}`).toString('base64')]) {
    assert.ok(!text.includes(secret), `${label} contains the client secret:\n${text}`);
  }
  for (const token of tokens) {
    assert.ok(!text.includes(token), `${label} contains an access token:\n${text}`);
    const signature = token.split('.')[2];
    if (signature) assert.ok(!text.includes(signature), `${label} contains an access token signature`);
  }
}

test('nothing the library hands out contains the client secret or an access token', async () => {
  // Success paths: a fetch, a reused token, a 401 that triggers a new token, a clone.
  const client = makeClient({ oAuthScopes: 'api:read' });
  await client.get('/things');
  stack.api.revoke(bearerTokens(stack.api).at(-1)!);
  await client.get('/things');
  const clone = client.withConfiguration({ headers: { 'x-clone': '1' } });
  await clone.get('/things');

  // A retry, then retries exhausted.
  const retrying = makeClient({}, { retry: { maxAttempts: 2, baseDelay: 1, maxDelay: 1 } });
  stack.proxy.inject({ kind: 'status', status: 503, body: '{"error":"temporarily_unavailable"}', headers: { 'content-type': 'application/json' } });
  await retrying.get('/things');
  stack.proxy.inject({ kind: 'status', status: 500 }, 2);
  retrying.clientCredentialsAuthManager.invalidate();
  await caught('retries exhausted', retrying.get('/things'));

  // Errors of every kind.
  await caught('bad secret', makeClient({ oAuthClientSecret: WRONG_SECRET }).get('/things'));
  const noRetry = { retry: false } as const;
  stack.proxy.inject({ kind: 'reset' });
  await caught('network error', makeClient({}, noRetry).get('/things'));
  stack.proxy.inject({ kind: 'hang' });
  await caught('timeout', makeClient({}, { ...noRetry, tokenRequestTimeout: 200 }).get('/things'));
  stack.proxy.inject({ kind: 'hang' });
  await caught('abort', makeClient().get('/things', { signal: AbortSignal.timeout(100) }));
  await caught('provider error', makeClient({ oAuthTokenProvider: () => Promise.reject(new Error('vault sealed')) }).get('/things'));
  stack.proxy.inject({ kind: 'json', status: 200, body: { token_type: 'Bearer' } });
  await caught('malformed token response', makeClient().get('/things'));
  await caught('missing credentials', new Client({ baseUrl: stack.api.url }).get('/things'));
  const withToken = makeClient({}, { retryOnUnauthorized: false });
  await withToken.get('/things');
  stack.api.revoke(bearerTokens(stack.api).at(-1)!);
  await caught('401 from the API', withToken.get('/things'));
  await caught('API status', withToken.get('/status/500'));
  try {
    new Client({ tokenUrl: 'nope', clientCredentialsAuthCredentials: { oAuthClientId: 'sentinel', oAuthClientSecret: SECRET } });
  } catch (error) {
    handedOut.push({ label: 'invalid option', value: error });
  }

  // A throwing callback: reported as an event, and as a process warning when nobody listens.
  const throwing = makeClient({
    oAuthOnTokenUpdate: (token) => {
      tokens.add(token.accessToken);
      throw new Error('could not save');
    },
  });
  await throwing.get('/things');
  const silent = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'sentinel',
      oAuthClientSecret: SECRET,
      oAuthOnTokenUpdate: (token) => {
        tokens.add(token.accessToken);
        throw new Error('could not save');
      },
    },
  });
  clients.push(silent);
  await silent.get('/things');

  for (const c of [client, clone, retrying, throwing, silent]) {
    handedOut.push({ label: 'client', value: c });
    handedOut.push({ label: 'auth manager', value: c.clientCredentialsAuthManager });
    handedOut.push({ label: 'stats', value: c.stats() });
  }
  for (const token of bearerTokens(stack.api)) if (token) tokens.add(token);

  // The checks themselves must be able to fail: the tokens were collected, and the labels cover every case.
  assert.ok(tokens.size >= 5, `collected ${tokens.size} tokens`);
  const labels = new Set(handedOut.map((h) => h.label));
  for (const label of ['retries exhausted', 'bad secret', 'network error', 'timeout', 'abort', 'provider error', 'malformed token response', 'missing credentials', '401 from the API', 'API status', 'invalid option', 'event tokenFetched', 'event tokenInvalidated', 'event unauthorizedRetried', 'event requestRetried', 'event callbackError', 'event tokenWait', 'client', 'stats']) {
    assert.ok(labels.has(label), `nothing recorded for ${label}`);
  }
  assert.ok(warnings.some((w) => /oAuthOnTokenUpdate/.test(w.message)), 'the silent client warned');

  for (const { label, value } of handedOut) {
    assertClean(`inspect(${label})`, inspect(value, { depth: Infinity, showHidden: true }));
    assertClean(`JSON.stringify(${label})`, JSON.stringify(value) ?? '');
    assertClean(`String(${label})`, String(value));
    if (value instanceof Error) assertClean(`${label}.stack`, value.stack ?? '');
  }
  for (const warning of warnings) assertClean('process warning', `${warning.message}\n${warning.stack ?? ''}`);

  // And the library's own description of a Client says what it is without the secret.
  assert.match(inspect(client), /sentinel/);
  assert.match(inspect(client), /\[redacted\]/);
  assert.equal((JSON.parse(JSON.stringify(client)) as { clientSecret: string }).clientSecret, '[redacted]');
});

test('the sentinel check itself catches a leak', () => {
  assert.throws(() => assertClean('probe', `prefix ${SECRET} suffix`), /contains the client secret/);
  tokens.add('probe.token.signature');
  assert.throws(() => assertClean('probe', 'x signature y'), /access token signature/);
  tokens.delete('probe.token.signature');
});

/** Asserts that `error`, however it is printed or serialised, is clean. */
function assertErrorClean(label: string, error: unknown): void {
  assertClean(`inspect(${label})`, inspect(error, { depth: Infinity, showHidden: true }));
  assertClean(`JSON.stringify(${label})`, JSON.stringify(error) ?? '');
  assertClean(`String(${label})`, String(error));
  assertClean(`${label}.stack`, (error as Error).stack ?? '');
}

test('regression: a dispatcher failure that repeats the request (undici MockAgent) is handed out without the secret or the token', async () => {
  const ACCESS_TOKEN = 'mock-access-token-3b9e41c07d5a';
  tokens.add(ACCESS_TOKEN);
  /** A MockAgent whose token endpoint answers only a request unlike ours, unless `token` is set. */
  const mock = (intercept: { body?: string; headers?: Record<string, string> }, token = false) => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    const auth = agent.get('https://auth.example').intercept({ path: '/token', method: 'POST', ...intercept });
    if (token) auth.reply(200, { access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 60 });
    else auth.reply(200, {});
    agent.get('https://api.example').intercept({ path: '/things', headers: { authorization: 'Bearer another-token' } }).reply(200, {});
    return agent;
  };
  const cases: { label: string; dispatcher: MockAgent; method?: 'client_secret_post' }[] = [
    { label: 'client_secret_post body not matched', dispatcher: mock({ body: 'grant_type=other' }), method: 'client_secret_post' },
    { label: 'Basic header not matched', dispatcher: mock({ headers: { authorization: 'Basic other' } }) },
    { label: 'Bearer header not matched', dispatcher: mock({}, true) },
  ];
  for (const { label, dispatcher, method } of cases) {
    const client = new Client({
      baseUrl: 'https://api.example',
      tokenUrl: 'https://auth.example/token',
      dispatcher,
      retry: false,
      clientCredentialsAuthCredentials: { oAuthClientId: 'sentinel', oAuthClientSecret: SECRET, ...(method ? { clientAuthMethod: method } : {}) },
    });
    try {
      const error = await client.get('/things').catch((e: unknown) => e);
      assert.ok(error instanceof NetworkError, `${label}: ${String(error)}`);
      const cause = error.cause as Error & { code?: string };
      assert.equal(cause.code, 'UND_MOCK_ERR_MOCK_NOT_MATCHED', `${label}: the cause still says what failed`);
      assert.match(cause.message, /\[redacted\]/, `${label}: the mock did print the credential, and it was cut out`);
      assertErrorClean(label, error);
    } finally {
      await dispatcher.close();
    }
  }
});

test('regression: credentials in baseUrl or tokenUrl (user:password@) stay out of errors and the Client description', async () => {
  const withUserinfo = (url: string) => url.replace('://', `://sentinel:${SECRET}@`);
  const client = makeClient({}, { baseUrl: withUserinfo(stack.api.url), tokenUrl: withUserinfo(stack.op.tokenUrl) });
  const error = await client.get('/status/404').catch((e: unknown) => e);
  assert.ok(error instanceof ApiError && error.statusCode === 404, String(error));
  assert.match(error.message, /\/status\/404/);
  assertErrorClean('ApiError', error);
  assertClean('inspect(client)', inspect(client, { depth: Infinity, showHidden: true }));
  assertClean('JSON.stringify(client)', JSON.stringify(client));
  assert.match(JSON.stringify(client), /"baseUrl":"http:\/\/127\.0\.0\.1:\d+"/);
});
