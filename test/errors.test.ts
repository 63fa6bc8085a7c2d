/**
 * Typed errors, against oidc-provider, a fault proxy in front of it, and a protected API: one base class, a stable
 * `code` per outcome, `instanceof` for every class, the server's `error` and `error_description` kept in the message
 * (never the secret), `cause` kept, clear errors for malformed token responses, and invalid options named by path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import {
  ApiError,
  Client,
  ClientCredentialsError,
  ErrorCode,
  InvalidOptionError,
  MalformedTokenResponseError,
  NetworkError,
  OAuthProviderError,
  RetriesExhaustedError,
  type ClientConfiguration,
} from '../src/index.js';
import { resolveConfiguration } from '../src/configuration.js';
import { startStack, type Stack } from './helpers/fixtures.js';

let stack: Stack;
const clients: Client[] = [];

before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack.close();
  await Promise.all(clients.map((c) => c.close()));
});

type Credentials = NonNullable<ClientConfiguration['clientCredentialsAuthCredentials']>;

function makeClient(credentials: Partial<Credentials> = {}, config: Partial<ClientConfiguration> = {}): Client {
  const client = new Client({
    baseUrl: stack.api.url,
    tokenUrl: stack.op.tokenUrl,
    ...config,
    clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', ...credentials },
  });
  clients.push(client);
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

test('ErrorCode has a stable code for every outcome the issue names', () => {
  assert.deepEqual(
    [ErrorCode.MissingCredentials, ErrorCode.OAuthProvider, ErrorCode.UnexpectedStatus, ErrorCode.Network, ErrorCode.Timeout, ErrorCode.Aborted, ErrorCode.MalformedTokenResponse, ErrorCode.InvalidOption],
    ['ERR_MISSING_CREDENTIALS', 'ERR_OAUTH_PROVIDER', 'ERR_UNEXPECTED_STATUS', 'ERR_NETWORK', 'ERR_TIMEOUT', 'ERR_ABORTED', 'ERR_MALFORMED_TOKEN_RESPONSE', 'ERR_INVALID_OPTION'],
  );
});

describe('the authorization server says no', () => {
  test('a bad secret rejects with OAuthProviderError (an ApiError) keeping invalid_client and its description, not the secret', async () => {
    const secret = 'Wr0ng-S3cret-value';
    const before = stack.op.tokenRequests.length;
    const error = await rejection(makeClient({ oAuthClientSecret: secret }).get('/things'));
    assert.ok(error instanceof OAuthProviderError, String(error));
    assert.ok(error instanceof ApiError);
    assert.ok(error instanceof ClientCredentialsError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'OAuthProviderError');
    assert.equal(error.code, ErrorCode.OAuthProvider);
    assert.equal(error.statusCode, 401);
    assert.equal(error.error, 'invalid_client');
    assert.equal(error.errorDescription, 'client authentication failed');
    assert.equal(error.result?.error, 'invalid_client');
    assert.match(error.message, /invalid_client/);
    assert.match(error.message, /client authentication failed/);
    assert.ok(!error.message.includes(secret));
    assert.ok(!error.stack?.includes(secret));
    assert.equal(stack.op.tokenRequests.length - before, 1, 'invalid_client is not retried');
  });

  test('a scope the client may not have rejects with invalid_scope and the server description', async () => {
    const error = await rejection(makeClient({ oAuthScopes: 'api:admin' }).get('/things'));
    assert.ok(error instanceof OAuthProviderError);
    assert.equal(error.statusCode, 400);
    assert.equal(error.error, 'invalid_scope');
    assert.ok(error.errorDescription, 'oidc-provider sends a description');
    assert.ok(error.message.includes(`invalid_scope: ${error.errorDescription}`), error.message);
  });

  test('a bare 5xx from the token endpoint is an ApiError with ERR_UNEXPECTED_STATUS, not an OAuthProviderError', async () => {
    const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl, retry: false });
    stack.proxy.inject({ kind: 'status', status: 502, body: '<h1>Bad gateway</h1>', headers: { 'content-type': 'text/html' } });
    const error = await rejection(client.get('/things'));
    assert.ok(error instanceof ApiError && !(error instanceof OAuthProviderError), String(error));
    assert.equal(error.code, ErrorCode.UnexpectedStatus);
    assert.equal(error.statusCode, 502);
    assert.equal(error.body, '<h1>Bad gateway</h1>');
  });

  test('regression: an error_description or error_uri that is not a string is left out, not printed as [object Object]', async () => {
    const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl });
    stack.proxy.inject({ kind: 'json', status: 400, body: { error: 'invalid_request', error_description: { detail: 'nested' }, error_uri: 42 } });
    const error = await rejection(client.get('/things'));
    assert.ok(error instanceof OAuthProviderError, String(error));
    assert.equal(error.message, 'OAuth provider error 400 invalid_request');
    assert.equal(error.errorDescription, undefined);
    assert.equal(error.errorUri, undefined);
    assert.deepEqual(error.result, { error: 'invalid_request', error_description: { detail: 'nested' }, error_uri: 42 }, 'the body is kept as sent');
  });

  test('after retries run out, RetriesExhaustedError keeps the last failure in cause', async () => {
    const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl, retry: { maxAttempts: 2, baseDelay: 1, maxDelay: 1 } });
    stack.proxy.inject({ kind: 'status', status: 503 }, 2);
    const error = await rejection(client.get('/things'));
    assert.ok(error instanceof RetriesExhaustedError, String(error));
    assert.equal(error.code, ErrorCode.RetriesExhausted);
    assert.equal(error.attempts, 2);
    assert.ok(error.cause instanceof ApiError);
    assert.equal(error.cause.statusCode, 503);
  });
});

describe('the API says no', () => {
  test('a non-2xx API response is an ApiError with status, headers, body and parsed result', async () => {
    const error = await rejection(makeClient().get('/status/404'));
    assert.ok(error instanceof ApiError && !(error instanceof OAuthProviderError));
    assert.equal(error.code, ErrorCode.UnexpectedStatus);
    assert.equal(error.statusCode, 404);
    assert.match(error.headers['content-type']!, /application\/json/);
    assert.equal(error.body, '{"status":404}');
    assert.deepEqual(error.result, { status: 404 });
    assert.match(error.message, /404/);
  });
});

describe('network failures keep their cause', () => {
  test('a reset connection to the token endpoint is a NetworkError with the socket error in cause', async () => {
    const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl, retry: false });
    stack.proxy.inject({ kind: 'reset' });
    const error = await rejection(client.get('/things'));
    assert.ok(error instanceof NetworkError, String(error));
    assert.equal(error.code, ErrorCode.Network);
    assert.ok(error.cause instanceof Error, 'cause is the underlying error');
  });

  test('a refused connection is a NetworkError whose cause says ECONNREFUSED', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const client = makeClient({}, { tokenUrl: `http://127.0.0.1:${port}/token`, retry: false });
    const error = await rejection(client.get('/things'));
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.message, /ECONNREFUSED/);
    const cause = error.cause as { code?: string; cause?: { code?: string } };
    assert.ok(cause.code === 'ECONNREFUSED' || cause.cause?.code === 'ECONNREFUSED', 'the refusal is kept in cause');
  });
});

describe('malformed token responses', () => {
  const cases = [
    { name: 'no access_token', fault: { kind: 'json', status: 200, body: { token_type: 'Bearer', expires_in: 60 } }, message: /access_token/ },
    { name: 'an empty access_token', fault: { kind: 'json', status: 200, body: { access_token: '', token_type: 'Bearer' } }, message: /access_token/ },
    { name: 'a JSON array', fault: { kind: 'json', status: 200, body: [1, 2] }, message: /not a JSON object/ },
    { name: 'an HTML page', fault: { kind: 'html' }, message: /not JSON \(text\/html/ },
    { name: 'truncated JSON', fault: { kind: 'malformed-json' }, message: /not JSON/ },
    { name: 'a body over maxTokenResponseBytes', fault: { kind: 'huge', bytes: 200_000 }, message: /larger than 1024 bytes/ },
  ] as const;

  for (const { name, fault, message } of cases) {
    test(`${name} rejects with ERR_MALFORMED_TOKEN_RESPONSE, and the next call fetches again`, async () => {
      const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl, maxTokenResponseBytes: 1024 });
      stack.proxy.inject(fault);
      const error = await rejection(client.get('/things'));
      assert.ok(error instanceof MalformedTokenResponseError, String(error));
      assert.equal(error.code, ErrorCode.MalformedTokenResponse);
      assert.equal(error.statusCode, 200);
      assert.match(error.message, message);
      assert.equal((await client.get('/things')).statusCode, 200);
    });
  }

  test('a token response just under maxTokenResponseBytes is accepted', async () => {
    const client = makeClient({}, { tokenUrl: stack.proxiedTokenUrl, maxTokenResponseBytes: 4096 });
    const before = stack.op.tokenRequests.length;
    stack.proxy.inject({ kind: 'huge', bytes: 4000 });
    // The proxy's filler token is not valid at the API, but the Client accepted it as a token response.
    const error = await rejection(client.get('/things', { retryOnUnauthorized: false }));
    assert.ok(error instanceof ApiError && error.statusCode === 401, String(error));
    assert.equal(stack.op.tokenRequests.length, before);
  });
});

describe('invalid options fail at construction and name the option path', () => {
  const credentials = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' };
  const tokenUrl = 'https://auth.example.com/token';
  const cases: [string, unknown][] = [
    ['clientCredentialsAuthCredentials.clockSkew', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, clockSkew: -1 } }],
    ['clientCredentialsAuthCredentials.clockSkew', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, clockSkew: 'soon' } }],
    ['clientCredentialsAuthCredentials.oAuthClockSkew', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, oAuthClockSkew: -30 } }],
    ['clientCredentialsAuthCredentials.oAuthClientId', { tokenUrl, clientCredentialsAuthCredentials: { oAuthClientSecret: 'x' } }],
    ['clientCredentialsAuthCredentials.oAuthClientId', { tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 42, oAuthClientSecret: 'x' } }],
    ['clientCredentialsAuthCredentials.oAuthClientSecret', { tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc' } }],
    ['clientCredentialsAuthCredentials.oAuthScopes', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, oAuthScopes: 7 } }],
    ['clientCredentialsAuthCredentials.oAuthToken', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, oAuthToken: { tokenType: 'Bearer' } } }],
    ['clientCredentialsAuthCredentials.oAuthTokenProvider', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, oAuthTokenProvider: 'load' } }],
    ['clientCredentialsAuthCredentials.oAuthOnTokenUpdate', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, oAuthOnTokenUpdate: {} } }],
    ['clientCredentialsAuthCredentials.clientAuthMethod', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, clientAuthMethod: 'client_secret_magic' } }],
    ['clientCredentialsAuthCredentials.privateKey', { tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', clientAuthMethod: 'private_key_jwt', privateKey: 'not a key' } }],
    ['clientCredentialsAuthCredentials', { tokenUrl, clientCredentialsAuthCredentials: 'svc:svc-secret' }],
    ['tokenUrl', { tokenUrl: 'not a url', clientCredentialsAuthCredentials: credentials }],
    ['tokenUrl', { tokenUrl: 'ftp://auth.example.com/token', clientCredentialsAuthCredentials: credentials }],
    ['tokenUrl', { clientCredentialsAuthCredentials: credentials }],
    ['baseUrl', { baseUrl: 'api.example.com' }],
    ['timeout', { timeout: -1 }],
    ['tokenRequestTimeout', { tokenRequestTimeout: 0 }],
    ['maxTokenResponseBytes', { maxTokenResponseBytes: 10 }],
    ['retry.maxAttempts', { retry: { maxAttempts: 0 } }],
    ['retry.baseDelay', { retry: { baseDelay: 'fast' } }],
    ['circuitBreaker.failureThreshold', { circuitBreaker: { failureThreshold: 0 } }],
    ['clock', { clock: { now: 5 } }],
    ['retryOnUnauthorized', { retryOnUnauthorized: 'yes' }],
    ['headers', { headers: { 'x-n': 1 } }],
    ['dispatcher', { dispatcher: {} }],
    ['dispatcher', { dispatcher: 'http://proxy.example:3128' }],
    // Every option that ends up in a timer stops at Node's limit, 2^31−1 ms (a longer delay fires after 1 ms).
    ['tokenStoreTimeout', { tokenStoreTimeout: 2 ** 31 }],
    ['tokenStoreTimeout', { tokenStoreTimeout: Number.MAX_SAFE_INTEGER }],
    ['retry.baseDelay', { retry: { baseDelay: 2 ** 31 } }],
    ['retry.maxDelay', { retry: { maxDelay: 2 ** 31 } }],
    ['retry.maxElapsed', { retry: { maxElapsed: 2 ** 31 } }],
    ['retry.maxRetryAfter', { retry: { maxRetryAfter: 2 ** 31 } }],
    ['circuitBreaker.maxProbeInterval', { circuitBreaker: { maxProbeInterval: 2 ** 31 } }],
    ['circuitBreaker.cooldown', { circuitBreaker: { cooldown: 2 ** 31 } }],
    // Counts and sizes are whole numbers.
    ['retry.maxAttempts', { retry: { maxAttempts: 1.5 } }],
    ['circuitBreaker.failureThreshold', { circuitBreaker: { failureThreshold: 2.5 } }],
    ['maxCachedTokens', { maxCachedTokens: 10.5 }],
    ['maxResponseBytes', { maxResponseBytes: 1024.5 }],
    ['maxTokenResponseBytes', { maxTokenResponseBytes: 4096.5 }],
    // Neither is an object of options, true or false.
    ['retry', { retry: 'yes' }],
    ['retry', { retry: [1] }],
    ['circuitBreaker', { circuitBreaker: 'on' }],
    // A host without its scheme is refused (with a suggestion), not resolved against baseUrl.
    ['tokenUrl', { baseUrl: 'http://127.0.0.1:1/v1', tokenUrl: 'auth.example.com/oauth2/token', clientCredentialsAuthCredentials: credentials }],
    ['tokenUrl', { baseUrl: 'http://127.0.0.1:1/v1', tokenUrl: 'localhost:8080/token', clientCredentialsAuthCredentials: credentials }],
    ['tokenUrl', { baseUrl: 'http://127.0.0.1:1/v1', tokenUrl: '10.0.0.5/token', clientCredentialsAuthCredentials: credentials }],
  ];
  for (const [path, config] of cases) {
    test(`${path}: ${JSON.stringify(config)}`, () => {
      assert.throws(
        () => new Client(config as ClientConfiguration),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError, String(error));
          assert.equal(error.code, ErrorCode.InvalidOption);
          assert.equal(error.option, path);
          assert.ok(error.message.includes(`\`${path}\``), error.message);
          assert.ok(!error.message.includes('svc-secret'));
          return true;
        },
      );
    });
  }

  test('the largest timer values (2^31−1 ms) are accepted, and a store answering in 50 ms is not timed out by them', async () => {
    const max = 2_147_483_647;
    const stored = new Map<string, unknown>();
    const slow = async <T>(value: T): Promise<T> => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return value;
    };
    const store = { get: (key: string) => slow(stored.get(key)), set: async (key: string, value: unknown) => void stored.set(key, await slow(value)), delete: async (key: string) => void stored.delete(key) };
    const client = makeClient({}, {
      tokenStore: store as never,
      tokenStoreTimeout: max,
      retry: { baseDelay: max, maxDelay: max, maxElapsed: max, maxRetryAfter: max },
      circuitBreaker: { maxProbeInterval: max },
      closeTimeout: max,
    });
    const errors: unknown[] = [];
    client.on('storeError', (event) => errors.push(event.error));
    assert.equal((await client.get('/things')).statusCode, 200);
    assert.deepEqual(errors, [], 'no store operation timed out');
    assert.equal(stored.size, 1, 'the token was stored');
  });

  test('NaN and Infinity are refused as not finite, naming the value (not "must be a number, got number")', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['timeout', { timeout: Number.NaN }, 'NaN'],
      ['maxResponseBytes', { maxResponseBytes: Number.POSITIVE_INFINITY }, 'Infinity'],
      ['retry.maxDelay', { retry: { maxDelay: Number.NEGATIVE_INFINITY } }, '-Infinity'],
      ['clientCredentialsAuthCredentials.clockSkew', { tokenUrl, clientCredentialsAuthCredentials: { ...credentials, clockSkew: Number.NaN } }, 'NaN'],
    ];
    for (const [path, config, shown] of cases) {
      assert.throws(() => new Client(config as ClientConfiguration), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError, String(error));
        assert.equal(error.message, `The \`${path}\` option must be a finite number, got ${shown}`);
        return true;
      });
    }
    assert.throws(() => new Client({ timeout: 'soon' } as never), /The `timeout` option must be a number, got string$/);
  });

  test('retry: true and circuitBreaker: true both mean the defaults (false turns either off)', async () => {
    for (const config of [{ retry: true, circuitBreaker: true }, { retry: false, circuitBreaker: false }, { retry: null, circuitBreaker: null }]) {
      const client = makeClient({}, config as Partial<ClientConfiguration>);
      assert.equal((await client.get('/things')).statusCode, 200);
    }
  });

  test('a scheme-less tokenUrl is refused with the URL it probably means, before any request', async () => {
    const api = stack.api.requests.length;
    const error = (() => {
      try {
        new Client({ baseUrl: `${stack.api.url}/v1`, tokenUrl: 'auth.example.com/oauth2/token', clientCredentialsAuthCredentials: credentials });
      } catch (e) {
        return e as InvalidOptionError;
      }
      assert.fail('accepted');
    })();
    assert.equal(error.option, 'tokenUrl');
    assert.match(error.message, /has no scheme: `auth\.example\.com` reads as a host.*; did you mean `https:\/\/auth\.example\.com\/oauth2\/token`\?$/);
    assert.equal(stack.api.requests.length, api, 'nothing reached the API host');
    // On this machine the suggestion is plain http; userinfo is never repeated.
    assert.throws(() => new Client({ tokenUrl: 'localhost:8080/token', clientCredentialsAuthCredentials: credentials }), /did you mean `http:\/\/localhost:8080\/token`\?$/);
    assert.throws(() => new Client({ tokenUrl: 'user:pw-secret@auth.example.com/token', clientCredentialsAuthCredentials: credentials }), (e: unknown) => e instanceof InvalidOptionError && !e.message.includes('pw-secret') && e.message.endsWith('did you mean `https://auth.example.com/token`?'));
    // A relative path (with or without a leading slash, or a dot in a later segment) still follows baseUrl, as documented.
    for (const [relative, expected] of [['oauth2/token', '/v1/oauth2/token'], ['./auth.example.com/token', '/v1/auth.example.com/token'], ['/oauth2/v2.0/token', '/oauth2/v2.0/token']] as const) {
      const client = new Client({ baseUrl: 'https://api.example.com/v1', tokenUrl: relative, clientCredentialsAuthCredentials: credentials });
      assert.equal((client.toJSON() as { tokenUrl: string }).tokenUrl, `https://api.example.com${expected}`);
      await client.close();
    }
  });


  test('a wildcard in allowedOrigins is refused at construction (the URL parser keeps `*` in a host, and it would never match)', async () => {
    for (const pattern of ['https://*.example.com', 'https://api*.example.com:8443', 'http://*']) {
      assert.throws(
        () => new Client({ baseUrl: stack.api.url, allowedOrigins: [stack.api.url, pattern], tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: credentials }),
        (e: unknown) => e instanceof InvalidOptionError && e.code === 'ERR_INVALID_OPTION' && e.option === 'allowedOrigins[1]' && /is a pattern .*matched exactly/.test(e.message),
        pattern,
      );
    }
    // An exact origin, with a path or an upper-case host, is still taken as its origin.
    const client = new Client({ baseUrl: stack.api.url, allowedOrigins: ['https://API.example.com/v2'], tokenUrl: stack.op.tokenUrl, clientCredentialsAuthCredentials: credentials });
    assert.ok(client.tokenAccess().allowsUrl('https://api.example.com/things'));
    await client.close();
  });
  test('property: any host name followed by a path, given without its scheme, is refused with the https URL; any absolute path follows baseUrl', () => {
    const base = 'https://api.example.com/v1';
    fc.assert(
      fc.property(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.webPath(), (domain, port, path) => {
        const host = port === undefined ? domain : `${domain}:${port}`;
        const value = `${host}${path.startsWith('/') || path === '' ? path : `/${path}`}`;
        try {
          resolveConfiguration({ baseUrl: base, tokenUrl: value, clientCredentialsAuthCredentials: credentials });
        } catch (error) {
          return error instanceof InvalidOptionError && error.option === 'tokenUrl' && error.message.endsWith(`did you mean \`https://${value}\`?`);
        }
        return false;
      }),
    );
    fc.assert(
      fc.property(fc.webPath().filter((p) => p.startsWith('/') && !p.startsWith('//')), (path) => {
        const resolved = resolveConfiguration({ baseUrl: base, tokenUrl: path, clientCredentialsAuthCredentials: credentials });
        return new URL(resolved.tokenUrl!).origin === 'https://api.example.com';
      }),
    );
  });

  test('a relative tokenUrl is resolved against baseUrl', async () => {
    const client = new Client({ baseUrl: stack.op.issuer, tokenUrl: '/token', clientCredentialsAuthCredentials: credentials });
    clients.push(client);
    assert.equal((client.toJSON() as { tokenUrl: string }).tokenUrl, stack.op.tokenUrl);
    assert.match((await client.clientCredentialsAuthManager.fetchToken()).accessToken, /\./);
  });
});

test('errors serialise to JSON with name, code and message', async () => {
  const error = await rejection(makeClient({ oAuthClientSecret: 'nope' }).get('/things'));
  assert.deepEqual(JSON.parse(JSON.stringify(error)), {
    name: 'OAuthProviderError',
    code: 'ERR_OAUTH_PROVIDER',
    message: error.message,
    statusCode: 401,
    error: 'invalid_client',
    errorDescription: 'client authentication failed',
  });
});

test('a scope RFC 6749 §3.3 does not allow (control character, quote, backslash, non-ASCII) is an InvalidOptionError before any request', async () => {
  for (const bad of ['api\u0000read', 'say"hi"', 'back\\slash', 'café']) {
    assert.throws(
      () => new Client({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret', oAuthScopes: bad } }),
      (error: unknown) => error instanceof InvalidOptionError && error.option === 'clientCredentialsAuthCredentials.oAuthScopes',
      JSON.stringify(bad),
    );
  }
  const client = new Client({ baseUrl: 'https://api.example.com', tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret', oAuthScopes: 'https://graph.example.com/.default api:read' } });
  try {
    await assert.rejects(client.get('/things', { scopes: 'a\nb\u0007' }), (error: unknown) => error instanceof InvalidOptionError && error.option === 'scopes');
    assert.equal(client.stats().tokenRequests, 0);
  } finally {
    await client.close();
  }
});
